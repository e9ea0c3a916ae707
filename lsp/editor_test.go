package lsp

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/genls/genls/stream"
)

// fakeEditor is an LSP client connected to a real server over net.Pipe. Like
// a real editor it applies workspace/applyEdit to its own copy of each
// document, sends didChange for every change (the server's edits and the
// user's typing alike), rejects versioned edits computed on an old version
// (as VS Code does), and records progress and messages.
type fakeEditor struct {
	t    testing.TB
	conn jsonrpc2.Conn
	opts editorOptions

	mu       sync.Mutex
	docs     map[string]*editorDoc
	progress map[string][]map[string]any // token -> values
	messages []map[string]any
	edits    int // applyEdit requests received
	applied  int
	config   any

	served chan error
}

type editorDoc struct {
	text    string
	version int32
}

type editorOptions struct {
	versioned    bool     // advertise workspaceEdit.documentChanges
	noProgress   bool     // do not advertise window.workDoneProgress
	encodings    []string // general.positionEncodings offered
	settings     any      // initializationOptions
	config       any      // answer to workspace/configuration
	editLatency  time.Duration
	rejectFirst  int  // reject this many edits (applied:false) first
	dropStale    bool // Neovim 0.7: drop stale versioned edits, say applied:true
	neverAnswer  bool // never answer applyEdit
	rejectAlways bool
	onApply      func(newText string) // called with each applied edit's text
	// answer is the title picked for window/showMessageRequest ("" for
	// dismissing it).
	answer string
	// setLogFile is passed to the server as Options.SetLogFile.
	setLogFile func(string) error
}

func newFakeEditor(t testing.TB, opts editorOptions) *fakeEditor {
	t.Helper()
	// Info, not debug: the debug log holds every event, which would swamp
	// the benchmarks' measurements and memory.
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	if _, ok := t.(*testing.B); ok {
		log = zap.NewNop()
	}
	return startFakeEditor(t, opts, log, nil)
}

// startFakeEditor connects a fake editor to a server logging to log, and
// initializes it. wrap, when set, gets the editor's own handler and returns
// the handler to use instead (to inject faults or record messages).
func startFakeEditor(t testing.TB, opts editorOptions, log *zap.Logger, wrap func(jsonrpc2.Handler) jsonrpc2.Handler) *fakeEditor {
	t.Helper()
	clientSide, serverSide := net.Pipe()
	e := &fakeEditor{t: t, opts: opts, docs: map[string]*editorDoc{}, progress: map[string][]map[string]any{},
		config: opts.config, served: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		e.served <- Serve(ctx, Options{In: serverSide, Out: serverSide, Logger: log, Version: "test",
			Getenv: func(string) string { return "" }, SetLogFile: opts.setLogFile})
		serverSide.Close()
	}()
	handle := jsonrpc2.Handler(e.handle)
	if wrap != nil {
		handle = wrap(handle)
	}
	e.conn = jsonrpc2.NewConn(jsonrpc2.NewStream(clientSide), jsonrpc2.WithCodec(stdCodec{}))
	e.conn.Go(ctx, handle)
	t.Cleanup(func() {
		cancel()
		clientSide.Close()
		select {
		case <-e.served:
		case <-time.After(5 * time.Second):
			t.Errorf("server did not stop")
		}
		e.conn.Close()
	})
	e.initialize()
	return e
}

func (e *fakeEditor) initialize() {
	caps := map[string]any{
		"general":   map[string]any{"positionEncodings": e.opts.encodings},
		"window":    map[string]any{"workDoneProgress": !e.opts.noProgress},
		"workspace": map[string]any{"configuration": true, "workspaceEdit": map[string]any{"documentChanges": e.opts.versioned}},
	}
	var res map[string]any
	if err := e.call("initialize", map[string]any{"processId": nil, "capabilities": caps,
		"initializationOptions": e.opts.settings, "clientInfo": map[string]any{"name": "fake"}}, &res); err != nil {
		e.t.Fatalf("initialize: %v", err)
	}
	e.notify("initialized", map[string]any{})
}

func (e *fakeEditor) call(method string, params, result any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.conn.Call(ctx, method, params, result)
	return err
}

func (e *fakeEditor) notify(method string, params any) {
	if err := e.conn.Notify(context.Background(), method, params); err != nil {
		e.t.Errorf("notify %s: %v", method, err)
	}
}

// handle answers the server's requests. It runs on the read loop, so the
// didChange for an applied edit is sent before the reply, as VS Code does.
func (e *fakeEditor) handle(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	if req.IsCall() {
		// Like a real editor, keep reading while answering.
		jsonrpc2.Async(ctx)
	}
	params := json.RawMessage(req.Params())
	switch req.Method() {
	case "workspace/applyEdit":
		var p applyEditParams
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, err
		}
		if e.opts.neverAnswer {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		if e.opts.editLatency > 0 {
			time.Sleep(e.opts.editLatency)
		}
		return e.applyEdit(p), nil
	case "window/workDoneProgress/create":
		return nil, nil
	case "window/showMessageRequest":
		var p map[string]any
		json.Unmarshal(params, &p)
		e.mu.Lock()
		e.messages = append(e.messages, p)
		e.mu.Unlock()
		if e.opts.answer == "" {
			return nil, nil
		}
		return map[string]any{"title": e.opts.answer}, nil
	case "workspace/configuration":
		e.mu.Lock()
		defer e.mu.Unlock()
		return []any{e.config}, nil
	case "$/progress":
		var p struct {
			Token string         `json:"token"`
			Value map[string]any `json:"value"`
		}
		json.Unmarshal(params, &p)
		e.mu.Lock()
		e.progress[p.Token] = append(e.progress[p.Token], p.Value)
		e.mu.Unlock()
		return nil, nil
	case "window/showMessage", "window/logMessage":
		var p map[string]any
		json.Unmarshal(params, &p)
		e.mu.Lock()
		e.messages = append(e.messages, p)
		e.mu.Unlock()
		return nil, nil
	}
	return nil, jsonrpc2.NewError(jsonrpc2.MethodNotFound, req.Method())
}

