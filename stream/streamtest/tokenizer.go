package streamtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// FakeTokens is how many tokens the fake tokenizer makes of text: each
// whitespace-separated word costs one token per 4 bytes, rounded up. It is
// deterministic and easy to reason about, and, like real tokenizers,
// counts fewer tokens than stream.EstimateTokens for ordinary text.
func FakeTokens(text string) int {
	n := 0
	for _, w := range strings.Fields(text) {
		n += (len(w) + 3) / 4
	}
	return n
}

// fakeTokens splits text into the fake tokenizer's tokens.
func fakeTokens(text string) []string {
	var toks []string
	for _, w := range strings.Fields(text) {
		for len(w) > 4 {
			toks = append(toks, w[:4])
			w = w[4:]
		}
		toks = append(toks, w)
	}
	return toks
}

// tokenizer is what a fake server with limits publishes and enforces.
type tokenizer struct {
	llama              bool // llama-server's routes and errors, else TGI's
	maxInput, maxTotal int
	inStream           bool // TGI's refusal as an event of a 200 stream
	calls              int  // POST /tokenize requests answered
	prompts            []int
}

// Tokenizer makes the server a TGI that publishes max_input_tokens = max
// (and max_total_tokens = max + 1024, so that the input limit is the one
// that binds for any max_new_tokens up to 1,024) at GET /info, tokenizes
// with FakeTokens at POST /tokenize, records the prompt tokens of every
// generation request (PromptTokens), and refuses a generation whose
// prompt is over its limits as TGI does (see RejectInStream).
func (s *Server) Tokenizer(max int) *Server { return s.TokenizerLimits(max, max+1024) }

// TokenizerLimits is Tokenizer with both of TGI's limits given.
func (s *Server) TokenizerLimits(maxInput, maxTotal int) *Server {
	info, _ := json.Marshal(map[string]any{
		"model_id": "fake/tokenizer", "max_stop_sequences": 4, "max_input_tokens": maxInput,
		"max_total_tokens": maxTotal, "max_best_of": 2, "router": "text-generation-router", "version": "3.0.1",
	})
	s.Route("/info", string(info))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok = &tokenizer{maxInput: maxInput, maxTotal: maxTotal}
	return s
}

// LlamaTokenizer makes the server a llama.cpp llama-server with a context
// of nCtx tokens: GET /props answers default_generation_settings.n_ctx,
// POST /tokenize {"content"} answers {"tokens": [ids]} counted with
// FakeTokens, prompt tokens are recorded, and a generation whose prompt is
// over nCtx is refused with llama-server's 400 exceed_context_size_error
// (llama-server lets a prompt that fits generate until the context is
// full).
func (s *Server) LlamaTokenizer(nCtx int) *Server {
	props, _ := json.Marshal(map[string]any{
		"default_generation_settings": map[string]any{"n_ctx": nCtx, "params": map[string]any{"n_predict": -1}},
		"total_slots":                 1, "model_path": "fake.gguf", "build_info": "b1-fake",
	})
	s.Route("/props", string(props))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok = &tokenizer{llama: true, maxTotal: nCtx}
	return s
}

// RejectInStream makes a TGI fake refuse an over-long prompt the way TGI's
// /generate_stream does: status 200 and the error as the stream's only
// event (router/src/server.rs, generate_stream_internal, and the recorded
// tgi-generate-stream-error-validation fixtures). By default it answers
// 422 with the error as a JSON body, as TGI's /generate does.
func (s *Server) RejectInStream() *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil {
		s.tok.inStream = true
	}
	return s
}

// PromptTokens returns the prompt tokens (FakeTokens) of each generation
// request received, in order, refused ones included.
func (s *Server) PromptTokens() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		return nil
	}
	return append([]int(nil), s.tok.prompts...)
}

// TokenizeCalls returns how many POST /tokenize requests were answered.
func (s *Server) TokenizeCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		return 0
	}
	return s.tok.calls
}

