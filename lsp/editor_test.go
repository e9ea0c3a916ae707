package lsp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/genls/genls/stream"
)

// fakeEditor is an LSP client connected to a real server over net.Pipe. Like
// a real editor it applies workspace/applyEdit to its own copy of each
// document, sends didChange for every change (the server's edits and the
// user's typing alike), rejects versioned edits computed on an old version
// (as VS Code does), and records progress and messages. Its mode says what
// it does to the line breaks of an applied edit and in which order it
// answers, after the real editors. It converts positions with its own code,
// never the server's, so that a bug there cannot hide itself.
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
	rejected int // edits answered applied:false for a stale version
	labelled int // edits with a label (Neovim prints each one)
	// configAsked counts workspace/configuration requests answered.
	configAsked int
	config      any
	// held are didChange notifications not sent yet (echoDelay): sent in
	// order before any later notification.
	held []any
	// diagnostics are the last diagnostics published for each document;
	// published counts publishDiagnostics notifications.
	diagnostics map[string][]wireDiagnostic
	published   int
	// lensRefreshes counts workspace/codeLens/refresh requests.
	lensRefreshes int
	// capabilities is the server's answer to initialize.
	capabilities map[string]any
	// registered is what the server has registered dynamically: method
	// by registration id.
	registered map[string]string
	// violations are applyEdit requests that break the wire contract
	// (versioned documentChanges if and only if the editor advertised them);
	// the test fails with them when it ends.
	violations []string

	// inlineIDs receives the id of each textDocument/inlineCompletion
	// request sent, for $/cancelRequest.
	inlineIDs chan json.RawMessage

	served chan error
}

// tapConn shows the editor's connection each frame it writes.
type tapConn struct {
	net.Conn
	onWrite func(frame []byte)
}

func (c tapConn) Write(b []byte) (int, error) {
	c.onWrite(b)
	return c.Conn.Write(b)
}

// sent notes the ids of the inline completion requests in a written frame.
func (e *fakeEditor) sent(frame []byte) {
	if !bytes.Contains(frame, []byte(methodInlineCompletion)) {
		return
	}
	_, body, _ := bytes.Cut(frame, []byte("\r\n\r\n"))
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal(body, &msg) == nil && msg.Method == methodInlineCompletion {
		select {
		case e.inlineIDs <- msg.ID:
		default: // nobody is reading them (a benchmark)
		}
	}
}

type editorDoc struct {
	text    string
	version int32
	eol     string // the document's line ending: "\n" or "\r\n"
}

// editorMode is what the fake editor does to the line breaks of an applied
// edit, after a real editor.
type editorMode string

const (
	// modeVerbatim applies and reports the text exactly as sent.
	modeVerbatim editorMode = "verbatim"
	// modeVSCode converts every line break of an applied edit to the
	// document's end of line and reports the converted text in didChange,
	// before it answers the edit (VS Code's TextModel and
	// vscode-languageclient). A document without line breaks has the
	// end of line of files.eol (editorOptions.eol).
	modeVSCode editorMode = "vscode"
	// modeNeovim turns "\r\n" and "\r" into "\n" (vim.lsp.util.
	// apply_text_edits) and reports a fileformat=dos buffer's changes with
	// "\r\n"; it answers the edit first and sends the (debounced)
	// didChange after echoDelay.
	modeNeovim editorMode = "neovim"
)

// editorModes is every mode; generation scenarios run in each.
var editorModes = []editorMode{modeVerbatim, modeVSCode, modeNeovim}

