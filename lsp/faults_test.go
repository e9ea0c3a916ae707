package lsp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/genls/genls/stream/streamtest"
)

// Fault tests: each injects one fault from the endpoint's side or the
// editor's, then checks what must hold afterwards: the document holds
// exactly the text generated before the fault, at the right place; the
// server keeps serving (the next generation works); and nothing leaks
// (goleak in TestMain).

// faultyEditor is a fakeEditor whose handler can be made to misbehave at
// run time, whose server logs where the test says, and which records every
// message the server sent it.
type faultyEditor struct {
	*fakeEditor
	// dropEdits makes the editor never answer workspace/applyEdit.
	dropEdits atomic.Bool
	// rejectEdits makes it answer applied:false.
	rejectEdits atomic.Bool

	recMu    sync.Mutex
	received []string // method + raw params of everything the server sent
}

// newFaultyEditor is newFakeEditor with a logger of the test's choosing (nil:
// the test log) and a handler that injects faults and records messages.
func newFaultyEditor(t testing.TB, opts editorOptions, logger *zap.Logger) *faultyEditor {
	t.Helper()
	if logger == nil {
		logger = zaptest.NewLogger(t)
	}
	f := &faultyEditor{}
	f.fakeEditor = startFakeEditor(t, opts, logger, func(own jsonrpc2.Handler) jsonrpc2.Handler {
		return func(ctx context.Context, req *jsonrpc2.Request) (any, error) { return f.handle(ctx, req, own) }
	})
	return f
}

func (f *faultyEditor) handle(ctx context.Context, req *jsonrpc2.Request, own jsonrpc2.Handler) (any, error) {
	f.recMu.Lock()
	f.received = append(f.received, req.Method()+" "+string(req.Params()))
	f.recMu.Unlock()
	if req.Method() == "workspace/applyEdit" {
		if f.dropEdits.Load() {
			jsonrpc2.Async(ctx)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		if f.rejectEdits.Load() {
			return map[string]any{"applied": false, "failureReason": "rejected by test"}, nil
		}
	}
	return own(ctx, req)
}

func (f *faultyEditor) allReceived() string {
	f.recMu.Lock()
	defer f.recMu.Unlock()
	return strings.Join(f.received, "\n")
}

// reset forgets progress and messages so awaitEnded counts from zero.
func (e *fakeEditor) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.progress = map[string][]map[string]any{}
	e.messages = nil
}

// generateAndWait runs Generate on [a, b) of uri's current text and waits
// for the generation to end; it returns the end message.
func (e *fakeEditor) generateAndWait(uri string, a, b int) string {
	e.t.Helper()
	e.reset()
	text := e.text(uri)
	if err := e.run(uri, rangeOf(e.enc(), text, a, b), "Generate"); err != nil {
		e.t.Fatalf("generate: %v", err)
	}
	return e.awaitEnded(1)[0]
}

// quietTLSServer is an HTTPS endpoint whose certificate nobody trusts; the
// handshake errors it logs are expected.
func quietTLSServer(t *testing.T) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request reached the untrusted server: %s", r.URL)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// lockedBuffer collects a log safely from any goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) Sync() error { return nil }

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// bufferLogger logs everything, debug level included, to a buffer.
func bufferLogger() (*zap.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()), buf, zapcore.DebugLevel)
	return zap.New(core), buf
}

// trickle is script cut into one-byte chunks, each written after delay.
func trickle(script streamtest.Script, delay time.Duration) streamtest.Script {
	var out []streamtest.Chunk
	for _, c := range script.Chunks {
		for i := range c.Data {
			out = append(out, streamtest.Chunk{Data: c.Data[i : i+1], Delay: delay})
		}
	}
	script.Chunks = out
	return script
}

