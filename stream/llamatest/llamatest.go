//go:build unix

// Package llamatest runs llama.cpp's llama-server for tests that need a real
// inference server: tokens nobody scripted, with real tokenizers, special
// tokens, server-side stops and usage chunks. ci-setup.sh beside this file
// builds the server and writes tiny random-weight models with the
// vocabularies of real models; a test starts a server with Start, points
// genls at it (usually through a recording Proxy), and compares what genls
// produced with what the server itself says.
//
// When the server or the models are missing, Start skips the test with the
// command that installs them, or fails it under GENLS_E2E_REQUIRED=1, as the
// real-editor tests do.
package llamatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/genls/genls/editors/e2etest"
)

// The models ci-setup.sh writes: 2 layers, 64 wide, random weights, real
// tokenizers.
const (
	// Qwen2 has Qwen2's byte-level BPE vocabulary (151,936 tokens, with
	// <|endoftext|>, <|im_start|>, <|im_end|> and [PAD…] tokens) and its
	// ChatML chat template.
	Qwen2 = "qwen2-tiny.gguf"
	// StarCoder has StarCoder's vocabulary (49,152 tokens) with the
	// fill-in-the-middle tokens <fim_prefix>, <fim_suffix>, <fim_middle>.
	StarCoder = "starcoder-tiny.gguf"
)

const setupHint = "run `bash stream/llamatest/ci-setup.sh`: a build of 10-25 minutes once, then cached"

// Dir is where ci-setup.sh puts llama-server and the models:
// $GENLS_LLAMA_DIR, else /opt/genls-llama.
func Dir() string {
	if d := os.Getenv("GENLS_LLAMA_DIR"); d != "" {
		return d
	}
	return "/opt/genls-llama"
}

// Server is a running llama-server.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT; its
	// OpenAI-compatible API is under URL+"/v1".
	URL string
	// Model is the model's id, as /v1/models lists it.
	Model string

	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

// Start starts llama-server with the named model (Qwen2, StarCoder) on a
// free loopback port, one thread, a 2,048-token context, one slot and no
// prompt cache, with extraArgs added to its command line, waits
// until it is healthy, and stops it when the test ends. A missing build
// skips the test (fails it under GENLS_E2E_REQUIRED=1).
func Start(t testing.TB, model string, extraArgs ...string) *Server {
	t.Helper()
	bin := filepath.Join(Dir(), "bin", "llama-server")
	modelPath := filepath.Join(Dir(), "models", model)
	for _, p := range []string{bin, modelPath} {
		if _, err := os.Stat(p); err != nil {
			e2etest.Missing(t, p+" is missing ("+setupHint+")")
		}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(t, bin, modelPath, extraArgs)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("llama-server: %v", lastErr)
	return nil
}

func start(t testing.TB, bin, modelPath string, extraArgs []string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// Without the prompt cache every request evaluates its whole prompt in
	// one batch, so the same request always gives the same text. With it, a
	// repeated prompt has only its last token evaluated, alone, whose
	// rounding differs slightly: enough to flip a near-tie between two
	// tokens of a random model hundreds of tokens later.
	args := append([]string{"-m", modelPath, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"-t", "1", "-c", "2048", "-np", "1", "--no-webui", "--no-cache-prompt"}, extraArgs...)
	s := &Server{
		URL:  "http://127.0.0.1:" + strconv.Itoa(port),
		log:  &syncBuffer{},
		done: make(chan struct{}),
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.SysProcAttr = procAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	begun := time.Now()
	if err := s.waitHealthy(60 * time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%v\n%s", err, s.log.String())
	}
	t.Logf("llama-server %s healthy on %s after %v", filepath.Base(modelPath), s.URL, time.Since(begun).Round(time.Millisecond))
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("llama-server log:\n%s", clipLog(s.log.String()))
		}
	})
	var models struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(s.Get(t, "/v1/models"), &models); err != nil || len(models.Data) == 0 {
		t.Fatalf("llama-server /v1/models: %v", err)
	}
	s.Model = models.Data[0].ID
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("exited before it was healthy (%v)", s.cmd.ProcessState)
		default:
		}
		resp, err := harness.Get(s.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not healthy within %v", timeout)
}