type editorOptions struct {
	mode editorMode
	// eol is the end of line VS Code gives a document without line breaks
	// (files.eol); "\n" when empty.
	eol string
	// echoDelay holds the didChange of an applied edit this long after the
	// answer (Neovim debounces didChange); modeNeovim defaults to 2 ms.
	echoDelay time.Duration

	versioned   bool // advertise workspaceEdit.documentChanges
	lensRefresh bool // advertise workspace.codeLens.refreshSupport
	// inline advertises textDocument.inlineCompletion; inlineDynamic its
	// dynamic registration.
	inline, inlineDynamic bool
	clientName            string   // clientInfo.name; "fake" when empty
	noProgress            bool     // do not advertise window.workDoneProgress
	encodings             []string // general.positionEncodings offered
	settings              any      // initializationOptions
	config                any      // answer to workspace/configuration
	editLatency           time.Duration
	rejectFirst           int  // reject this many edits (applied:false) first
	dropStale             bool // Neovim 0.7: drop stale versioned edits, say applied:true
	neverAnswer           bool // never answer applyEdit
	rejectAlways          bool
	// rejectDeletes rejects this many edits that delete text (a Discard)
	// as stale.
	rejectDeletes int
	// fullSync reports every change as the document's whole new text, as
	// a client that cannot sync incrementally does.
	fullSync bool
	onApply  func(newText string) // called with each applied edit's text
	// answer is the title picked for window/showMessageRequest ("" for
	// dismissing it).
	answer string
	// answerDelay is how long the user takes to answer it.
	answerDelay time.Duration
	// setLogFile is passed to the server as Options.SetLogFile.
	setLogFile func(string) error
	// limits is passed to the server as Options.EditLimits.
	limits EditLimits
	// getenv is the server's environment (Options.Getenv); nil means an
	// empty one.
	getenv func(string) string
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
		diagnostics: map[string][]wireDiagnostic{}, config: opts.config, served: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	getenv := opts.getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	go func() {
		e.served <- Serve(ctx, Options{In: serverSide, Out: serverSide, Logger: log, Version: "test",
			Getenv: getenv, SetLogFile: opts.setLogFile, EditLimits: opts.limits})
		serverSide.Close()
	}()
	handle := jsonrpc2.Handler(e.handle)
	if wrap != nil {
		handle = wrap(handle)
	}
	e.inlineIDs = make(chan json.RawMessage, 1000)
	e.conn = jsonrpc2.NewConn(jsonrpc2.NewStream(tapConn{clientSide, e.sent}), jsonrpc2.WithCodec(editorCodec{}))
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
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, v := range e.violations {
			t.Errorf("workspace/applyEdit: %s", v)
		}
	})
	e.initialize()
	return e
}

func (e *fakeEditor) initialize() {
	caps := map[string]any{
		"general": map[string]any{"positionEncodings": e.opts.encodings},
		"window":  map[string]any{"workDoneProgress": !e.opts.noProgress},
		"workspace": map[string]any{"configuration": true, "workspaceEdit": map[string]any{"documentChanges": e.opts.versioned},
			"codeLens": map[string]any{"refreshSupport": e.opts.lensRefresh}},
	}
	if e.opts.inline {
		caps["textDocument"] = map[string]any{"inlineCompletion": map[string]any{"dynamicRegistration": e.opts.inlineDynamic}}
	}
	name := e.opts.clientName
	if name == "" {
		name = "fake"
	}
	var res struct {
		Capabilities map[string]any `json:"capabilities"`
	}
	if err := e.call("initialize", map[string]any{"processId": nil, "capabilities": caps,
		"initializationOptions": e.opts.settings, "clientInfo": map[string]any{"name": name}}, &res); err != nil {
		e.t.Fatalf("initialize: %v", err)
	}
	e.mu.Lock()
	e.capabilities = res.Capabilities
	e.mu.Unlock()
	e.notify("initialized", map[string]any{})
}

func (e *fakeEditor) call(method string, params, result any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.conn.Call(ctx, method, params, result)
	return err
}

// notify sends a notification, after any held didChange, so that the
// server sees every change in the order the editor made it.
func (e *fakeEditor) notify(method string, params any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.notifyLocked(method, params)
}

func (e *fakeEditor) notifyLocked(method string, params any) {
	e.flushHeldLocked()
	if err := e.conn.Notify(context.Background(), method, params); err != nil {
		e.t.Errorf("notify %s: %v", method, err)
	}
}

// flushHeld sends the held didChange notifications; it runs after
// echoDelay, possibly after the test has ended.
func (e *fakeEditor) flushHeld() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.flushHeldLocked()
}