// TestEndpointFaultsThroughEditor injects every endpoint fault under one
// generation, then checks the document, the message shown, and that the
// next generation (against a healthy endpoint) works.
func TestEndpointFaultsThroughEditor(t *testing.T) {
	t.Parallel()
	three := streamtest.TGI(0, "length", "par", "tial", "never", "seen")
	two := three.Chunks[:2]
	with := func(chunks []streamtest.Chunk, more ...streamtest.Chunk) []streamtest.Chunk {
		return append(append([]streamtest.Chunk(nil), chunks...), more...)
	}
	idle := func(s map[string]any) { s["idle_timeout_seconds"] = 0.3 }
	type fault struct {
		name string
		// url returns the endpoint URL of the faulty generation, given
		// the healthy fake endpoint (which plays script first).
		url     func(t *testing.T, healthy *streamtest.Server) string
		script  *streamtest.Script
		extra   func(map[string]any)
		want    string // generated text that must be in the document
		message string // in the progress end or a shown message
	}
	self := func(t *testing.T, s *streamtest.Server) string { return s.URL }
	script := func(s streamtest.Script) *streamtest.Script { return &s }
	faults := []fault{
		{name: "connection refused", url: func(t *testing.T, _ *streamtest.Server) string {
			dead := streamtest.NewServer(t, streamtest.Script{})
			dead.Close()
			return dead.URL
		}, message: "cannot reach"},
		{name: "DNS failure", url: func(*testing.T, *streamtest.Server) string { return "http://genls-fault-test.invalid:8080" },
			message: "cannot reach"},
		{name: "TLS failure", url: func(t *testing.T, _ *streamtest.Server) string { return quietTLSServer(t).URL },
			message: "certificate"},
		{name: "401", url: self, script: script(streamtest.Error(401, `{"error":"Invalid credentials"}`)), message: "none was sent"},
		{name: "403", url: self, script: script(streamtest.Error(403, `{"error":"forbidden"}`)), message: "403 forbidden (run `genls doctor`"},
		{name: "404", url: self, script: script(streamtest.Error(404, `{"error":"Model x does not exist"}`)), message: "wrong endpoint URL or model name"},
		{name: "422", url: self, script: script(streamtest.Error(422, `{"error":"Input validation error","error_type":"validation"}`)), message: "refused the request"},
		{name: "424", url: self, script: script(streamtest.Error(424, `{"error":"CUDA OOM","error_type":"generation"}`)), message: "failed to generate (424)"},
		{name: "429", url: self, script: script(streamtest.Error(429, `{"error":"Model is overloaded","error_type":"overloaded"}`)), message: "rate-limited (429)"},
		{name: "500", url: self, script: script(streamtest.Error(500, `{"error":{"message":"internal"}}`)), message: "endpoint failed (500)"},
		{name: "503", url: self, script: script(streamtest.Error(503, `{"error":"Service Unavailable"}`)), message: "endpoint failed (503)"},
		{name: "reset mid-stream", url: self, script: script(streamtest.Script{Chunks: two, Reset: true}),
			want: "partial", message: "dropped during the stream"},
		{name: "stall mid-stream", url: self, script: script(streamtest.Script{Chunks: two, Hang: true}), extra: idle,
			want: "partial", message: "sent nothing for 300ms"},
		{name: "malformed JSON", url: self, script: script(streamtest.Script{Chunks: with(two, streamtest.Events(0, `{"token":{"text":`)...)}),
			want: "partial", message: "malformed event"},
		{name: "oversized event", url: self, script: script(streamtest.Script{Chunks: with(two,
			streamtest.Chunk{Data: []byte("data: " + strings.Repeat("x", 3<<20))})}),
			want: "partial", message: "larger than"},
		{name: "no final event", url: self, script: script(streamtest.Script{Chunks: two}),
			want: "partial", message: "without a final event"},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			healthy := streamtest.NewServer(t, streamtest.TGI(0, "length", "!"))
			if f.script != nil {
				healthy.Push(*f.script)
			}
			url := f.url(t, healthy)
			extras := []func(map[string]any){}
			if f.extra != nil {
				extras = append(extras, f.extra)
			}
			ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(url, extras...)}, nil)
			ed.open(uri, "x\ny")
			end := ed.generateAndWait(uri, 0, 1)
			if !strings.HasPrefix(end, "failed") {
				t.Errorf("progress end %q, want failed", end)
			}
			ed.await("an error message", func() bool { return contains(append(ed.shownMessages(), end), f.message) })
			if got, want := ed.text(uri), "x"+f.want+"\ny"; got != want {
				t.Fatalf("text after the fault %q, want %q", got, want)
			}
			if f.script != nil && f.script.Hang && !healthy.WaitDisconnect(5*time.Second) {
				t.Errorf("the stalled upstream request was not closed")
			}
			// The server still serves: point it at the healthy endpoint
			// and generate again.
			if url != healthy.URL {
				ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": tgiSettings(healthy.URL)})
			}
			ed.await("the next generation", func() bool {
				ed.generateAndWait(uri, 0, 1)
				return strings.HasPrefix(ed.text(uri), "x!")
			})
			if got, want := ed.text(uri), "x!"+f.want+"\ny"; got != want {
				t.Fatalf("text after the next generation %q, want %q", got, want)
			}
		})
	}
}

// A model that is loading answers 503 with estimated_time; the server waits
// and retries, and the generation then succeeds in full.
func TestModelLoadingRetriedThroughEditor(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "lo", "aded"))
	srv.Push(streamtest.Error(503, `{"error":"Model is currently loading","estimated_time":0.01}`))
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, nil)
	ed.open(uri, "x")
	if end := ed.generateAndWait(uri, 0, 1); !strings.HasPrefix(end, "length") {
		t.Errorf("end %q", end)
	}
	if got := ed.text(uri); got != "xloaded" {
		t.Fatalf("text %q", got)
	}
	posts := 0
	for _, r := range srv.Requests() {
		if r.Method == http.MethodPost && r.Path != "/tokenize" {
			posts++
		}
	}
	if posts != 2 {
		t.Errorf("%d generation requests, want 2 (one 503, one retry)", posts)
	}
}

// While the server waits for a loading model (up to 30 s between retries),
// cancelling ends the generation at once.
func TestCancelWhileModelLoads(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "ok"))
	srv.Push(streamtest.Error(503, `{"error":"Model is currently loading","estimated_time":600}`))
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, nil)
	ed.open(uri, "x")
	ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
	ed.await("the retry's progress report", func() bool {
		ed.mu.Lock()
		defer ed.mu.Unlock()
		return strings.Contains(fmt.Sprint(ed.progress), "model is loading")
	})
	start := time.Now()
	ed.call("workspace/executeCommand", map[string]any{"command": "genls.cancel"}, nil)
	if msgs := ed.awaitEnded(1); msgs[0] != "cancelled" {
		t.Errorf("end %q", msgs[0])
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %s", d)
	}
	if end := ed.generateAndWait(uri, 0, 1); !strings.HasPrefix(end, "length") || ed.text(uri) != "xok" {
		t.Errorf("next generation: %q, text %q", end, ed.text(uri))
	}
}

