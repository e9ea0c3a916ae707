// Package streamtest provides fake generation endpoints for tests: real HTTP
// servers on 127.0.0.1 that speak the exact wire formats genls talks to (TGI
// server-sent events, OpenAI-compatible chat and completions, Ollama NDJSON),
// play a script, and record what the client did.
//
// It lives beside the stream package the way net/http/httptest lives beside
// net/http: importable by every test in the module, never by production code.
package streamtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Chunk is one piece of a scripted response body, written and flushed on its
// own Delay after the previous chunk was due. Delays make a schedule, so a
// long run of small delays keeps its rate however long each write takes.
type Chunk struct {
	Data  []byte
	Delay time.Duration
	// Make, when set, makes the data at the moment the chunk is written,
	// instead of Data: for payloads that say when they were sent.
	Make func() []byte
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
	// HangBeforeHeaders answers nothing at all, not even the status line,
	// until the client goes away or the server closes: a server that
	// accepted the request and stalled.
	HangBeforeHeaders bool
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
	discard      bool // keep no requests (DiscardRequests)
	requests     []Request
	posts        int // generation requests received
	disconnected int
	claimed      int           // disconnects already reported by WaitDisconnect
	changed      chan struct{} // closed and replaced when posts or disconnected change
	tok          *tokenizer    // limits and a tokenizer (tokenizer.go), if any
	conns        int           // connections accepted
}

// Connections returns how many connections the server has accepted: a
// client that reuses its connection makes one for many requests.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// NewServer starts a fake endpoint answering every generation with script
// (unless scripts are queued with Push). It is closed when the test ends.
func NewServer(t testing.TB, script Script) *Server {
	s := &Server{def: script, routes: map[string]string{}, changed: make(chan struct{})}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Server.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}
	s.Server.Start()
	t.Cleanup(s.Close)
	return s
}

// DiscardRequests makes the server keep no record of the requests it
// answers (Requests and LastRequest report none), so that in a soak test
// what the server holds does not count as growth.
func (s *Server) DiscardRequests() *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discard = true
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

// LastRequest returns the last generation (POST) request received; a
// POST /tokenize is not one.
func (s *Server) LastRequest() (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.requests) - 1; i >= 0; i-- {
		if s.requests[i].Method == http.MethodPost && s.requests[i].Path != "/tokenize" {
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

// WaitDisconnect waits up to d for a client to abandon a response. Each
// abandoned response satisfies one call.
func (s *Server) WaitDisconnect(d time.Duration) bool {
	return s.waitFor(d, func() bool {
		if s.disconnected > s.claimed {
			s.claimed++
			return true
		}
		return false
	})
}

// WaitRequests waits up to d until n generation requests have arrived in
// all, whether or not they have been answered.
func (s *Server) WaitRequests(n int, d time.Duration) bool {
	return s.waitFor(d, func() bool { return s.posts >= n })
}

// waitFor waits up to d for cond, which runs with s.mu held.
func (s *Server) waitFor(d time.Duration, cond func() bool) bool {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		ok, changed := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-timeout.C:
			return false
		}
	}
}

// notify wakes the waiters of waitFor; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	if !s.discard {
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	}
	s.mu.Unlock()
	if s.serveTokenizer(w, r, body) {
		return
	}
	if r.URL.Path == "/tokenize" {
		// No tokenizer configured: like a server without the route,
		// and never an answer queued for a generation.
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
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
	s.posts++
	s.notify()
	s.mu.Unlock()

	gone := func() {
		s.mu.Lock()
		s.disconnected++
		s.notify()
		s.mu.Unlock()
	}
	if script.HangBeforeHeaders {
		<-r.Context().Done()
		gone()
		return
	}
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
	due := time.Now()
	for _, c := range script.Chunks {
		due = due.Add(c.Delay)
		if wait := time.Until(due); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-r.Context().Done():
				timer.Stop()
				gone()
				return
			}
		}
		data := c.Data
		if c.Make != nil {
			data = c.Make()
		}
		if _, err := w.Write(data); err != nil {
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
	var generated strings.Builder
	payloads := make([]string, len(toks))
	for i, t := range toks {
		if !t.Special {
			generated.WriteString(t.Text)
		}
		payloads[i] = tgiEvent(i, len(toks), t, finishReason, generated.String())
	}
	return Script{Chunks: Events(delay, payloads...)}
}

// TGIFunc scripts a TGI stream of n ordinary tokens, each made by text(i)
// at the moment it is written, so that a benchmark can stamp the time in
// it. The final event's generated_text is empty, the texts not being known
// in advance; genls does not read it.
func TGIFunc(n int, delay time.Duration, finishReason string, text func(i int) string) Script {
	chunks := make([]Chunk, n)
	for i := range chunks {
		chunks[i] = Chunk{Delay: delay, Make: func() []byte {
			return []byte("data: " + tgiEvent(i, n, TGIToken{Text: text(i)}, finishReason, "") + "\n\n")
		}}
	}
	return Script{Chunks: chunks}
}

// tgiEvent is the payload of token i of n: the last one carries
// generated_text and the details.
func tgiEvent(i, n int, t TGIToken, finishReason, generated string) string {
	tok, _ := json.Marshal(map[string]any{"id": i + 100, "text": t.Text, "logprob": -0.5, "special": t.Special})
	if i < n-1 {
		return fmt.Sprintf(`{"index":%d,"token":%s,"generated_text":null,"details":null}`, i+1, tok)
	}
	gen, _ := json.Marshal(generated)
	return fmt.Sprintf(`{"index":%d,"token":%s,"generated_text":%s,"details":{"finish_reason":%q,"generated_tokens":%d,"seed":null}}`,
		i+1, tok, gen, finishReason, n)
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
