// Package streamtest provides fake generation endpoints for tests: real HTTP
// servers on 127.0.0.1 that speak the exact wire formats genls talks to (TGI
// server-sent events, OpenAI-compatible chat and completions, Ollama NDJSON),
// play a script, and record what the client did.
//
// It lives beside the stream package the way net/http/httptest lives beside
// net/http: importable by every test in the module, never by production code.
package streamtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
)

// Chunk is one piece of a scripted response body, written and flushed on its
// own after Delay.
type Chunk struct {
	Data  []byte
	Delay time.Duration
}

// Script is what the fake endpoint answers to a generation request.
type Script struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Header is added to the response (Content-Type defaults to
	// text/event-stream, or application/x-ndjson for Ollama scripts).
	Header http.Header
	// Chunks are written in order, each flushed at once.
	Chunks []Chunk
	// Hang keeps the response open after the last chunk until the client goes
	// away or the server closes, to test idle timeouts and cancellation.
	Hang bool
	// Reset aborts the connection after the last chunk without finishing the
	// HTTP response, like a dropped connection.
	Reset bool
}

// Request is one request the fake endpoint received.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// JSON decodes the request body into a generic map.
func (r Request) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// Server is a fake endpoint. Generation requests (POST) are answered from the
// queue of scripts given to Push, or the default script when the queue is
// empty; GET requests to Routes are answered with their fixed bodies, which is
// how backend probing (/info, /v1/models, /api/tags) is faked.
type Server struct {
	*httptest.Server

	mu           sync.Mutex
	queue        []Script
	def          Script
	routes       map[string]string
	requests     []Request
	disconnected int
	closedCh     chan struct{}
}

// NewServer starts a fake endpoint answering every generation with script
// (unless scripts are queued with Push). It is closed when the test ends.
func NewServer(t testing.TB, script Script) *Server {
	s := &Server{def: script, routes: map[string]string{}, closedCh: make(chan struct{}, 1024)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Close closes client connections first so that hanging scripts end, then
// shuts the server down.
func (s *Server) Close() {
	s.Server.CloseClientConnections()
	s.Server.Close()
}

// Route makes GET path answer 200 with body (JSON).
func (s *Server) Route(path, body string) *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[path] = body
	return s
}

// Push queues scripts answered, in order, by the next generation requests.
func (s *Server) Push(scripts ...Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, scripts...)
}

// Requests returns a copy of the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// LastRequest returns the last generation (POST) request received.
func (s *Server) LastRequest() (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.requests) - 1; i >= 0; i-- {
		if s.requests[i].Method == http.MethodPost {
			return s.requests[i], true
		}
	}
	return Request{}, false
}

// Disconnects reports how many generation responses ended because the client
// went away before the script was over.
func (s *Server) Disconnects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.disconnected
}

