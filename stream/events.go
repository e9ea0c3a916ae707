package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	segjson "github.com/segmentio/encoding/json"
)

// event is one decoded message of a stream, whatever its wire protocol.
type event struct {
	token    Token
	hasToken bool
	// final is set by the message that ends the stream: TGI's event with
	// generated_text, an OpenAI finish_reason or [DONE], Ollama's done.
	final  bool
	reason FinishReason
	// generated is the number of tokens the server says it generated, 0
	// when it does not say.
	generated int
}

// parser decodes the data of one event of a given protocol. The event's
// strings may be substrings of data, and so valid as long as data is; the
// errors are not.
type parser interface {
	parse(data []byte) (event, error)
}

func parserFor(b Backend) parser {
	return newParser(b, unmarshalInPlace)
}

func newParser(b Backend, unmarshal unmarshaler) parser {
	switch b {
	case BackendTGI:
		return &tgiParser{unmarshal: unmarshal}
	case BackendOpenAI:
		return &openAIParser{unmarshal: unmarshal, chat: true}
	case BackendOpenAICompletions:
		return &openAIParser{unmarshal: unmarshal}
	case BackendOllama:
		return &ollamaParser{unmarshal: unmarshal}
	}
	panic("stream: no parser for backend " + string(b))
}

// unmarshaler decodes JSON like encoding/json's Unmarshal.
type unmarshaler func(data []byte, v any) error

// unmarshalInPlace is encoding/json's Unmarshal as segmentio implements
// it: four to six times faster on these events, and in place, so the
// strings it stores in v are substrings of data and decoding a token event
// allocates nothing, unless its text needs decoding (an escape, non-ASCII).
// The structs it decodes into avoid pointers where a token event would set
// them, for the same reason. FuzzParsers checks that every event decodes
// as with encoding/json.
func unmarshalInPlace(data []byte, v any) error {
	rest, err := segjson.Parse(data, v, segjson.ZeroCopy)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("invalid character %q after top-level value", rest[0])
	}
	return err
}

// ignored is a field that servers send in every event and genls does not
// read. Naming it spares segmentio a case-insensitive search for an
// unknown name (a sixth of the work of decoding an OpenAI event); its
// value is checked, and left where it is. Only names of up to 16 bytes: a
// longer one (system_fingerprint) would cost its struct the fast lookup
// of all its names.
type ignored = json.RawMessage

// tgiEvent is TGI's StreamResponse, and its in-band error object.
type tgiEvent struct {
	Index ignored `json:"index"`
	// Token is a tgiToken or null, decoded in a second step: a pointer to
	// it would be an allocation in every event.
	Token         json.RawMessage `json:"token"`
	GeneratedText *string         `json:"generated_text"`
	Details       *struct {
		FinishReason    string `json:"finish_reason"`
		GeneratedTokens int    `json:"generated_tokens"`
	} `json:"details"`
	Error     *string `json:"error"`
	ErrorType string  `json:"error_type"`
}

type tgiToken struct {
	ID      ignored `json:"id"`
	Text    string  `json:"text"`
	Logprob ignored `json:"logprob"`
	Special bool    `json:"special"`
}

type tgiParser struct {
	unmarshal unmarshaler
	ev        tgiEvent
	tok       tgiToken
}

func (p *tgiParser) parse(data []byte) (event, error) {
	p.ev, p.tok = tgiEvent{}, tgiToken{}
	err := p.unmarshal(data, &p.ev)
	tok := p.ev.Token
	hasToken := len(tok) > 0 && string(tok) != "null"
	if err == nil && hasToken {
		err = p.unmarshal(tok, &p.tok)
	}
	if err != nil {
		return event{}, &MalformedEventError{Data: string(data), Err: err}
	}
	ev := &p.ev
	if ev.Error != nil {
		return event{}, &ServerError{Type: strings.Clone(ev.ErrorType), Message: strings.Clone(*ev.Error)}
	}
	out := event{token: Token{Text: p.tok.Text, Special: p.tok.Special}, hasToken: hasToken}
	if ev.GeneratedText != nil {
		out.final = true
		if ev.Details != nil {
			out.generated = ev.Details.GeneratedTokens
		}
		switch {
		case ev.Details != nil && ev.Details.FinishReason != "":
			out.reason = normalizeReason(ev.Details.FinishReason)
		case out.hasToken && out.token.Special:
			out.reason = FinishEOS
		default:
			out.reason = FinishLength
		}
	}
	if !out.hasToken && !out.final {
		return event{}, &MalformedEventError{Data: string(data), Err: fmt.Errorf("neither a token nor a final event")}
	}
	return out, nil
}