func (s *Server) stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// harness is the HTTP client of the tests' own requests and of the proxy:
// one connection per request. llama-server closes a kept-alive connection
// after a few requests or seconds, and a POST sent on a connection it has
// just closed fails with EOF (net/http retries only idempotent requests).
var harness = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// Get returns the body of a GET request to the server, failing the test
// unless it answers 200.
func (s *Server) Get(t testing.TB, path string) []byte {
	t.Helper()
	resp, err := harness.Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", path, resp.Status, err, body)
	}
	return body
}

// Post sends body (any JSON value) to the server and returns the response
// body, failing the test unless it answers 200.
func (s *Server) Post(t testing.TB, path string, body any) []byte {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := harness.Post(s.URL+path, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s %s: %s %v\n%s", path, data, resp.Status, err, out)
	}
	return out
}

// Complete sends body to path without streaming ("stream": false) and
// returns the generated text of the server's answer: the server's own word
// on what a request generates.
func (s *Server) Complete(t testing.TB, path string, body map[string]any) string {
	t.Helper()
	req := make(map[string]any, len(body)+1)
	for k, v := range body {
		req[k] = v
	}
	req["stream"] = false
	text, err := ResponseText(s.Post(t, path, req))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return text
}

// Raw sends body to path as a streaming request and returns the raw response
// body and how long it took from sending the request to its last byte.
func (s *Server) Raw(t testing.TB, path string, body map[string]any) ([]byte, time.Duration) {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := harness.Post(s.URL+path, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	elapsed := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s %v\n%s", path, resp.Status, err, out)
	}
	return out, elapsed
}

// ResponseText returns the generated text of a non-streaming response of
// any of the server's APIs: chat (choices[0].message.content), OpenAI
// completions (choices[0].text) or native (content).
func ResponseText(body []byte) (string, error) {
	var r struct {
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
			} `json:"message"`
			Text *string `json:"text"`
		} `json:"choices"`
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("%v in %s", err, clipLog(string(body)))
	}
	switch {
	case r.Content != nil:
		return *r.Content, nil
	case len(r.Choices) > 0 && r.Choices[0].Message.Content != nil:
		return *r.Choices[0].Message.Content, nil
	case len(r.Choices) > 0 && r.Choices[0].Text != nil:
		return *r.Choices[0].Text, nil
	}
	return "", fmt.Errorf("no generated text in %s", clipLog(string(body)))
}

// Streamed is what a raw server-sent-event stream of the server said.
type Streamed struct {
	// Text is the concatenation of every chunk's text.
	Text string
	// Chunks counts the chunks that carried text.
	Chunks int
	// Tokens is the number of generated tokens the server reported in its
	// last chunk (usage.completion_tokens, or timings.predicted_n); -1 when
	// it reported none.
	Tokens int
	// FinishReason is the last finish_reason (or stop_type) seen.
	FinishReason string
}

// StreamText reads a raw response body of the server's streaming APIs, with
// a parser of its own (not genls's): "data:" lines, each a JSON chunk of the
// chat, completions or native API, until "[DONE]".
func StreamText(raw []byte) (Streamed, error) {
	out := Streamed{Tokens: -1}
	var text strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSuffix(line, "\r")
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue
		}
		data = strings.TrimPrefix(data, " ")
		if data == "[DONE]" {
			break
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content *string `json:"content"`
				} `json:"delta"`
				Text         *string `json:"text"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Content  *string `json:"content"`
			StopType string  `json:"stop_type"`
			Usage    *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
			Timings *struct {
				PredictedN int `json:"predicted_n"`
			} `json:"timings"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return out, fmt.Errorf("chunk %q: %v", data, err)
		}
		if len(c.Error) > 0 {
			return out, fmt.Errorf("error in the stream: %s", c.Error)
		}
		var piece *string
		switch {
		case c.Content != nil:
			piece = c.Content
		case len(c.Choices) > 0 && c.Choices[0].Delta.Content != nil:
			piece = c.Choices[0].Delta.Content
		case len(c.Choices) > 0 && c.Choices[0].Text != nil:
			piece = c.Choices[0].Text
		}
		if piece != nil && *piece != "" {
			text.WriteString(*piece)
			out.Chunks++
		}
		if len(c.Choices) > 0 && c.Choices[0].FinishReason != nil {
			out.FinishReason = *c.Choices[0].FinishReason
		}
		if c.StopType != "" {
			out.FinishReason = c.StopType
		}
		switch {
		case c.Usage != nil:
			out.Tokens = c.Usage.CompletionTokens
		case c.Timings != nil && c.Timings.PredictedN > 0:
			out.Tokens = c.Timings.PredictedN
		}
	}
	out.Text = text.String()
	return out, nil
}