// A slow trickle, one byte at a time with a delay before each, still
// produces exactly the recorded text: events and UTF-8 characters cut
// anywhere are put back together.
func TestSlowTrickleThroughEditor(t *testing.T) {
	t.Parallel()
	fixture := streamtest.Fixture(t, filepath.Join("..", "stream", "testdata", "fixtures", "tgi-2.0.3-generate-stream-swallow-7b-japanese-transcript.sse"), 1)
	for i := range fixture.Chunks {
		fixture.Chunks[i].Delay = 100 * time.Microsecond
	}
	tokens := []string{"é", "😀", " wörld", "\n", "日本"}
	srv := streamtest.NewServer(t, trickle(streamtest.TGI(0, "length", tokens...), 200*time.Microsecond))
	srv.Push(fixture)
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, nil)
	ed.open(uri, "q\n")
	if end := ed.generateAndWait(uri, 0, 1); !strings.HasPrefix(end, "length: 20 tokens") {
		t.Errorf("end %q", end)
	}
	want := "q\n日本で一番高い山はなんですか?\nベストアンサー\n富士山です。\n"
	if got := ed.text(uri); got != want {
		t.Fatalf("fixture trickled: %q, want %q", got, want)
	}
	ed.generateAndWait(uri, 0, 1)
	if got, want := ed.text(uri), "q"+strings.Join(tokens, "")+"\n日本で一番高い山はなんですか?\nベストアンサー\n富士山です。\n"; got != want {
		t.Fatalf("script trickled: %q, want %q", got, want)
	}
}

// The editor stops answering edits in the middle of a stream: the wait is
// bounded, the upstream request is closed, what was applied stays, and once
// the editor answers again the next generation works.
func TestEditorStopsAnsweringEdits(t *testing.T) {
	t.Parallel()
	chunks := streamtest.TGI(0, "length", "a", "b", "c").Chunks[:2]
	chunks[1].Delay = 300 * time.Millisecond
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "ok"))
	srv.Push(streamtest.Script{Chunks: chunks, Hang: true})
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL),
		limits: EditLimits{Timeout: 300 * time.Millisecond}}, nil)
	ed.open(uri, "x")
	ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
	ed.await("the first token", func() bool { return ed.text(uri) == "xa" })
	ed.dropEdits.Store(true) // "b" arrives later; its edit is never answered
	start := time.Now()
	msgs := ed.awaitEnded(1)
	if !strings.Contains(msgs[0], "did not answer an edit") {
		t.Errorf("end %q", msgs[0])
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("gave up after %s, want about the 300 ms edit timeout", d)
	}
	if !srv.WaitDisconnect(5 * time.Second) {
		t.Errorf("upstream not closed")
	}
	if got := ed.text(uri); got != "xa" {
		t.Errorf("text %q", got)
	}
	ed.dropEdits.Store(false)
	if end := ed.generateAndWait(uri, 0, 1); !strings.HasPrefix(end, "length") {
		t.Errorf("next generation: %q", end)
	}
	if got := ed.text(uri); got != "xoka" {
		t.Errorf("after recovery %q", got)
	}
}

// The editor rejects every edit for a while: the generation ends with a
// message, keeps nothing it could not apply, and the next one works.
func TestEditorRejectsThenRecovers(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "ok"))
	srv.Push(streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b").Chunks[:1], Hang: true})
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, nil)
	ed.rejectEdits.Store(true)
	ed.open(uri, "x")
	end := ed.generateAndWait(uri, 0, 1)
	if !strings.Contains(end, "keeps rejecting edits") {
		t.Errorf("end %q", end)
	}
	if !srv.WaitDisconnect(5 * time.Second) {
		t.Errorf("upstream not closed")
	}
	if got := ed.text(uri); got != "x" {
		t.Errorf("text %q", got)
	}
	ed.rejectEdits.Store(false)
	ed.generateAndWait(uri, 0, 1)
	if got := ed.text(uri); got != "xok" {
		t.Errorf("after recovery %q", got)
	}
}

// The document is closed in the middle of a stream, then opened again: the
// upstream request is closed, and a generation in the reopened document
// works.
func TestDocumentClosedMidStreamThenReopened(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "ok"))
	srv.Push(streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b").Chunks[:1], Hang: true})
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, nil)
	ed.open(uri, "x")
	ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
	ed.await("the first token", func() bool { return ed.text(uri) == "xa" })
	ed.notify("textDocument/didClose", map[string]any{"textDocument": map[string]any{"uri": uri}})
	if !srv.WaitDisconnect(5 * time.Second) {
		t.Errorf("upstream not closed when the document closed")
	}
	ed.awaitEnded(1)
	ed.open(uri, "xa")
	if end := ed.generateAndWait(uri, 0, 1); !strings.HasPrefix(end, "length") {
		t.Errorf("end %q", end)
	}
	if got := ed.text(uri); got != "xoka" {
		t.Errorf("text %q", got)
	}
}

// The editor process dies without shutdown: the pipe closes under a
// running generation. Serve must return, and the upstream request must be
// closed.
func TestEditorDiesMidStream(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b").Chunks[:1], Hang: true})
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, nil)
	ed.open(uri, "x")
	ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
	ed.await("the first token", func() bool { return ed.text(uri) == "xa" })
	ed.conn.Close() // closes the client's end of the pipe
	select {
	case err := <-ed.served:
		if err == nil {
			t.Errorf("Serve returned nil after the editor died without shutdown")
		}
		ed.served <- err
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the editor died")
	}
	if !srv.WaitDisconnect(5 * time.Second) {
		t.Errorf("upstream not closed after the editor died")
	}
}

