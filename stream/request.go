package stream

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Backend names a wire protocol. The names are the values of the `backend`
// setting and the --backend flag.
type Backend string

const (
	BackendAuto              Backend = "auto"
	BackendTGI               Backend = "tgi"
	BackendOpenAI            Backend = "openai"
	BackendOpenAICompletions Backend = "openai-completions"
	BackendOllama            Backend = "ollama"
)

// Backends lists the accepted backend names, for flags and validation.
var Backends = []Backend{BackendAuto, BackendTGI, BackendOpenAI, BackendOpenAICompletions, BackendOllama}

// ParseBackend validates a backend name; "" means auto.
func ParseBackend(s string) (Backend, error) {
	if s == "" {
		return BackendAuto, nil
	}
	for _, b := range Backends {
		if string(b) == s {
			return b, nil
		}
	}
	names := make([]string, len(Backends))
	for i, b := range Backends {
		names[i] = string(b)
	}
	return "", fmt.Errorf("unknown backend %q (want one of %s)", s, strings.Join(names, ", "))
}

// Parameters are the generation parameters, named as huggingface_hub names
// them; each backend maps them to its own names. Nil pointers are not sent,
// so the server's defaults apply.
type Parameters struct {
	MaxNewTokens      int      `json:"max_new_tokens,omitempty"`
	TopK              *int     `json:"top_k,omitempty"`
	TopP              *float64 `json:"top_p,omitempty"`
	Temperature       *float64 `json:"temperature,omitempty"`
	RepetitionPenalty *float64 `json:"repetition_penalty,omitempty"`
	StopSequences     []string `json:"stop_sequences,omitempty"`
	Seed              *uint64  `json:"seed,omitempty"`
	// Truncate asks TGI to keep only the last Truncate input tokens.
	Truncate *int `json:"truncate,omitempty"`
}

// DefaultMaxNewTokens bounds a generation when the user sets no limit, so a
// model that never emits EOS cannot write forever.
const DefaultMaxNewTokens = 256

// Validate reports the first parameter out of the range every backend accepts.
func (p Parameters) Validate() error {
	switch {
	case p.MaxNewTokens < 0:
		return fmt.Errorf("max_new_tokens must be positive, got %d", p.MaxNewTokens)
	case p.TopK != nil && *p.TopK <= 0:
		return fmt.Errorf("top_k must be positive, got %d", *p.TopK)
	case p.TopP != nil && (*p.TopP <= 0 || *p.TopP > 1):
		return fmt.Errorf("top_p must be in (0, 1], got %g", *p.TopP)
	case p.Temperature != nil && *p.Temperature < 0:
		return fmt.Errorf("temperature must not be negative, got %g", *p.Temperature)
	case p.RepetitionPenalty != nil && *p.RepetitionPenalty <= 0:
		return fmt.Errorf("repetition_penalty must be positive, got %g", *p.RepetitionPenalty)
	case p.Truncate != nil && *p.Truncate <= 0:
		return fmt.Errorf("truncate must be positive, got %d", *p.Truncate)
	}
	for _, s := range p.StopSequences {
		if s == "" {
			return fmt.Errorf("stop_sequences must not contain an empty string")
		}
	}
	return nil
}

func (p Parameters) maxNewTokens() int {
	if p.MaxNewTokens > 0 {
		return p.MaxNewTokens
	}
	return DefaultMaxNewTokens
}

// Request is one generation.
type Request struct {
	// Prompt is the text to continue (completion backends) or the user
	// message (chat backends).
	Prompt string
	// System is the system message for chat backends; ignored elsewhere.
	System string
	Params Parameters
	// OnRetry, when set, replaces Config.OnRetry for this request.
	OnRetry func(wait time.Duration, err error)
	// Raw says the prompt is to be continued exactly as it is, never
	// through a chat template: a fill-in-the-middle prompt, whose special
	// tokens a template would bury. An OpenAI-compatible chat endpoint
	// gets it on its /completions route, Ollama in raw mode; TGI's
	// /generate_stream is raw already.
	Raw bool
}

// tgiRequest is the body of TGI's POST /generate_stream.
type tgiRequest struct {
	Inputs     string        `json:"inputs"`
	Parameters tgiParameters `json:"parameters"`
	Stream     bool          `json:"stream"`
}