// ToDocument is the text an editor should hold after generated text s is
// inserted into a document whose line ending is eol ("\n" or "\r\n"), as
// the README describes: "\r\n", a lone "\r", U+2028, U+2029 and U+0085 are
// each one line break, written as eol; NUL is dropped. It is written apart
// from genls's own conversion on purpose, so that a test comparing the two
// checks genls against the documented behaviour.
func ToDocument(s, eol string) string {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '\r':
			if i+1 < len(rs) && rs[i+1] == '\n' {
				i++
			}
			b.WriteString(eol)
		case '\n', '\u2028', '\u2029', '\u0085':
			b.WriteString(eol)
		case 0:
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// An Exchange is one request that went through a Proxy.
type Exchange struct {
	Method, Path string
	// Sent is the request body as forwarded to the server (after the
	// proxy's rewrite); Received is the client's original.
	Sent, Received []byte
	Status         int
	// Response is the server's raw response body.
	Response []byte
	// Start is when the request arrived; FirstByte and End when the first
	// and last bytes of the response were read from the server.
	Start, FirstByte, End time.Time
}

// Body decodes the forwarded request body.
func (e Exchange) Body() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(e.Sent, &m)
	return m
}

// Proxy forwards requests to a Server and records each one, with its raw
// response, flushing every read so that streaming is not delayed.
type Proxy struct {
	URL string
	// Propagate ends the upstream request when the client goes away, as a
	// server in genls's path would see it; by default the upstream request
	// runs to its end so that the recording holds the whole response.
	Propagate bool

	server  *Server
	rewrite func(body map[string]any)

	mu        sync.Mutex
	exchanges []Exchange
}

// Proxy starts a recording proxy in front of s, closed when the test ends.
// rewrite, when not nil, may change the JSON body of every POST before it is
// forwarded: tests add llama-server's "ignore_eos" so that a generation
// always runs to its token limit.
func (s *Server) Proxy(t testing.TB, rewrite func(body map[string]any)) *Proxy {
	t.Helper()
	p := &Proxy{server: s, rewrite: rewrite}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: p}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	p.URL = "http://" + l.Addr().String()
	return p
}

// IgnoreEOS is a Proxy rewrite that makes every generation run to its token
// limit.
func IgnoreEOS(body map[string]any) { body["ignore_eos"] = true }

// lineBreakGrammar makes the model write, between runs of up to four
// characters of its own choosing, every kind of line break in turn: "\r\n",
// a lone "\r", "\n", U+2028 (two tokens, split inside the character),
// U+0085, U+2029, and "\r" and "\n" allowed in separate tokens. NUL cannot
// be written in llama.cpp's grammars; the random models write it now and
// then on their own.
const lineBreakGrammar = `root ::= (t "\r\n" t "\r" t "\n" t "\u2028" t "\u0085" t "\u2029" t "\r" "\n")+
t ::= [^\r\n\u2028\u2029\u0085]{1,4}
`

// LineBreaks is a Proxy rewrite that, besides IgnoreEOS, constrains the
// generation with a grammar full of unusual line breaks. Grammar-constrained
// sampling is slow (about 40 tokens/s on these models): keep such
// generations short.
func LineBreaks(body map[string]any) {
	IgnoreEOS(body)
	body["grammar"] = lineBreakGrammar
}

// Exchanges returns the requests so far.
func (p *Proxy) Exchanges() []Exchange {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Exchange(nil), p.exchanges...)
}

// Generations returns the POST requests so far, but for /tokenize (genls
// counts a prompt's tokens there before it generates).
func (p *Proxy) Generations() []Exchange {
	var out []Exchange
	for _, e := range p.Exchanges() {
		if e.Method == http.MethodPost && e.Path != "/tokenize" {
			out = append(out, e)
		}
	}
	return out
}