// rawClient speaks the base protocol by hand, so tests can send what no
// well-behaved client library would.
type rawClient struct {
	t      testing.TB
	conn   net.Conn
	msgs   chan map[string]any
	served chan error
	cancel context.CancelFunc
}

func newRawClient(t testing.TB, logger *zap.Logger) *rawClient {
	t.Helper()
	if logger == nil {
		logger = zap.NewNop()
	}
	clientSide, serverSide := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	c := &rawClient{t: t, conn: clientSide, msgs: make(chan map[string]any, 1024), served: make(chan error, 1), cancel: cancel}
	go func() {
		c.served <- Serve(ctx, Options{In: serverSide, Out: serverSide, Logger: logger, Version: "test",
			Getenv: func(string) string { return "" }})
		serverSide.Close()
	}()
	go c.readLoop()
	return c
}

// readLoop decodes every frame the server writes; it ends when the pipe
// closes.
func (c *rawClient) readLoop() {
	defer close(c.msgs)
	r := bufio.NewReader(c.conn)
	for {
		n := -1
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-Length:"); ok {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if n < 0 {
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		var m map[string]any
		json.Unmarshal(body, &m)
		select {
		case c.msgs <- m:
		default: // nobody is reading; keep draining the pipe
		}
	}
}

// close ends the connection and waits for Serve, which must return.
func (c *rawClient) close() error {
	c.t.Helper()
	c.conn.Close()
	defer c.cancel()
	select {
	case err := <-c.served:
		return err
	case <-time.After(5 * time.Second):
		c.t.Fatalf("Serve did not return after the connection closed")
		return nil
	}
}

// write sends raw bytes; it fails when the server has stopped reading.
func (c *rawClient) write(b []byte) error {
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

func frame(body string) []byte {
	return []byte(fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
}

func (c *rawClient) send(body string) {
	c.t.Helper()
	if err := c.write(frame(body)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply waits for the response with id, skipping other messages.
func (c *rawClient) reply(id int) map[string]any {
	c.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("connection closed while waiting for the response to %d", id)
			}
			if v, ok := m["id"].(float64); ok && int(v) == id && m["method"] == nil {
				return m
			}
		case <-timeout:
			c.t.Fatalf("no response to request %d", id)
		}
	}
}

// repliesUntil returns the responses the server sends up to and including
// the one with id.
func (c *rawClient) repliesUntil(id int) []map[string]any {
	c.t.Helper()
	var out []map[string]any
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("connection closed while waiting for the response to %d", id)
			}
			if m["method"] != nil {
				continue
			}
			out = append(out, m)
			if v, ok := m["id"].(float64); ok && int(v) == id {
				return out
			}
		case <-timeout:
			c.t.Fatalf("no response to request %d (got %v)", id, out)
		}
	}
}

func errorCode(m map[string]any) int {
	e, _ := m["error"].(map[string]any)
	code, _ := e["code"].(float64)
	return int(code)
}

const rawInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"processId":null,"capabilities":{}}}`

// A well-formed request the server must answer while serving.
func rawPing(id int) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"textDocument/codeAction","params":{"textDocument":{"uri":"file:///p.go"},"range":{"start":{"line":0,"character":0},"end":{"line":0,"character":0}},"context":{"diagnostics":[]}}}`, id)
}

// Malformed bodies in well-formed frames: the server answers each as
// JSON-RPC 2.0 says (code, with a null id when the request's id cannot be
// read; 0 for a body that gets no answer) and reads on.
var malformedBodies = []struct {
	name, body string
	code       jsonrpc2.Code
	id         any // the answer's id (nil: null)
}{
	{"array of garbage", `[1,2,3]`, jsonrpc2.InvalidRequest, nil},
	{"empty batch", `[]`, jsonrpc2.InvalidRequest, nil},
	{"params a string", `{"jsonrpc":"2.0","id":11,"method":"textDocument/codeAction","params":"x"}`, jsonrpc2.InvalidParams, 11.0},
	{"params an array", `{"jsonrpc":"2.0","id":12,"method":"workspace/executeCommand","params":[1]}`, jsonrpc2.InvalidParams, 12.0},
	{"notification with bad params", `{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":5}}`, 0, nil},
	{"didChange with bad range", `{"jsonrpc":"2.0","method":"textDocument/didChange","params":{"textDocument":{"uri":"file:///p.go","version":2},"contentChanges":[{"range":{"start":{"line":-1}},"text":"x"}]}}`, 0, nil},
	{"response to nothing", `{"jsonrpc":"2.0","id":999,"result":{}}`, 0, nil},
	{"error response to nothing", `{"jsonrpc":"2.0","id":998,"error":{"code":1,"message":"x"}}`, 0, nil},
	{"invalid UTF-8 in a string", "{\"jsonrpc\":\"2.0\",\"method\":\"textDocument/didOpen\",\"params\":{\"textDocument\":{\"uri\":\"file:///\xff.go\",\"version\":1,\"text\":\"\xc3\"}}}", 0, nil},
	{"not JSON", `{"jsonrpc":"2.0","id":7,"method":`, jsonrpc2.ParseError, nil},
	{"garbage", "\x00\xff\xfe garbage", jsonrpc2.ParseError, nil},
	{"number", `42`, jsonrpc2.ParseError, nil},
	{"null", `null`, jsonrpc2.ParseError, nil},
	{"no method", `{"jsonrpc":"2.0","id":8}`, jsonrpc2.InvalidRequest, nil},
	{"wrong version", `{"jsonrpc":"1.0","id":9,"method":"shutdown"}`, jsonrpc2.InvalidRequest, nil},
	{"method not a string", `{"jsonrpc":"2.0","id":10,"method":5}`, jsonrpc2.InvalidRequest, nil},
	{"id an object", `{"jsonrpc":"2.0","id":{"a":1},"method":"textDocument/codeAction"}`, jsonrpc2.InvalidRequest, nil},
}