// openAIChunk is a chat.completion.chunk or text_completion chunk. A
// missing or null text or finish reason reads as "", which means the same.
type openAIChunk struct {
	ID      ignored        `json:"id"`
	Object  ignored        `json:"object"`
	Created ignored        `json:"created"`
	Model   ignored        `json:"model"`
	Choices []openAIChoice `json:"choices"`
	Usage   *struct {
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	// Timings is llama.cpp's server's own count, the only one its chat
	// stream carries without stream_options.include_usage.
	Timings struct {
		PredictedN int `json:"predicted_n"`
	} `json:"timings"`
	Error json.RawMessage `json:"error"`
}

type openAIChoice struct {
	Index      ignored `json:"index"`
	StopReason ignored `json:"stop_reason"`
	Delta      struct {
		Content string `json:"content"`
	} `json:"delta"`
	Text         string `json:"text"`
	FinishReason string `json:"finish_reason"`
	Logprobs     *struct {
		Content []tokenLogprob `json:"content"`
	} `json:"logprobs"`
}

type openAIParser struct {
	unmarshal unmarshaler
	chat      bool
	ev        openAIChunk
}

// eosTexts are end-of-sequence tokens that older TGI versions leak into the
// content of the chunk whose finish_reason is "eos_token". They are dropped
// only there, where the server marks the token as the end of sequence.
var eosTexts = []string{"</s>", "<|endoftext|>", "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<｜end▁of▁sentence｜>"}

func (p *openAIParser) parse(data []byte) (event, error) {
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		return event{final: true, reason: FinishEOS}, nil
	}
	// Decode into the last event's choices, not to allocate new ones.
	choices := p.ev.Choices[:0]
	clear(choices[:cap(choices)])
	p.ev = openAIChunk{Choices: choices}
	if err := p.unmarshal(data, &p.ev); err != nil {
		return event{}, &MalformedEventError{Data: string(data), Err: err}
	}
	if len(p.ev.Error) > 0 && string(p.ev.Error) != "null" {
		return event{}, openAIError(p.ev.Error)
	}
	var out event
	switch {
	case p.ev.Usage != nil:
		out.generated = p.ev.Usage.CompletionTokens
	case p.ev.Timings.PredictedN > 0:
		out.generated = p.ev.Timings.PredictedN
	}
	if len(p.ev.Choices) == 0 {
		return out, nil // e.g. a usage-only chunk
	}
	c := &p.ev.Choices[0]
	text := c.Text
	if p.chat {
		text = c.Delta.Content
	}
	if text != "" {
		out.token = Token{Text: text}
		out.hasToken = true
		// Where the server also sent each token's bytes, they are the truth:
		// a character split across tokens arrives as U+FFFD in the text but
		// as its real bytes here, and the pipeline reassembles it.
		if c.Logprobs != nil && strings.ContainsRune(text, utf8.RuneError) {
			if raw, ok := tokenBytes(c.Logprobs.Content); ok {
				out.token.Text = raw
			}
		}
	}
	if c.FinishReason != "" {
		out.final = true
		out.reason = normalizeReason(c.FinishReason)
		if out.reason == FinishEOS && out.hasToken {
			for _, eos := range eosTexts {
				if t, ok := strings.CutSuffix(out.token.Text, eos); ok {
					out.token.Text = t
					out.hasToken = t != ""
					break
				}
			}
		}
	}
	return out, nil
}

// tokenLogprob is the part of an OpenAI logprobs entry genls reads: the
// token's exact bytes (as a JSON array of integers).
type tokenLogprob struct {
	Bytes []int `json:"bytes"`
}

func tokenBytes(content []tokenLogprob) (string, bool) {
	var b []byte
	for _, c := range content {
		if c.Bytes == nil {
			return "", false
		}
		for _, v := range c.Bytes {
			b = append(b, byte(v))
		}
	}
	return string(b), len(b) > 0
}

// openAIError reads both error shapes servers use: a string, or an object
// with a message.
func openAIError(raw json.RawMessage) error {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return &ServerError{Message: s}
	}
	var obj struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Message != "" {
		return &ServerError{Type: obj.Type, Message: obj.Message}
	}
	return &ServerError{Message: string(raw)}
}

type ollamaChunk struct {
	Model      ignored `json:"model"`
	CreatedAt  ignored `json:"created_at"`
	Response   string  `json:"response"`
	Done       bool    `json:"done"`
	DoneReason string  `json:"done_reason"`
	EvalCount  int     `json:"eval_count"`
	Error      *string `json:"error"`
}

type ollamaParser struct {
	unmarshal unmarshaler
	ev        ollamaChunk
}

func (p *ollamaParser) parse(data []byte) (event, error) {
	p.ev = ollamaChunk{}
	if err := p.unmarshal(data, &p.ev); err != nil {
		return event{}, &MalformedEventError{Data: string(data), Err: err}
	}
	if p.ev.Error != nil {
		return event{}, &ServerError{Message: strings.Clone(*p.ev.Error)}
	}
	var out event
	if p.ev.Response != "" {
		out.token = Token{Text: p.ev.Response}
		out.hasToken = true
	}
	if p.ev.Done {
		out.final = true
		out.reason = normalizeReason(p.ev.DoneReason)
		out.generated = p.ev.EvalCount
	}
	return out, nil
}

// normalizeReason maps each protocol's finish reason to ours. OpenAI's and
// Ollama's "stop" means the model ended by itself or hit a server-side stop;
// the pipeline reports stop_sequence itself when it cut at one.
func normalizeReason(r string) FinishReason {
	switch r {
	case "length", "max_tokens":
		return FinishLength
	case "stop_sequence":
		return FinishStopSequence
	case "eos_token", "stop", "", "end_turn":
		return FinishEOS
	}
	return FinishReason(strings.Clone(r)) // it outlives the event's data
}
