package stream

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
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

// parser decodes the data of one event of a given protocol.
type parser interface {
	parse(data string) (event, error)
}

func parserFor(b Backend) parser {
	switch b {
	case BackendTGI:
		return &tgiParser{}
	case BackendOpenAI:
		return &openAIParser{chat: true}
	case BackendOpenAICompletions:
		return &openAIParser{}
	case BackendOllama:
		return &ollamaParser{}
	}
	panic("stream: no parser for backend " + string(b))
}

// tgiEvent is TGI's StreamResponse, and its in-band error object.
type tgiEvent struct {
	Token *struct {
		Text    string `json:"text"`
		Special bool   `json:"special"`
	} `json:"token"`
	GeneratedText *string `json:"generated_text"`
	Details       *struct {
		FinishReason    string `json:"finish_reason"`
		GeneratedTokens int    `json:"generated_tokens"`
	} `json:"details"`
	Error     *string `json:"error"`
	ErrorType string  `json:"error_type"`
}

type tgiParser struct{ ev tgiEvent }

func (p *tgiParser) parse(data string) (event, error) {
	if tok, ok := parseTGIToken(data); ok {
		return event{token: tok, hasToken: true}, nil
	}
	p.ev = tgiEvent{}
	if err := json.Unmarshal([]byte(data), &p.ev); err != nil {
		return event{}, &MalformedEventError{Data: data, Err: err}
	}
	ev := &p.ev
	if ev.Error != nil {
		return event{}, &ServerError{Type: ev.ErrorType, Message: *ev.Error}
	}
	var out event
	if ev.Token != nil {
		out.token = Token{Text: ev.Token.Text, Special: ev.Token.Special}
		out.hasToken = true
	}
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
		return event{}, &MalformedEventError{Data: data, Err: fmt.Errorf("neither a token nor a final event")}
	}
	return out, nil
}

// openAIChunk is a chat.completion.chunk or text_completion chunk.
type openAIChunk struct {
	Choices []struct {
		Delta struct {
			Content *string `json:"content"`
		} `json:"delta"`
		Text         *string `json:"text"`
		FinishReason *string `json:"finish_reason"`
		Logprobs     *struct {
			Content []tokenLogprob `json:"content"`
		} `json:"logprobs"`
	} `json:"choices"`
	Usage *struct {
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

type openAIParser struct {
	chat bool
	ev   openAIChunk
}

// eosTexts are end-of-sequence tokens that older TGI versions leak into the
// content of the chunk whose finish_reason is "eos_token". They are dropped
// only there, where the server marks the token as the end of sequence.
var eosTexts = []string{"</s>", "<|endoftext|>", "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<｜end▁of▁sentence｜>"}

func (p *openAIParser) parse(data string) (event, error) {
	if strings.TrimSpace(data) == "[DONE]" {
		return event{final: true, reason: FinishEOS}, nil
	}
	p.ev = openAIChunk{}
	if err := json.Unmarshal([]byte(data), &p.ev); err != nil {
		return event{}, &MalformedEventError{Data: data, Err: err}
	}
	if len(p.ev.Error) > 0 && string(p.ev.Error) != "null" {
		return event{}, openAIError(p.ev.Error)
	}
	var out event
	if p.ev.Usage != nil {
		out.generated = p.ev.Usage.CompletionTokens
	}
	if len(p.ev.Choices) == 0 {
		return out, nil // e.g. a usage-only chunk
	}
	c := &p.ev.Choices[0]
	text := c.Text
	if p.chat {
		text = c.Delta.Content
	}
	if text != nil && *text != "" {
		out.token = Token{Text: *text}
		out.hasToken = true
		// Where the server also sent each token's bytes, they are the truth:
		// a character split across tokens arrives as U+FFFD in the text but
		// as its real bytes here, and the pipeline reassembles it.
		if c.Logprobs != nil && strings.ContainsRune(*text, utf8.RuneError) {
			if raw, ok := tokenBytes(c.Logprobs.Content); ok {
				out.token.Text = raw
			}
		}
	}
	if c.FinishReason != nil && *c.FinishReason != "" {
		out.final = true
		out.reason = normalizeReason(*c.FinishReason)
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
	Response   string  `json:"response"`
	Done       bool    `json:"done"`
	DoneReason string  `json:"done_reason"`
	EvalCount  int     `json:"eval_count"`
	Error      *string `json:"error"`
}

type ollamaParser struct{ ev ollamaChunk }

func (p *ollamaParser) parse(data string) (event, error) {
	p.ev = ollamaChunk{}
	if err := json.Unmarshal([]byte(data), &p.ev); err != nil {
		return event{}, &MalformedEventError{Data: data, Err: err}
	}
	if p.ev.Error != nil {
		return event{}, &ServerError{Message: *p.ev.Error}
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
	return FinishReason(r)
}