// Wait waits until n generations (POST requests) have been recorded in
// full, and returns them.
func (p *Proxy) Wait(t testing.TB, n int) []Exchange {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		g := p.Generations()
		if len(g) >= n {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy recorded %d generation requests, want %d", len(g), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Reset forgets the recorded exchanges.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exchanges = nil
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := Exchange{Method: r.Method, Path: r.URL.Path, Start: time.Now()}
	defer func() {
		p.mu.Lock()
		p.exchanges = append(p.exchanges, ex)
		p.mu.Unlock()
	}()
	ex.Received, _ = io.ReadAll(r.Body)
	ex.Sent = ex.Received
	if r.Method == http.MethodPost && p.rewrite != nil {
		var m map[string]any
		if json.Unmarshal(ex.Received, &m) == nil {
			p.rewrite(m)
			ex.Sent, _ = json.Marshal(m)
		}
	}
	// The upstream request outlives the client's: the recording holds the
	// whole response even when the client stops reading at the final chunk.
	ctx := context.WithoutCancel(r.Context())
	if p.Propagate {
		ctx = r.Context()
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, p.server.URL+r.URL.RequestURI(), bytes.NewReader(ex.Sent))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.Header.Del("Content-Length")
	resp, err := harness.Transport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if k == "Content-Length" {
			continue
		}
		w.Header()[k] = vs
	}
	ex.Status = resp.StatusCode
	w.WriteHeader(resp.StatusCode)
	flusher, _ := w.(http.Flusher)
	var body bytes.Buffer
	buf := make([]byte, 32<<10)
	clientGone := false
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if ex.FirstByte.IsZero() {
				ex.FirstByte = time.Now()
			}
			body.Write(buf[:n])
			if !clientGone {
				if _, werr := w.Write(buf[:n]); werr != nil {
					clientGone = true
				} else if flusher != nil {
					flusher.Flush()
				}
			}
		}
		if err != nil {
			break
		}
	}
	ex.End = time.Now()
	ex.Response = body.Bytes()
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func clipLog(s string) string {
	const max = 8000
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

// Generation describes one generation as genls's settings express it.
type Generation struct {
	Backend   string // "openai" (chat) or "openai-completions"
	Model     string
	Prompt    string // the user message for chat
	System    string // the system message for chat, if any
	MaxTokens int
	Seed      int
	// Rewrite is what the proxy genls talks to adds to its requests
	// (default IgnoreEOS).
	Rewrite func(body map[string]any)
}

// Settings returns genls settings (the editors' JSON object) for g against
// baseURL, a Server's or Proxy's URL, with greedy sampling.
func (g Generation) Settings(baseURL string) map[string]any {
	return map[string]any{
		"endpoint":   map[string]any{"url": baseURL + "/v1", "backend": g.Backend, "model": g.Model},
		"parameters": map[string]any{"max_new_tokens": g.MaxTokens, "temperature": 0, "seed": g.Seed},
	}
}

// Request returns the path and body of the request the README says genls
// sends for g, as g.Rewrite changes it. Tests ask the
// server for its answer to this request before an editor session, and
// compare it with the request genls really sent afterwards.
func (g Generation) Request() (string, map[string]any) {
	body := map[string]any{
		"model": g.Model, "stream": true, "max_tokens": g.MaxTokens, "temperature": 0, "seed": g.Seed,
	}
	rewrite := g.Rewrite
	if rewrite == nil {
		rewrite = IgnoreEOS
	}
	rewrite(body)
	if g.Backend == "openai-completions" {
		body["prompt"] = g.Prompt
		return "/v1/completions", body
	}
	var messages []any
	if g.System != "" {
		messages = append(messages, map[string]any{"role": "system", "content": g.System})
	}
	body["messages"] = append(messages, map[string]any{"role": "user", "content": g.Prompt})
	return "/v1/chat/completions", body
}

// SameJSON reports whether two JSON values are equal once encoded and
// decoded, so that 0 and 0.0, or []any and []map[string]any, compare equal.
func SameJSON(a, b any) bool {
	norm := func(v any) string {
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		var out any
		_ = json.Unmarshal(data, &out)
		data, _ = json.Marshal(out)
		return string(data)
	}
	return norm(a) == norm(b)
}

// Breaks counts the line breaks and other characters in s that genls treats
// specially when it writes into a document.
type Breaks struct {
	LF, CRLF, LoneCR, LS, PS, NEL, NUL, Replacement int
}

// CountBreaks counts them in s; a "\r\n" counts once, as CRLF.
func CountBreaks(s string) Breaks {
	var b Breaks
	rs := []rune(s)
	for i, r := range rs {
		switch r {
		case '\r':
			if i+1 < len(rs) && rs[i+1] == '\n' {
				b.CRLF++
			} else {
				b.LoneCR++
			}
		case '\n':
			if i == 0 || rs[i-1] != '\r' {
				b.LF++
			}
		case '\u2028':
			b.LS++
		case '\u2029':
			b.PS++
		case '\u0085':
			b.NEL++
		case 0:
			b.NUL++
		case '\uFFFD':
			b.Replacement++
		}
	}
	return b
}

func (b Breaks) String() string {
	return fmt.Sprintf("%d LF, %d CRLF, %d lone CR, %d U+2028, %d U+2029, %d U+0085, %d NUL, %d U+FFFD",
		b.LF, b.CRLF, b.LoneCR, b.LS, b.PS, b.NEL, b.NUL, b.Replacement)
}

// A Case is a named Generation.
type Case struct {
	Name string
	Gen  Generation
}

// EditorCases are the generations the real-editor tests make into each
// document, from "def fib(n):" with model: 1,000 tokens through the
// completions and the chat APIs (system is genls's system prompt), and 100
// tokens constrained to hold every kind of line break (LineBreaks).
func EditorCases(model, system string) []Case {
	gen := func(backend string, maxTokens int, rewrite func(map[string]any)) Generation {
		g := Generation{Backend: backend, Model: model, Prompt: "def fib(n):", MaxTokens: maxTokens, Seed: 11, Rewrite: rewrite}
		if backend == "openai" {
			g.System = system
		}
		return g
	}
	return []Case{
		{"completions", gen("openai-completions", 1000, IgnoreEOS)},
		{"chat", gen("openai", 1000, IgnoreEOS)},
		{"line breaks", gen("openai-completions", 100, LineBreaks)},
	}
}

// Reference asks the server for its answer to g's request without
// streaming, and checks that a LineBreaks generation holds every kind of
// line break.
func (s *Server) Reference(t testing.TB, g Generation) string {
	t.Helper()
	path, body := g.Request()
	text := s.Complete(t, path, body)
	b := CountBreaks(text)
	t.Logf("the server's text for %s: %d bytes; %v", path, len(text), b)
	if _, ok := body["grammar"]; ok && (b.CRLF == 0 || b.LoneCR == 0 || b.LF == 0 || b.LS == 0 || b.PS == 0 || b.NEL == 0) {
		t.Fatalf("the grammar did not make the server write every kind of line break: %v", b)
	}
	return text
}

// CheckOnlyRequest checks that genls made exactly one generation request
// through p, that it was the request predicted (path and body), and that
// the server streamed it maxTokens tokens of text, the text the same
// request gave before: the editor tests' proof that what they compare the
// buffer with is what genls received.
func (p *Proxy) CheckOnlyRequest(t testing.TB, path string, body any, maxTokens int, text string) {
	t.Helper()
	gens := p.Wait(t, 1)
	if len(gens) != 1 {
		t.Fatalf("genls made %d generation requests, want 1", len(gens))
	}
	ex := gens[0]
	if ex.Path != path || !SameJSON(ex.Body(), body) {
		t.Fatalf("genls sent %s %s\nwant %s %v", ex.Path, ex.Sent, path, body)
	}
	streamed, err := StreamText(ex.Response)
	if err != nil {
		t.Fatal(err)
	}
	if streamed.Tokens != maxTokens {
		t.Errorf("the server generated %d tokens, want %d", streamed.Tokens, maxTokens)
	}
	if streamed.Text != text {
		t.Fatalf("the server streamed %q to genls\nbut %q to the same request before", e2etest.Clip(streamed.Text), e2etest.Clip(text))
	}
}