func (e *fakeEditor) flushHeldLocked() {
	for _, p := range e.held {
		e.conn.Notify(context.Background(), "textDocument/didChange", p) // fails only once the test is over
	}
	e.held = nil
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
		var p wireApplyEdit
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
		time.Sleep(e.opts.answerDelay)
		if e.opts.answer == "" {
			return nil, nil
		}
		return map[string]any{"title": e.opts.answer}, nil
	case "workspace/configuration":
		e.mu.Lock()
		defer e.mu.Unlock()
		e.configAsked++
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
	case "textDocument/publishDiagnostics":
		var p struct {
			URI         string           `json:"uri"`
			Diagnostics []wireDiagnostic `json:"diagnostics"`
		}
		if err := json.Unmarshal(params, &p); err != nil {
			e.t.Errorf("publishDiagnostics: %v", err)
		}
		e.mu.Lock()
		e.diagnostics[p.URI] = p.Diagnostics
		e.published++
		e.mu.Unlock()
		return nil, nil
	case "client/registerCapability", "client/unregisterCapability":
		var p struct {
			Registrations   []struct{ ID, Method string } `json:"registrations"`
			Unregistrations []struct{ ID, Method string } `json:"unregisterations"`
		}
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, err
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.registered == nil {
			e.registered = map[string]string{}
		}
		for _, r := range p.Registrations {
			if _, dup := e.registered[r.ID]; dup {
				e.violations = append(e.violations, "registered "+r.ID+" twice")
			}
			e.registered[r.ID] = r.Method
		}
		for _, r := range p.Unregistrations {
			if _, ok := e.registered[r.ID]; !ok {
				e.violations = append(e.violations, "unregistered "+r.ID+", which is not registered")
			}
			delete(e.registered, r.ID)
		}
		return nil, nil
	case "workspace/codeLens/refresh":
		e.mu.Lock()
		e.lensRefreshes++
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
	if !req.IsCall() {
		return nil, nil // an editor ignores notifications it does not know
	}
	return nil, jsonrpc2.NewError(jsonrpc2.MethodNotFound, req.Method())
}

func (e *fakeEditor) applyEdit(p wireApplyEdit) map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.edits++
	if p.Label != nil {
		e.labelled++
	}
	versioned := len(p.Edit.DocumentChanges) > 0
	switch {
	case versioned == (len(p.Edit.Changes) > 0):
		e.violations = append(e.violations, "want exactly one of documentChanges and changes")
	case versioned != e.opts.versioned:
		e.violations = append(e.violations, fmt.Sprintf("documentChanges sent: %v, but advertised: %v", versioned, e.opts.versioned))
	}
	if e.opts.rejectAlways || e.edits <= e.opts.rejectFirst {
		return map[string]any{"applied": false, "failureReason": "rejected by test"}
	}
	if e.opts.rejectDeletes > 0 && deletes(p) {
		e.opts.rejectDeletes--
		e.rejected++
		return map[string]any{"applied": false, "failureReason": "stale version"}
	}
	var uri string
	var edits []wireTextEdit
	if versioned {
		dc := p.Edit.DocumentChanges[0]
		uri, edits = dc.TextDocument.URI, dc.Edits
		if dc.TextDocument.Version == nil {
			e.violations = append(e.violations, "documentChanges without a version")
		}
		if d := e.docs[uri]; d == nil || dc.TextDocument.Version == nil || d.version != *dc.TextDocument.Version {
			if e.opts.dropStale {
				return map[string]any{"applied": true}
			}
			e.rejected++
			return map[string]any{"applied": false, "failureReason": "stale version"}
		}
	} else {
		for u, es := range p.Edit.Changes {
			uri, edits = u, es
		}
	}
	for _, te := range edits {
		e.applyLocked(uri, te.Range, e.lineBreaksApplied(uri, te.NewText), e.echoDelay() > 0)
		if e.opts.onApply != nil {
			e.opts.onApply(te.NewText)
		}
	}
	e.applied++
	return map[string]any{"applied": true}
}

func (e *fakeEditor) echoDelay() time.Duration {
	if e.opts.echoDelay == 0 && e.opts.mode == modeNeovim {
		return 2 * time.Millisecond
	}
	return e.opts.echoDelay
}

// lineBreaksApplied returns text as the editor's mode stores it in uri.
func (e *fakeEditor) lineBreaksApplied(uri, text string) string {
	if e.opts.mode != modeVSCode && e.opts.mode != modeNeovim {
		return text
	}
	// Both rewrite every "\r\n", "\r" and "\n" as the document's end of
	// line (Neovim stores lines; a dos buffer writes and reports "\r\n").
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '\r':
			if i+1 < len(text) && text[i+1] == '\n' {
				i++
			}
			b.WriteString(e.docs[uri].eol)
		case '\n':
			b.WriteString(e.docs[uri].eol)
		default:
			b.WriteByte(text[i])
		}
	}
	return b.String()
}

