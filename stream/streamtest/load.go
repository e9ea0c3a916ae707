package streamtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Load is a long generation in one backend's wire format, event for event
// what the real servers send (every field, the same sizes), for measuring
// clients: TGI's /generate_stream, OpenAI-compatible chat and completions
// chunks as OpenAI and vLLM send them, and Ollama's /api/generate lines.
type Load struct {
	// Backend is "tgi", "openai", "openai-completions" or "ollama".
	Backend string
	// Tokens is the number of tokens generated.
	Tokens int
	// Text is the text of token i.
	Text func(i int) string
}

// ContentType is the response's Content-Type.
func (l Load) ContentType() string {
	if l.Backend == "ollama" {
		return "application/x-ndjson"
	}
	return "text/event-stream"
}

// Write hands write the body one event at a time: each token's, then the
// final event (TGI's is the last token's) and OpenAI's [DONE]. The buffer is
// reused; it stops at the first error of write.
func (l Load) Write(write func(event []byte) error) error {
	var buf, quoted []byte
	var generated []byte
	for i := range l.Tokens {
		text := l.Text(i)
		quoted, _ = appendJSON(quoted[:0], text)
		buf = buf[:0]
		switch l.Backend {
		case "tgi":
			buf = append(buf, `data:{"index":`...)
			buf = strconv.AppendInt(buf, int64(i+1), 10)
			buf = append(buf, `,"token":{"id":`...)
			buf = strconv.AppendInt(buf, int64(1000+i%30000), 10)
			buf = append(buf, `,"text":`...)
			buf = append(buf, quoted...)
			buf = append(buf, `,"logprob":-0.24951172,"special":false},"generated_text":`...)
			if generated = append(generated, text...); i < l.Tokens-1 {
				buf = append(buf, `null,"details":null}`+"\n\n"...)
				break
			}
			// The whole text; above what genls accepts in one event, an
			// empty one stands for it.
			if len(generated) > 900<<10 {
				generated = generated[:0]
			}
			buf, _ = appendJSON(buf, string(generated))
			buf = fmt.Appendf(buf, `,"details":{"finish_reason":"length","generated_tokens":%d,"seed":null}}`+"\n\n", l.Tokens)
		case "openai":
			buf = append(buf, openAIHead("chatcmpl-", "chat.completion.chunk")...)
			buf = append(buf, `,"choices":[{"index":0,"delta":{"content":`...)
			buf = append(buf, quoted...)
			buf = append(buf, `},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
		case "openai-completions":
			buf = append(buf, openAIHead("cmpl-", "text_completion")...)
			buf = append(buf, `,"choices":[{"index":0,"text":`...)
			buf = append(buf, quoted...)
			buf = append(buf, `,"logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}`+"\n\n"...)
		case "ollama":
			buf = append(buf, `{"model":"qwen2.5-coder:32b","created_at":"`...)
			buf = ollamaTime(buf, i)
			buf = append(buf, `","response":`...)
			buf = append(buf, quoted...)
			buf = append(buf, `,"done":false}`+"\n"...)
		default:
			return fmt.Errorf("streamtest: no wire format for backend %q", l.Backend)
		}
		if err := write(buf); err != nil {
			return err
		}
	}
	buf = buf[:0]
	switch l.Backend {
	case "openai":
		buf = append(buf, openAIHead("chatcmpl-", "chat.completion.chunk")...)
		buf = append(buf, `,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}`+"\n\ndata: [DONE]\n\n"...)
	case "openai-completions":
		buf = append(buf, openAIHead("cmpl-", "text_completion")...)
		buf = append(buf, `,"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":null}`+"\n\ndata: [DONE]\n\n"...)
	case "ollama":
		buf = append(buf, `{"model":"qwen2.5-coder:32b","created_at":"`...)
		buf = ollamaTime(buf, l.Tokens)
		buf = fmt.Appendf(buf, `","response":"","done":true,"done_reason":"length","context":[151644,8948,198],`+
			`"total_duration":%d,"load_duration":1042,"prompt_eval_count":9,"prompt_eval_duration":2100,"eval_count":%d,"eval_duration":%d}`+"\n",
			l.Tokens*1000, l.Tokens, l.Tokens*990)
	}
	if len(buf) == 0 {
		return nil
	}
	return write(buf)
}

// Body is the whole response body.
func (l Load) Body() ([]byte, error) {
	var body []byte
	err := l.Write(func(event []byte) error { body = append(body, event...); return nil })
	return body, err
}

// appendJSON appends s as a JSON string, escaping what JSON requires and no
// more (unlike json.Marshal, not <, > and &), as the servers do.
func appendJSON(b []byte, s string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(s)
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), err
}

// openAIHead is the start of an OpenAI chunk, up to its choices.
func openAIHead(idPrefix, object string) string {
	return `data: {"id":"` + idPrefix + `b3b2f5e0c6a44d1c9b8e3f2a1d0c9b8e","object":"` + object +
		`","created":1764489600,"model":"Qwen/Qwen2.5-Coder-32B-Instruct","system_fingerprint":"fp_44709d6fcb"`
}

// ollamaTime appends Ollama's created_at for token i, one a millisecond.
func ollamaTime(b []byte, i int) []byte {
	t := time.Date(2026, 11, 30, 8, 0, 0, 123456789, time.UTC).Add(time.Duration(i) * time.Millisecond)
	return t.AppendFormat(b, time.RFC3339Nano)
}