// A malformed body gets its answer, and the next request is served (go.lsp.dev/
// jsonrpc2's own header stream would end the connection; lsp/framing.go
// does not).
func TestMalformedJSONRPCBodies(t *testing.T) {
	t.Parallel()
	for _, b := range malformedBodies {
		t.Run(b.name, func(t *testing.T) {
			c := newRawClient(t, zaptest.NewLogger(t))
			c.send(rawInitialize)
			c.reply(1)
			c.send(b.body)
			c.send(rawPing(2))
			answers := c.repliesUntil(2)
			ping := answers[len(answers)-1]
			if ping["error"] != nil {
				t.Errorf("the server stopped serving after %q: %v", b.body, ping)
			}
			answers = answers[:len(answers)-1]
			switch {
			case b.code == 0 && len(answers) > 0:
				t.Errorf("answered %v, want no answer", answers)
			case b.code != 0 && (len(answers) != 1 || errorCode(answers[0]) != int(b.code) || answers[0]["id"] != b.id):
				t.Errorf("answered %v, want one error %d with id %v", answers, b.code, b.id)
			}
			if err := c.close(); err == nil {
				t.Errorf("Serve returned nil after the connection closed without shutdown")
			}
		})
	}
}

// Broken framing ends the connection (no message boundary can be found
// again); the server then ends cleanly: Serve returns an error at once,
// running generations are cancelled and nothing leaks.
func TestBrokenFramingEndsCleanly(t *testing.T) {
	t.Parallel()
	for _, b := range []struct{ name, raw string }{
		{"no Content-Length", "Content-Type: application/json\r\n\r\n{}"},
		{"header without colon", "Content-Length 2\r\n\r\n{}"},
	} {
		t.Run(b.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b").Chunks[:1], Hang: true})
			// Not zaptest: the server's showMessage goroutines may log
			// after Serve returned, and so after the test ended.
			logger, _ := bufferLogger()
			c := newRawClient(t, logger)
			c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{},"initializationOptions":{"endpoint":{"url":%q,"backend":"tgi"}}}}`, srv.URL))
			c.reply(1)
			c.send(`{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///p.go","languageId":"go","version":1,"text":"abc"}}}`)
			c.send(`{"jsonrpc":"2.0","id":2,"method":"workspace/executeCommand","params":{"command":"genls.generate","arguments":[{"uri":"file:///p.go","range":{"start":{"line":0,"character":0},"end":{"line":0,"character":3}}}]}}`)
			c.reply(2)
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				if _, ok := srv.LastRequest(); ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the generation did not reach the endpoint")
				}
			}
			_ = c.write([]byte(b.raw))
			select {
			case err := <-c.served:
				if err == nil {
					t.Errorf("Serve returned nil")
				}
				c.served <- err
			case <-time.After(5 * time.Second):
				t.Fatalf("Serve neither served on nor returned after %q", b.raw)
			}
			if !srv.WaitDisconnect(5 * time.Second) {
				t.Errorf("upstream request not closed")
			}
			c.close()
		})
	}
}

// Broken framing cannot be resynchronised: the server ends the connection
// (Serve returns an error, nothing leaks) rather than hang or guess. Where
// the frame can still be read, it answers what it read and serves on.
func TestMalformedFraming(t *testing.T) {
	t.Parallel()
	const (
		ends      = "ends the connection"
		servesOn  = "serves the next request"
		bodyError = "answers a parse error"
	)
	frames := []struct{ name, raw, want string }{
		{"no Content-Length", "Content-Type: application/json\r\n\r\n{}", ends},
		{"negative length", "Content-Length: -5\r\n\r\n{}", ends},
		{"non-numeric length", "Content-Length: abc\r\n\r\n{}", ends},
		{"huge declared length", "Content-Length: 99999999999999999999\r\n\r\n{}", ends},
		{"header without colon", "Content-Length 2\r\n\r\n{}", ends},
		// An unknown header line: the frame that follows is the ping.
		{"bare JSON", `{"jsonrpc":"2.0","id":3,"method":"shutdown"}` + "\n", servesOn},
		// The ping's bytes are read as the rest of this body.
		{"length longer than the body", "Content-Length: 120\r\n\r\n{}", bodyError},
	}
	for _, f := range frames {
		t.Run(f.name, func(t *testing.T) {
			c := newRawClient(t, zaptest.NewLogger(t))
			c.send(rawInitialize)
			c.reply(1)
			_ = c.write([]byte(f.raw)) // the server may have stopped reading
			_ = c.write(frame(rawPing(2)))
			switch f.want {
			case ends:
				select {
				case err := <-c.served:
					if err == nil {
						t.Errorf("Serve returned nil")
					}
					c.served <- err
				case <-time.After(5 * time.Second):
					t.Fatalf("the server neither ended nor answered")
				}
			case servesOn:
				if answers := c.repliesUntil(2); len(answers) != 1 || answers[0]["error"] != nil {
					t.Errorf("answers %v, want only the ping's", answers)
				}
			case bodyError:
				m := <-c.msgs
				if errorCode(m) != int(jsonrpc2.ParseError) || m["id"] != nil {
					t.Errorf("answer %v, want a parse error with a null id", m)
				}
			}
			c.close()
		})
	}
}