// WaitDisconnect waits up to d for a client to abandon a response.
func (s *Server) WaitDisconnect(d time.Duration) bool {
	select {
	case <-s.closedCh:
		return true
	case <-time.After(d):
		return false
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	if r.Method == http.MethodGet {
		route, ok := s.routes[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, route)
		return
	}
	script := s.def
	if len(s.queue) > 0 {
		script = s.queue[0]
		s.queue = s.queue[1:]
	}
	s.mu.Unlock()

	for k, vs := range script.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/event-stream")
	}
	status := script.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	gone := func() {
		s.mu.Lock()
		s.disconnected++
		s.mu.Unlock()
		select {
		case s.closedCh <- struct{}{}:
		default:
		}
	}
	for _, c := range script.Chunks {
		if c.Delay > 0 {
			select {
			case <-time.After(c.Delay):
			case <-r.Context().Done():
				gone()
				return
			}
		}
		if _, err := w.Write(c.Data); err != nil {
			gone()
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		if r.Context().Err() != nil {
			gone()
			return
		}
	}
	if script.Reset {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return
	}
	if script.Hang {
		<-r.Context().Done()
		gone()
	}
}

// Events turns SSE data payloads into one chunk per event ("data: P\n\n").
func Events(delay time.Duration, payloads ...string) []Chunk {
	chunks := make([]Chunk, len(payloads))
	for i, p := range payloads {
		chunks[i] = Chunk{Data: []byte("data: " + p + "\n\n"), Delay: delay}
	}
	return chunks
}

// TGIToken is one token of a scripted TGI stream.
type TGIToken struct {
	Text    string
	Special bool
}

// TGI scripts a TGI /generate_stream response that produces texts as
// ordinary tokens and ends with finishReason ("length", "eos_token",
// "stop_sequence"), each event flushed after delay.
func TGI(delay time.Duration, finishReason string, texts ...string) Script {
	toks := make([]TGIToken, len(texts))
	for i, t := range texts {
		toks[i] = TGIToken{Text: t}
	}
	return TGITokens(delay, finishReason, toks...)
}

// TGITokens is TGI with control over the special flag of each token.
func TGITokens(delay time.Duration, finishReason string, toks ...TGIToken) Script {
	var generated bytes.Buffer
	payloads := make([]string, len(toks))
	for i, t := range toks {
		if !t.Special {
			generated.WriteString(t.Text)
		}
		tok, _ := json.Marshal(map[string]any{"id": i + 100, "text": t.Text, "logprob": -0.5, "special": t.Special})
		if i == len(toks)-1 {
			gen, _ := json.Marshal(generated.String())
			payloads[i] = fmt.Sprintf(`{"index":%d,"token":%s,"generated_text":%s,"details":{"finish_reason":%q,"generated_tokens":%d,"seed":null}}`,
				i+1, tok, gen, finishReason, len(toks))
		} else {
			payloads[i] = fmt.Sprintf(`{"index":%d,"token":%s,"generated_text":null,"details":null}`, i+1, tok)
		}
	}
	return Script{Chunks: Events(delay, payloads...)}
}

// OpenAIChat scripts an OpenAI-compatible chat completions stream producing
// texts, then a chunk with finishReason and "data: [DONE]".
func OpenAIChat(delay time.Duration, finishReason string, texts ...string) Script {
	payloads := make([]string, 0, len(texts)+2)
	for _, t := range texts {
		c, _ := json.Marshal(t)
		payloads = append(payloads, fmt.Sprintf(`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":%s},"finish_reason":null}]}`, c))
	}
	payloads = append(payloads,
		fmt.Sprintf(`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":%q}]}`, finishReason),
		"[DONE]")
	return Script{Chunks: Events(delay, payloads...)}
}

// Ollama scripts an Ollama /api/generate NDJSON stream producing texts.
func Ollama(delay time.Duration, doneReason string, texts ...string) Script {
	var chunks []Chunk
	for _, t := range texts {
		c, _ := json.Marshal(t)
		chunks = append(chunks, Chunk{Data: fmt.Appendf(nil, `{"model":"m","created_at":"2026-01-01T00:00:00Z","response":%s,"done":false}`+"\n", c), Delay: delay})
	}
	chunks = append(chunks, Chunk{Data: fmt.Appendf(nil, `{"model":"m","created_at":"2026-01-01T00:00:00Z","response":"","done":true,"done_reason":%q,"eval_count":%d}`+"\n", doneReason, len(texts)), Delay: delay})
	return Script{Header: http.Header{"Content-Type": {"application/x-ndjson"}}, Chunks: chunks}
}

// Error scripts an HTTP error response with a JSON body.
func Error(status int, body string) Script {
	return Script{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Chunks: []Chunk{{Data: []byte(body)}}}
}

// Fixture scripts the bytes of a recorded response body, split into chunks of
// at most size bytes (0: one chunk), so that decoders see events cut anywhere.
func Fixture(t testing.TB, path string, size int) Script {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	if size <= 0 {
		size = len(data)
	}
	var chunks []Chunk
	for len(data) > 0 {
		n := min(size, len(data))
		chunks = append(chunks, Chunk{Data: data[:n]})
		data = data[n:]
	}
	return Script{Chunks: chunks}
}