// enc is the position encoding the editor offered first among those it
// prefers (the server picks the same).
func (e *fakeEditor) enc() encoding {
	for _, want := range []encoding{encUTF8, encUTF32} {
		for _, o := range e.opts.encodings {
			if encoding(o) == want {
				return want
			}
		}
	}
	return encUTF16
}

// applyLocked applies a change and sends its didChange (held when hold is
// set); e.mu is held so versions reach the server in order.
func (e *fakeEditor) applyLocked(uri string, rng protocol.Range, text string, hold bool) {
	d := e.docs[uri]
	a, b := fakeOffset(d.text, rng.Start, e.enc()), fakeOffset(d.text, rng.End, e.enc())
	if b < a {
		a, b = b, a
	}
	d.text = d.text[:a] + text + d.text[b:]
	d.version++
	change := map[string]any{"range": rng, "text": text}
	if e.opts.fullSync {
		change = map[string]any{"text": d.text}
	}
	params := map[string]any{
		"textDocument":   map[string]any{"uri": uri, "version": d.version},
		"contentChanges": []any{change},
	}
	if hold {
		e.held = append(e.held, params)
		time.AfterFunc(e.echoDelay(), e.flushHeld)
		return
	}
	e.notifyLocked("textDocument/didChange", params)
}

func (e *fakeEditor) open(uri, text string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	eol := e.opts.eol
	if eol == "" {
		eol = "\n"
	}
	if i := strings.Index(text, "\n"); i > 0 && text[i-1] == '\r' {
		eol = "\r\n"
	} else if i >= 0 {
		eol = "\n"
	}
	e.docs[uri] = &editorDoc{text: text, version: 1, eol: eol}
	e.notifyLocked("textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": uri, "languageId": "go", "version": 1, "text": text}})
}

// typeAt is the user typing text at offset off of uri.
func (e *fakeEditor) typeAt(uri string, off int, text string) {
	e.typeWhere(uri, func(string) int { return off }, text)
}

// typeWhere is the user typing text at the offset where picks in uri's
// text as it is at that moment (an edit may land between reading the text
// and typing).
func (e *fakeEditor) typeWhere(uri string, where func(text string) int, text string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.docs[uri]
	p := fakePosition(d.text, where(d.text), e.enc())
	e.applyLocked(uri, protocol.Range{Start: p, End: p}, text, false)
}

// replace is the user replacing [a, b) of uri with text.
func (e *fakeEditor) replace(uri string, a, b int, text string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.docs[uri]
	e.applyLocked(uri, protocol.Range{Start: fakePosition(d.text, a, e.enc()), End: fakePosition(d.text, b, e.enc())}, text, false)
}

func (e *fakeEditor) configRequests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.configAsked
}

func (e *fakeEditor) text(uri string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.docs[uri].text
}

func (e *fakeEditor) codeActions(uri string, rng protocol.Range) []wireCodeAction {
	var actions []wireCodeAction
	if err := e.call("textDocument/codeAction", map[string]any{
		"textDocument": map[string]any{"uri": uri}, "range": rng, "context": map[string]any{"diagnostics": []any{}}}, &actions); err != nil {
		e.t.Fatalf("codeAction: %v", err)
	}
	return actions
}