// Requests before initialize get ServerNotInitialized; notifications are
// dropped; initialize then works as usual.
func TestRequestsBeforeInitialize(t *testing.T) {
	t.Parallel()
	c := newRawClient(t, zaptest.NewLogger(t))
	c.send(`{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///p.go","languageId":"go","version":1,"text":"abc"}}}`)
	c.send(rawPing(5))
	if m := c.reply(5); errorCode(m) != int(jsonrpc2.ServerNotInitialized) {
		t.Errorf("codeAction before initialize: %v", m)
	}
	c.send(`{"jsonrpc":"2.0","id":6,"method":"workspace/executeCommand","params":{"command":"genls.generate","arguments":[{"uri":"file:///p.go"}]}}`)
	if m := c.reply(6); errorCode(m) != int(jsonrpc2.ServerNotInitialized) {
		t.Errorf("executeCommand before initialize: %v", m)
	}
	c.send(`{"jsonrpc":"2.0","id":7,"method":"shutdown"}`)
	if m := c.reply(7); errorCode(m) != int(jsonrpc2.ServerNotInitialized) {
		t.Errorf("shutdown before initialize: %v", m)
	}
	c.send(rawInitialize)
	if m := c.reply(1); m["result"] == nil {
		t.Fatalf("initialize after early requests: %v", m)
	}
	// The didOpen before initialize was dropped, as specified.
	c.send(`{"jsonrpc":"2.0","id":8,"method":"workspace/executeCommand","params":{"command":"genls.generate","arguments":[{"uri":"file:///p.go","range":{"start":{"line":0,"character":0},"end":{"line":0,"character":3}}}]}}`)
	if m := c.reply(8); m["error"] == nil || !strings.Contains(fmt.Sprint(m["error"]), "not open") {
		t.Errorf("generate in a document opened before initialize: %v", m)
	}
	c.send(rawPing(9))
	if m := c.reply(9); m["error"] != nil {
		t.Errorf("codeAction after initialize: %v", m)
	}
	c.close()
}

// Unknown requests are answered MethodNotFound, unknown notifications (and
// $/ ones) are ignored, and the server keeps serving.
func TestUnknownMethods(t *testing.T) {
	t.Parallel()
	c := newRawClient(t, zaptest.NewLogger(t))
	c.send(rawInitialize)
	c.reply(1)
	for i, m := range []string{"textDocument/hover", "$/unknown", "genls/whatever", "", "workspace/symbol"} {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{}}`, 100+i, m))
		if r := c.reply(100 + i); errorCode(r) != int(jsonrpc2.MethodNotFound) && r["error"] == nil {
			t.Errorf("%q answered %v, want an error", m, r)
		}
	}
	for _, m := range []string{"$/setTrace", "$/cancelRequest", "textDocument/didSave", "workspace/didChangeWatchedFiles", "nonsense"} {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":%q,"params":{"id":1,"value":"off"}}`, m))
	}
	c.send(rawPing(2))
	if m := c.reply(2); m["error"] != nil {
		t.Errorf("after unknown methods: %v", m)
	}
	c.close()
}

// A 5 MB didOpen is taken in and generated into like any other document.
func TestHugeDocument(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "<", ">"))
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, nil)
	line := strings.Repeat("x", 99) + "\n"
	doc := strings.Repeat(line, 5<<20/len(line)) + "end"
	ed.open(uri, doc)
	ed.generateAndWait(uri, len(doc)-3, len(doc))
	if got := ed.text(uri); got != doc+"<>" {
		t.Fatalf("text: len %d, want %d; tail %q", len(got), len(doc)+2, got[len(got)-10:])
	}
	// Generate here in the middle: the prompt is the end of the 2.5 MB
	// before the cursor, cut to what the endpoint accepts (the default
	// budget: it publishes none), and the text lands at the cursor.
	mid := len(doc) / 2 / len(line) * len(line)
	ed.reset()
	ed.run(uri, rangeOf(encUTF16, ed.text(uri), mid, mid), "Generate here")
	ed.awaitEnded(1)
	if got, want := ed.text(uri), doc[:mid]+"<>"+doc[mid:]+"<>"; got != want {
		t.Fatalf("Generate here in a huge document: wrong text (len %d, want %d)", len(got), len(want))
	}
	req, _ := srv.LastRequest()
	prompt, _ := req.JSON()["inputs"].(string)
	if !strings.HasSuffix(prompt, doc[mid-10*len(line):mid]) || len(prompt) > 64<<10 || !strings.HasPrefix(prompt, line) {
		t.Errorf("prompt of %d bytes: want whole lines ending at the cursor, within the default budget", len(prompt))
	}
}