func (e *fakeEditor) applyEdit(p applyEditParams) map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.edits++
	if e.opts.rejectAlways || e.edits <= e.opts.rejectFirst {
		return map[string]any{"applied": false, "failureReason": "rejected by test"}
	}
	var uri string
	var edits []textEdit
	if len(p.Edit.DocumentChanges) > 0 {
		dc := p.Edit.DocumentChanges[0]
		uri, edits = dc.TextDocument.URI, dc.Edits
		if d := e.docs[uri]; d == nil || d.version != dc.TextDocument.Version {
			if e.opts.dropStale {
				return map[string]any{"applied": true}
			}
			return map[string]any{"applied": false, "failureReason": "stale version"}
		}
	} else {
		for u, es := range p.Edit.Changes {
			uri, edits = u, es
		}
	}
	for _, te := range edits {
		e.changeLocked(uri, te.Range, te.NewText)
		if e.opts.onApply != nil {
			e.opts.onApply(te.NewText)
		}
	}
	e.applied++
	return map[string]any{"applied": true}
}

func (e *fakeEditor) enc() Encoding {
	for _, want := range []Encoding{UTF8, UTF32} {
		for _, o := range e.opts.encodings {
			if Encoding(o) == want {
				return want
			}
		}
	}
	return UTF16
}

// changeLocked applies a change and sends its didChange; e.mu is held so
// versions reach the server in order.
func (e *fakeEditor) changeLocked(uri string, rng Range, text string) {
	d := e.docs[uri]
	enc := e.enc()
	a, b := enc.Offset(d.text, rng.Start), enc.Offset(d.text, rng.End)
	d.text = d.text[:a] + text + d.text[b:]
	d.version++
	e.notify("textDocument/didChange", map[string]any{
		"textDocument":   map[string]any{"uri": uri, "version": d.version},
		"contentChanges": []any{map[string]any{"range": rng, "text": text}},
	})
}

func (e *fakeEditor) open(uri, text string) {
	e.mu.Lock()
	e.docs[uri] = &editorDoc{text: text, version: 1}
	e.mu.Unlock()
	e.notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": uri, "languageId": "go", "version": 1, "text": text}})
}

// typeAt is the user typing text at offset off of uri.
func (e *fakeEditor) typeAt(uri string, off int, text string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.docs[uri]
	p := e.enc().Position(d.text, off)
	e.changeLocked(uri, Range{Start: p, End: p}, text)
}

// replace is the user replacing [a, b) of uri with text.
func (e *fakeEditor) replace(uri string, a, b int, text string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.docs[uri]
	e.changeLocked(uri, Range{Start: e.enc().Position(d.text, a), End: e.enc().Position(d.text, b)}, text)
}

func (e *fakeEditor) text(uri string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.docs[uri].text
}

func (e *fakeEditor) codeActions(uri string, rng Range) []codeAction {
	var actions []codeAction
	if err := e.call("textDocument/codeAction", map[string]any{
		"textDocument": map[string]any{"uri": uri}, "range": rng, "context": map[string]any{"diagnostics": []any{}}}, &actions); err != nil {
		e.t.Fatalf("codeAction: %v", err)
	}
	return actions
}

// run executes the code action titled title, as an editor does when the
// user picks it.
func (e *fakeEditor) run(uri string, rng Range, title string) error {
	for _, a := range e.codeActions(uri, rng) {
		if a.Title == title {
			return e.call("workspace/executeCommand", map[string]any{"command": a.Command.Command, "arguments": a.Command.Arguments}, nil)
		}
	}
	e.t.Fatalf("no code action %q", title)
	return nil
}

// ended returns the end values of progress reports received.
func (e *fakeEditor) ended() []map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []map[string]any
	for _, vs := range e.progress {
		for _, v := range vs {
			if v["kind"] == "end" {
				out = append(out, v)
			}
		}
	}
	return out
}

func (e *fakeEditor) await(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.mu.Lock()
			state := fmt.Sprintf("documents %+v; messages %v; progress %v", e.docs, e.messages, e.progress)
			e.mu.Unlock()
			e.t.Fatalf("timed out waiting for %s; %s", what, state)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// awaitEnded waits for n generations to end and returns their end messages.
func (e *fakeEditor) awaitEnded(n int) []string {
	e.t.Helper()
	e.await(fmt.Sprintf("%d generation(s) to end", n), func() bool { return len(e.ended()) >= n })
	var msgs []string
	for _, v := range e.ended() {
		msgs = append(msgs, fmt.Sprint(v["message"]))
	}
	return msgs
}

func (e *fakeEditor) shownMessages() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, m := range e.messages {
		out = append(out, fmt.Sprint(m["message"]))
	}
	return out
}

// tgiSettings points the server at a fake TGI endpoint.
func tgiSettings(url string, extra ...func(map[string]any)) map[string]any {
	s := map[string]any{"endpoint": map[string]any{"url": url, "backend": string(stream.BackendTGI)}}
	for _, f := range extra {
		f(s)
	}
	return s
}

func rangeOf(enc Encoding, text string, a, b int) Range {
	return Range{Start: enc.Position(text, a), End: enc.Position(text, b)}
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