type tgiParameters struct {
	MaxNewTokens      int      `json:"max_new_tokens"`
	TopK              *int     `json:"top_k,omitempty"`
	TopP              *float64 `json:"top_p,omitempty"`
	Temperature       *float64 `json:"temperature,omitempty"`
	RepetitionPenalty *float64 `json:"repetition_penalty,omitempty"`
	Stop              []string `json:"stop"`
	Seed              *uint64  `json:"seed,omitempty"`
	Truncate          *int     `json:"truncate,omitempty"`
	DoSample          bool     `json:"do_sample"`
	ReturnFullText    bool     `json:"return_full_text"`
	Details           bool     `json:"details"`
}

// tgiBody builds the TGI request. TGI rejects more than maxStops stop
// sequences, so only the first maxStops are sent; the pipeline enforces all.
// TGI also rejects temperature 0, which users mean as "greedy": that is
// do_sample false with no temperature.
func tgiBody(r Request, maxStops int) ([]byte, error) {
	p := r.Params
	stops := p.StopSequences
	if maxStops > 0 && len(stops) > maxStops {
		stops = stops[:maxStops]
	}
	if stops == nil {
		stops = []string{}
	}
	temp := p.Temperature
	if temp != nil && *temp == 0 {
		temp = nil
	}
	return json.Marshal(tgiRequest{
		Inputs: r.Prompt,
		Parameters: tgiParameters{
			MaxNewTokens:      p.maxNewTokens(),
			TopK:              p.TopK,
			TopP:              p.TopP,
			Temperature:       temp,
			RepetitionPenalty: p.RepetitionPenalty,
			Stop:              stops,
			Seed:              p.Seed,
			Truncate:          p.Truncate,
			DoSample:          temp != nil || p.TopK != nil || p.TopP != nil,
			ReturnFullText:    false,
			Details:           true,
		},
		Stream: true,
	})
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// openAIRequest is the body of POST /chat/completions and /completions.
// top_k and repetition_penalty are not OpenAI parameters, but vLLM, TGI and
// llama.cpp accept them; they are sent only when the user sets them.
//
// Stop sequences are not sent, here or to Ollama: those servers leave the
// stop text out of the stream and end with the same "stop" whether a stop
// sequence or the model ended the text, so genls could not say which. genls
// matches them itself and closes the request at the first one, which stops
// the server too.
type openAIRequest struct {
	Model             string        `json:"model,omitempty"`
	Messages          []chatMessage `json:"messages,omitempty"`
	Prompt            *string       `json:"prompt,omitempty"`
	Stream            bool          `json:"stream"`
	MaxTokens         int           `json:"max_tokens"`
	Temperature       *float64      `json:"temperature,omitempty"`
	TopP              *float64      `json:"top_p,omitempty"`
	TopK              *int          `json:"top_k,omitempty"`
	RepetitionPenalty *float64      `json:"repetition_penalty,omitempty"`
	Seed              *uint64       `json:"seed,omitempty"`
}

func openAIBody(r Request, model string, chat bool) ([]byte, error) {
	p := r.Params
	body := openAIRequest{
		Model:             model,
		Stream:            true,
		MaxTokens:         p.maxNewTokens(),
		Temperature:       p.Temperature,
		TopP:              p.TopP,
		TopK:              p.TopK,
		RepetitionPenalty: p.RepetitionPenalty,
		Seed:              p.Seed,
	}
	if chat {
		if r.System != "" {
			body.Messages = append(body.Messages, chatMessage{Role: "system", Content: r.System})
		}
		body.Messages = append(body.Messages, chatMessage{Role: "user", Content: r.Prompt})
	} else {
		prompt := r.Prompt
		body.Prompt = &prompt
	}
	return json.Marshal(body)
}

type ollamaRequest struct {
	Model   string        `json:"model"`
	Prompt  string        `json:"prompt"`
	System  string        `json:"system,omitempty"`
	Raw     bool          `json:"raw,omitempty"`
	Stream  bool          `json:"stream"`
	Options ollamaOptions `json:"options"`
}

type ollamaOptions struct {
	NumPredict    int      `json:"num_predict"`
	TopK          *int     `json:"top_k,omitempty"`
	TopP          *float64 `json:"top_p,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	RepeatPenalty *float64 `json:"repeat_penalty,omitempty"`
	Seed          *uint64  `json:"seed,omitempty"`
}

func ollamaBody(r Request, model string) ([]byte, error) {
	p := r.Params
	return json.Marshal(ollamaRequest{
		Model:  model,
		Prompt: r.Prompt,
		System: r.System,
		Raw:    r.Raw,
		Stream: true,
		Options: ollamaOptions{
			NumPredict:    p.maxNewTokens(),
			TopK:          p.TopK,
			TopP:          p.TopP,
			Temperature:   p.Temperature,
			RepeatPenalty: p.RepetitionPenalty,
			Seed:          p.Seed,
		},
	})
}