// Odd URIs, kept exactly as the client spells them, and positions past the
// end: positions clamp to the text (the
// specification's rule), nothing panics, and the text lands at the end.
func TestInvalidURIsAndPositions(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "!"))
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, nil)
	for _, u := range []string{"not a uri", "file:///%zz", "untitled:Untitled-1", "file:///a b/ü.go", "file:///C:/work/x.go", "\x00"} {
		t.Run(fmt.Sprintf("uri %q", u), func(t *testing.T) {
			ed.open(u, "ab\ncd")
			ed.reset()
			big := protocol.Position{Line: 1 << 30, Character: 1 << 31}
			if err := ed.call("workspace/executeCommand", map[string]any{"command": "genls.generate",
				"arguments": []any{map[string]any{"uri": u, "range": protocol.Range{Start: protocol.Position{Line: 1, Character: 0}, End: big}}}}, nil); err != nil {
				t.Fatalf("generate: %v", err)
			}
			ed.awaitEnded(1)
			if got := ed.text(u); got != "ab\ncd!" {
				t.Errorf("text %q, want the selection to clamp to the end", got)
			}
			ed.notify("textDocument/didClose", map[string]any{"textDocument": map[string]any{"uri": u}})
		})
	}
	t.Run("positions", func(t *testing.T) {
		ed.open(uri, "ab\ncd")
		cases := []struct {
			rng  protocol.Range
			here bool
			want string
		}{
			{protocol.Range{Start: protocol.Position{Line: 0, Character: 99}, End: protocol.Position{Line: 0, Character: 99}}, true, "ab!\ncd"},
			{protocol.Range{Start: protocol.Position{Line: 99, Character: 0}, End: protocol.Position{Line: 99, Character: 5}}, true, "ab!\ncd!"},
			{protocol.Range{Start: protocol.Position{Line: 1, Character: 99}, End: protocol.Position{Line: 0, Character: 0}}, false, "ab!\ncd!!"}, // reversed
			{protocol.Range{Start: protocol.Position{Line: 0, Character: 4294967295}, End: protocol.Position{Line: 4294967295, Character: 4294967295}}, false, "ab!\ncd!!!"},
		}
		for _, c := range cases {
			ed.reset()
			if err := ed.call("workspace/executeCommand", map[string]any{"command": "genls.generate",
				"arguments": []any{map[string]any{"uri": uri, "range": c.rng, "here": c.here}}}, nil); err != nil {
				t.Fatalf("generate %v: %v", c.rng, err)
			}
			ed.awaitEnded(1)
			if got := ed.text(uri); got != c.want {
				t.Errorf("range %v: text %q, want %q", c.rng, got, c.want)
			}
		}
		// Code actions at positions past the end are offered, not refused.
		if got := ed.codeActions(uri, protocol.Range{Start: protocol.Position{Line: 1 << 20}, End: protocol.Position{Line: 1 << 20}}); len(got) == 0 {
			t.Errorf("no code actions past the end")
		}
		// A didChange whose range is past the end clamps too: it appends.
		ed.notify("textDocument/didChange", map[string]any{"textDocument": map[string]any{"uri": uri, "version": 100},
			"contentChanges": []any{map[string]any{"range": protocol.Range{Start: protocol.Position{Line: 50, Character: 50}, End: protocol.Position{Line: 60}}, "text": "?"}}})
		ed.mu.Lock()
		ed.docs[uri].text += "?"
		ed.docs[uri].version = 100
		ed.mu.Unlock()
		ed.generateAndWait(uri, 0, 2)
		if got := ed.text(uri); got != "ab!!\ncd!!!?" {
			t.Errorf("after a past-the-end didChange: %q", got)
		}
	})
}

// didChange and didClose for documents that were never opened are ignored;
// the server keeps serving.
func TestChangesToUnknownDocuments(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "!"))
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, nil)
	for i := 0; i < 10; i++ {
		u := fmt.Sprintf("file:///never-%d.go", i)
		ed.notify("textDocument/didChange", map[string]any{"textDocument": map[string]any{"uri": u, "version": i},
			"contentChanges": []any{map[string]any{"range": protocol.Range{End: protocol.Position{Line: 3}}, "text": "x"}, map[string]any{"text": "full"}}})
		ed.notify("textDocument/didClose", map[string]any{"textDocument": map[string]any{"uri": u}})
	}
	ed.open(uri, "x")
	ed.generateAndWait(uri, 0, 1)
	if got := ed.text(uri); got != "x!" {
		t.Errorf("text %q", got)
	}
}