// serveTokenizer answers POST /tokenize, and refuses a generation that is
// over the limits; it reports whether it answered. s.mu must not be held.
func (s *Server) serveTokenizer(w http.ResponseWriter, r *http.Request, body []byte) bool {
	s.mu.Lock()
	tok := s.tok
	if tok == nil || r.Method != http.MethodPost {
		s.mu.Unlock()
		return false
	}
	if r.URL.Path == "/tokenize" {
		tok.calls++
		s.mu.Unlock()
		tokenizeAnswer(w, tok.llama, body)
		return true
	}
	prompt, maxNew := generationPrompt(body)
	n := FakeTokens(prompt)
	tok.prompts = append(tok.prompts, n)
	llama, maxInput, maxTotal, inStream := tok.llama, tok.maxInput, tok.maxTotal, tok.inStream
	s.mu.Unlock()

	if llama {
		if n <= maxTotal {
			return false
		}
		s.countPost()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		b, _ := json.Marshal(map[string]any{"error": map[string]any{
			"code": 400, "type": "exceed_context_size_error", "n_prompt_tokens": n, "n_ctx": maxTotal,
			"message": fmt.Sprintf("request (%d tokens) exceeds the available context size (%d tokens), try increasing it", n, maxTotal),
		}})
		w.Write(b)
		return true
	}
	// TGI's checks and messages, in its order (router/src/validation.rs,
	// validate_input and ValidationError).
	var msg string
	switch {
	case n+maxNew > maxTotal:
		msg = fmt.Sprintf("`inputs` tokens + `max_new_tokens` must be <= %d. Given: %d `inputs` tokens and %d `max_new_tokens`", maxTotal, n, maxNew)
	case n > maxInput:
		msg = fmt.Sprintf("`inputs` must have less than %d tokens. Given: %d", maxInput, n)
	default:
		return false
	}
	s.countPost()
	b, _ := json.Marshal(map[string]string{"error": "Input validation error: " + msg, "error_type": "validation"})
	if inStream {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data:%s\n\n", b)
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnprocessableEntity)
	w.Write(b)
	return true
}

// countPost counts a generation request answered without a script.
func (s *Server) countPost() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts++
	s.notify()
}

// tokenizeAnswer writes TGI's answer to POST /tokenize (a JSON array of
// {id, text, start, stop}) or llama-server's ({"tokens": [ids]}).
func tokenizeAnswer(w http.ResponseWriter, llama bool, body []byte) {
	var req struct {
		Inputs  *string `json:"inputs"`
		Content *string `json:"content"`
	}
	_ = json.Unmarshal(body, &req)
	text := req.Inputs
	if llama {
		text = req.Content
	}
	if text == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, `{"error":"missing field","error_type":"validation"}`)
		return
	}
	toks := fakeTokens(*text)
	w.Header().Set("Content-Type", "application/json")
	if llama {
		ids := make([]int, len(toks))
		for i := range toks {
			ids[i] = 1000 + i
		}
		json.NewEncoder(w).Encode(map[string]any{"tokens": ids})
		return
	}
	type simpleToken struct {
		ID    int    `json:"id"`
		Text  string `json:"text"`
		Start int    `json:"start"`
		Stop  int    `json:"stop"`
	}
	out := make([]simpleToken, len(toks))
	for i, t := range toks {
		out[i] = simpleToken{ID: 1000 + i, Text: t}
	}
	json.NewEncoder(w).Encode(out)
}

// generationPrompt reads the prompt of a generation request in any of the
// wire formats (TGI's inputs, a completion's prompt, the messages of a
// chat, Ollama's prompt and system) and its token limit.
func generationPrompt(body []byte) (string, int) {
	var req struct {
		Inputs     string `json:"inputs"`
		Parameters struct {
			MaxNewTokens int `json:"max_new_tokens"`
		} `json:"parameters"`
		Prompt   string `json:"prompt"`
		System   string `json:"system"`
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
		MaxTokens int `json:"max_tokens"`
		Options   struct {
			NumPredict int `json:"num_predict"`
		} `json:"options"`
	}
	_ = json.Unmarshal(body, &req)
	parts := []string{req.Inputs, req.Prompt, req.System}
	for _, m := range req.Messages {
		parts = append(parts, m.Content)
	}
	return strings.Join(parts, " "), max(req.Parameters.MaxNewTokens, req.MaxTokens, req.Options.NumPredict)
}