// run executes the code action titled title, as an editor does when the
// user picks it.
func (e *fakeEditor) run(uri string, rng protocol.Range, title string) error {
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

// shownErrors returns the errors and warnings shown to the user (not log
// messages, such as the nudge a slow editor gets).
func (e *fakeEditor) shownErrors() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, m := range e.messages {
		if typ := fmt.Sprint(m["type"]); typ == "1" || typ == "2" {
			out = append(out, fmt.Sprint(m["message"]))
		}
	}
	return out
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

func rangeOf(enc encoding, text string, a, b int) protocol.Range {
	return protocol.Range{Start: fakePosition(text, a, enc), End: fakePosition(text, b, enc)}
}

// fakeLines splits text into lines as LSP does ("\n", "\r\n" and "\r" end
// a line) and returns each line's start and end (before its terminator).
func fakeLines(text string) (starts, ends []int) {
	start := 0
	for i := 0; i < len(text); i++ {
		if text[i] != '\n' && text[i] != '\r' {
			continue
		}
		starts, ends = append(starts, start), append(ends, i)
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		start = i + 1
	}
	return append(starts, start), append(ends, len(text))
}

// fakeUnits is how many code units of enc the character r takes.
func fakeUnits(r rune, enc encoding) int {
	switch enc {
	case encUTF8:
		return utf8.RuneLen(r)
	case encUTF32:
		return 1
	}
	return utf16.RuneLen(r)
}

// fakeOffset is the editor's own conversion of an LSP position to a byte
// offset (characters past the line's end clamp to it).
func fakeOffset(text string, p protocol.Position, enc encoding) int {
	starts, ends := fakeLines(text)
	if int(p.Line) >= len(starts) {
		return len(text)
	}
	off, units := starts[p.Line], 0
	for _, r := range text[starts[p.Line]:ends[p.Line]] {
		if units+fakeUnits(r, enc) > int(p.Character) {
			break
		}
		units += fakeUnits(r, enc)
		off += utf8.RuneLen(r)
	}
	return off
}

// fakePosition is the editor's own conversion of a byte offset (at a
// character boundary) to an LSP position.
func fakePosition(text string, off int, enc encoding) protocol.Position {
	starts, ends := fakeLines(text)
	line := 0
	for line+1 < len(starts) && starts[line+1] <= off {
		line++
	}
	units := 0
	for _, r := range text[starts[line]:min(off, ends[line])] {
		units += fakeUnits(r, enc)
	}
	return protocol.Position{Line: uint32(line), Character: uint32(units)}
}

// The fake editor reads the server's messages as the specification shapes
// them, with its own types and plain encoding/json, as any client would.

// editorCodec is the fake editor's JSON-RPC payload codec.
type editorCodec struct{}

func (editorCodec) Marshal(v any) ([]byte, error) {
	if raw, ok := v.(jsonrpc2.RawMessage); ok {
		return raw, nil
	}
	return json.Marshal(v)
}

func (editorCodec) Unmarshal(data []byte, v any) error {
	if raw, ok := v.(*jsonrpc2.RawMessage); ok {
		*raw = append((*raw)[:0], data...)
		return nil
	}
	return json.Unmarshal(data, v)
}

// wireApplyEdit is workspace/applyEdit's params.
type wireApplyEdit struct {
	Label *string `json:"label"`
	Edit  struct {
		Changes         map[string][]wireTextEdit `json:"changes"`
		DocumentChanges []struct {
			TextDocument struct {
				URI     string `json:"uri"`
				Version *int32 `json:"version"`
			} `json:"textDocument"`
			Edits []wireTextEdit `json:"edits"`
		} `json:"documentChanges"`
	} `json:"edit"`
}

type wireTextEdit struct {
	Range   protocol.Range `json:"range"`
	NewText string         `json:"newText"`
}

// deletes reports whether p deletes text.
func deletes(p wireApplyEdit) bool {
	for _, dc := range p.Edit.DocumentChanges {
		for _, te := range dc.Edits {
			if te.NewText == "" && te.Range.Start != te.Range.End {
				return true
			}
		}
	}
	for _, es := range p.Edit.Changes {
		for _, te := range es {
			if te.NewText == "" && te.Range.Start != te.Range.End {
				return true
			}
		}
	}
	return false
}

// wireDiagnostic is a published diagnostic.
type wireDiagnostic struct {
	Range    protocol.Range  `json:"range"`
	Severity int             `json:"severity"`
	Code     any             `json:"code"`
	Source   string          `json:"source"`
	Message  string          `json:"message"`
	Tags     []int           `json:"tags"`
	Data     json.RawMessage `json:"data"`
}

// wireCodeAction is one code action of textDocument/codeAction's answer.
type wireCodeAction struct {
	Title   string `json:"title"`
	Kind    string `json:"kind"`
	Command struct {
		Title     string            `json:"title"`
		Command   string            `json:"command"`
		Arguments []json.RawMessage `json:"arguments"`
	} `json:"command"`
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