// What genls does not read never refuses a message: an initialize whose
// unused capabilities have another shape (Visual Studio 2019 sends
// publishDiagnostics.tagSupport: true) still starts the server with the
// capabilities genls reads, and a code action request carrying diagnostics
// genls cannot decode still gets its actions.
func TestUnreadPartsOfMessagesIgnored(t *testing.T) {
	t.Parallel()
	c := newRawClient(t, zaptest.NewLogger(t))
	c.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"processId":null,"capabilities":{"general":{"positionEncodings":["utf-8"]},` +
		`"textDocument":{"publishDiagnostics":{"tagSupport":true},"foldingRange":{"rangeLimit":-1}}}}}`)
	result, _ := c.reply(1)["result"].(map[string]any)
	if caps, _ := result["capabilities"].(map[string]any); caps["positionEncoding"] != "utf-8" {
		t.Fatalf("initialize with unusual capabilities: %v", result)
	}
	const rng = `{"start":{"line":0,"character":0},"end":{"line":0,"character":1}}`
	c.send(`{"jsonrpc":"2.0","id":2,"method":"textDocument/codeAction","params":{"textDocument":{"uri":"file:///p.go"},"range":` + rng +
		`,"context":{"diagnostics":[{"range":` + rng + `,"message":"m","code":4294967296},{"range":` + rng + `,"message":"m","code":1.5}]}}}`)
	if m := c.reply(2); m["error"] != nil || len(m["result"].([]any)) == 0 {
		t.Errorf("code actions with unusual diagnostics: %v", m)
	}
	c.close()
}

// A didChange with a range that cannot be read (a negative line) is dropped
// whole; it is never taken for the document's new text.
func TestUnreadableChangeDropped(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "!"))
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, nil)
	ed.open(uri, "abc")
	bad := map[string]any{"start": map[string]any{"line": -1, "character": 0}, "end": map[string]any{"line": 0, "character": 0}}
	ed.notify("textDocument/didChange", map[string]any{"textDocument": map[string]any{"uri": uri, "version": 2},
		"contentChanges": []any{map[string]any{"range": bad, "text": "x"}}})
	ed.generateAndWait(uri, 0, 3)
	if got := ed.text(uri); got != "abc!" {
		t.Errorf("text %q, want %q", got, "abc!")
	}
}

// The user types before the selection while the editor creates the
// generation's progress, after the server has read the insertion point: the
// text still lands right after the selection.
func TestTypingWhileTheGenerationStarts(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "!"))
	var ed *fakeEditor
	ed = startFakeEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, zaptest.NewLogger(t),
		func(own jsonrpc2.Handler) jsonrpc2.Handler {
			return func(ctx context.Context, req *jsonrpc2.Request) (any, error) {
				if req.Method() == "window/workDoneProgress/create" {
					ed.typeAt(uri, 0, "> ") // its didChange goes out before the answer
				}
				return own(ctx, req)
			}
		})
	ed.open(uri, "abc\n")
	ed.generateAndWait(uri, 0, 3)
	if got := ed.text(uri); got != "> abc!\n" {
		t.Errorf("text %q, want %q", got, "> abc!\n")
	}
}

// The user types on while each edit is on its way, so that the editor
// rejects edit after edit as stale, more times in a row than MaxRejections:
// the generation goes on, since the document keeps moving, and its text
// lands once the typing stops.
func TestTypingFasterThanEditsDoesNotStopTheGeneration(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "!"))
	const keys = 12 // more than the default MaxRejections (8)
	var ed *fakeEditor
	var typed atomic.Int32
	ed = startFakeEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, zaptest.NewLogger(t),
		func(own jsonrpc2.Handler) jsonrpc2.Handler {
			return func(ctx context.Context, req *jsonrpc2.Request) (any, error) {
				if req.Method() == "workspace/applyEdit" && typed.Add(1) <= keys {
					ed.typeAt(uri, len(ed.text(uri)), "~") // makes this edit stale
				}
				return own(ctx, req)
			}
		})
	ed.open(uri, "abc\n")
	if end := ed.generateAndWait(uri, 0, 3); strings.HasPrefix(end, "failed") {
		t.Fatalf("progress end %q", end)
	}
	if got, want := ed.text(uri), "abc!\n"+strings.Repeat("~", keys); got != want {
		t.Errorf("text %q, want %q", got, want)
	}
}

// The API token never appears in anything genls writes: the debug log,
// messages and progress sent to the editor, or errors; and it is sent only
// to the configured endpoint.
func TestTokenNeverLeaks(t *testing.T) {
	t.Parallel()
	const token = "hf_SECRETSECRET123"
	withToken := func(s map[string]any) { s["endpoint"].(map[string]any)["token"] = token }
	cases := []struct {
		name    string
		script  streamtest.Script
		refused bool
	}{
		{name: "succeeds", script: streamtest.TGI(0, "length", "fine")},
		{name: "401", script: streamtest.Error(401, `{"error":"Authorization header is correct, but the token seems invalid"}`)},
		{name: "500", script: streamtest.Error(500, `{"error":"internal"}`)},
		{name: "mid-stream error", script: streamtest.Script{Chunks: append(streamtest.TGI(0, "length", "a", "b").Chunks[:1],
			streamtest.Events(0, `{"error":"boom","error_type":"generation"}`)...)}},
		{name: "connection refused", refused: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, c.script)
			url := srv.URL
			if c.refused {
				srv.Close()
			}
			logger, logged := bufferLogger()
			ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(url, withToken, func(s map[string]any) {
				s["log"] = map[string]any{"level": "debug"}
			})}, logger)
			ed.open(uri, "x")
			var errs []string
			if err := ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate"); err != nil {
				errs = append(errs, err.Error())
			}
			ed.awaitEnded(1)
			// A bad command and a bad setting produce errors too.
			if err := ed.call("workspace/executeCommand", map[string]any{"command": "genls.generate",
				"arguments": []any{map[string]any{"uri": "file:///nope"}}}, nil); err != nil {
				errs = append(errs, err.Error())
			}
			ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": tgiSettings(url, withToken, func(s map[string]any) {
				s["parameters"] = map[string]any{"max_new_tokens": -1}
			})})
			ed.await("the setting error", func() bool { return contains(ed.shownMessages(), "max_new_tokens") })
			ed.await("the logs of the generation and the setting", func() bool {
				log := logged.String()
				return strings.Contains(log, "generation ended") && strings.Contains(log, "rejected settings")
			})
			everything := map[string]string{
				"log":                    logged.String(),
				"messages to the editor": ed.allReceived(),
				"errors":                 strings.Join(errs, "\n"),
				"document":               ed.text(uri),
			}
			for what, text := range everything {
				if strings.Contains(text, token) || strings.Contains(text, "SECRETSECRET") {
					t.Errorf("the token appears in the %s:\n%s", what, text)
				}
			}
			if !strings.Contains(logged.String(), "generation request") && !c.refused {
				t.Errorf("the debug log was not captured")
			}
			for _, r := range srv.Requests() {
				if got := r.Header.Get("Authorization"); got != "Bearer "+token {
					t.Errorf("%s %s: Authorization %q", r.Method, r.Path, got)
				}
			}
		})
	}
}
