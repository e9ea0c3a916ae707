// Package lsp is genls's language server: the protocol's lifecycle, the
// documents and positions, settings, code actions, progress, and the edits
// that put generated text into the editor's documents. It speaks JSON-RPC
// and nothing else: commands runs each generation, and stream is used only
// to configure the endpoint client from the settings (and to tell setup
// errors apart); it makes no HTTP requests of its own (it only hands the
// endpoint client an *http.Client).
package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
	"go.uber.org/zap"

	"github.com/genls/genls/commands"
	"github.com/genls/genls/stream"
)

// Options configures Serve.
type Options struct {
	In  io.Reader
	Out io.Writer
	// Logger receives the server's log; never the protocol's stdout.
	Logger *zap.Logger
	// LogLevel, when set, is adjusted by the log.level setting.
	LogLevel *zap.AtomicLevel
	Version  string
	// HTTPClient is shared by every endpoint client; nil means a new one.
	HTTPClient *http.Client
	// Getenv is used for token lookup; nil means os.Getenv.
	Getenv func(string) string
	// SetLogFile, when set, redirects the log to a file (the log.file
	// setting).
	SetLogFile func(path string) error
	// EditLimits bounds waiting for the editor; zero fields take the
	// defaults.
	EditLimits EditLimits
}

// ErrExitWithoutShutdown is returned by Serve when the client sent exit
// without shutdown first (the specification's exit code 1).
var ErrExitWithoutShutdown = errors.New("exit without shutdown")

// state is the server's lifecycle.
type state int

const (
	stateNew state = iota
	stateInitialized
	stateShutdown
)

func (s state) String() string {
	switch s {
	case stateNew:
		return "new"
	case stateInitialized:
		return "initialized"
	}
	return "shutdown"
}

type server struct {
	conn    jsonrpc2.Conn
	log     *zap.Logger
	level   *zap.AtomicLevel
	version string
	getenv  func(string) string
	http    *http.Client

	setLogFile func(string) error
	editLimits EditLimits

	// ctx lives as long as the connection; generations run on it.
	ctx    context.Context
	cancel context.CancelFunc
	exit   chan error
	// notes counts the goroutines that talk to the client or the endpoint
	// off the read loop (messages, lens refreshes, registration, review
	// edits), waited for when serving ends.
	notes sync.WaitGroup

	docs     *store
	sessions commands.Manager
	reviews  reviews
	marks    *marks
	// completions is inline completion's state (inline_completion.go).
	completions completions
	// cancellable are the requests $/cancelRequest can cancel, by id.
	cancellable cancellable

	mu    sync.Mutex // guards the fields below
	state state
	// ready is set once the client has said initialized: requests to it
	// (registerCapability) may go from then on.
	ready  bool
	caps   clientCaps
	cfg    *config
	client *stream.Client
	// tokenHost is the host the token has been configured for; moving it
	// elsewhere needs the user's consent.
	tokenHost string
	// announced is the endpoint chosen with no endpoint.url that the user
	// was last told of.
	announced string
	// consent is the settings waiting for the user's consent to send the
	// token to a new host, while the question is open.
	consent *consent
}

// clientCaps is what genls needs to know of the client's capabilities.
type clientCaps struct {
	encoding        encoding
	progress        bool
	documentChanges bool
	configuration   bool
	// lensRefresh: the client re-requests code lenses on
	// workspace/codeLens/refresh.
	lensRefresh bool
	// inlineDynamic: the client registers textDocument/inlineCompletion
	// dynamically.
	inlineDynamic bool
	// debounce delays automatic inline completion requests unless
	// completion.debounce_ms says otherwise: debounceFor clientInfo.name.
	debounce time.Duration
}

// Serve serves LSP on opts.In and opts.Out until the client sends exit, the
// connection ends, or ctx is cancelled. Closing the connection or cancelling
// ctx cancels every generation and closes its upstream request.
func Serve(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = stream.NewHTTPClient()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &server{
		log: opts.Logger, level: opts.LogLevel, version: opts.Version, getenv: opts.Getenv, http: opts.HTTPClient,
		setLogFile: opts.SetLogFile, editLimits: opts.EditLimits.orDefaults(),
		ctx: ctx, cancel: cancel, exit: make(chan error, 1), docs: newStore(), marks: newMarks(),
	}
	s.marks.publish = s.publishMarks
	s.marks.refresh = func() {
		// Not on the marks' goroutine: a client slow to answer must not
		// hold up the marks.
		s.notes.Go(s.refreshLenses)
	}
	s.notes.Go(func() {
		s.marks.run(ctx)
	})
	s.cfg, _ = validate(settings{})
	s.conn = jsonrpc2.NewConn(newTolerantStream(opts.In, opts.Out), jsonrpc2.WithCodec(protocolCodec{}))
	s.conn.Go(ctx, s.handle)

	var err error
	select {
	case err = <-s.exit:
	case <-s.conn.Done():
		err = s.conn.Err()
		if err == nil && s.getState() != stateShutdown {
			err = errors.New("the client closed the connection without shutdown")
		}
	case <-ctx.Done():
	}
	// Stop every generation and close upstream requests; a blocked stdin
	// read is not waited for (main exits).
	s.sessions.Cancel("")
	cancel()
	waitTimeout(s.sessions.Wait, 2*time.Second)
	waitTimeout(s.notes.Wait, time.Second)
	s.http.CloseIdleConnections()
	return err
}

// cancellable tracks the requests that $/cancelRequest cancels.
type cancellable struct {
	mu       sync.Mutex
	requests map[jsonrpc2.ID]context.CancelFunc
}

// add returns a context for the request id, derived from parent and
// cancelled by cancel(id), and done, to call when the request ends.
func (c *cancellable) add(parent context.Context, id jsonrpc2.ID) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	c.mu.Lock()
	if c.requests == nil {
		c.requests = map[jsonrpc2.ID]context.CancelFunc{}
	}
	c.requests[id] = cancel
	c.mu.Unlock()
	return ctx, func() {
		c.mu.Lock()
		delete(c.requests, id)
		c.mu.Unlock()
		cancel()
	}
}

// cancel cancels the request id, if it is still running.
func (c *cancellable) cancel(id jsonrpc2.ID) {
	c.mu.Lock()
	cancel := c.requests[id]
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func waitTimeout(wait func(), d time.Duration) {
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func (s *server) getState() state {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// handle dispatches one message. Text-document and configuration
// notifications run inline on the read loop, so they are applied in wire
// order before any later request; requests release the loop at once, so a
// slow one never blocks the rest.
func (s *server) handle(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	method := req.Method()
	if !req.IsCall() {
		s.notification(method, json.RawMessage(req.Params()))
		return nil, nil
	}
	// Lifecycle requests change what later messages mean, so they take
	// effect inline, in wire order.
	st := s.getState()
	switch {
	case method == "initialize":
		if st != stateNew {
			return nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, "initialize was already received")
		}
		return s.initialize(json.RawMessage(req.Params()))
	case st == stateNew:
		return nil, jsonrpc2.NewError(jsonrpc2.ServerNotInitialized, "the server is not initialized")
	case method == "shutdown":
		s.mu.Lock()
		s.state = stateShutdown
		s.mu.Unlock()
		jsonrpc2.Async(ctx) // generations may still need the read loop to flush
		return s.shutdown()
	case st == stateShutdown:
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, "the server is shutting down")
	}
	method = string([]byte(method)) // outlives the borrowed frame
	released := ctx
	if method == methodInlineCompletion {
		// Registered before the read loop moves on to a $/cancelRequest
		// for it. Not derived from ctx: the request's context is recycled
		// with it, which a derived context's watcher may outlive.
		var done func()
		ctx, done = s.cancellable.add(s.ctx, req.ID())
		defer done()
	}
	jsonrpc2.Async(released)
	params := json.RawMessage(req.Params())
	switch method {
	case "textDocument/codeAction":
		return s.codeAction(params)
	case "textDocument/codeLens":
		return s.codeLens(params)
	case methodInlineCompletion:
		return s.inlineCompletion(ctx, params)
	case "workspace/executeCommand":
		return s.executeCommand(params)
	}
	return nil, jsonrpc2.NewError(jsonrpc2.MethodNotFound, "method not supported: "+method)
}

// notification handles a notification inline. Bad params are logged, never
// fatal: a notification cannot be answered with an error.
func (s *server) notification(method string, params json.RawMessage) {
	if method == "exit" {
		var err error
		if s.getState() != stateShutdown {
			err = ErrExitWithoutShutdown
		}
		select {
		case s.exit <- err:
		default:
		}
		return
	}
	if s.getState() != stateInitialized {
		return // before initialize, or after shutdown: dropped, as specified
	}
	var err error
	switch method {
	case "initialized":
		s.mu.Lock()
		s.ready = true
		s.mu.Unlock()
		go s.pullConfiguration()
		s.notes.Go(s.syncCompletionRegistration)
	case "$/cancelRequest":
		var p struct {
			ID json.RawMessage `json:"id"`
		}
		if err = json.Unmarshal(params, &p); err == nil {
			var n int64
			var str string
			switch {
			case json.Unmarshal(p.ID, &n) == nil:
				s.cancellable.cancel(jsonrpc2.NewNumberID(n))
			case json.Unmarshal(p.ID, &str) == nil:
				s.cancellable.cancel(jsonrpc2.NewStringID(str))
			}
		}
	case "textDocument/didOpen":
		err = s.didOpen(params)
	case "textDocument/didChange":
		err = s.didChange(params)
	case "textDocument/didClose":
		err = s.didClose(params)
	case "workspace/didChangeConfiguration":
		err = s.didChangeConfiguration(params)
	case "window/workDoneProgress/cancel":
		var p protocol.WorkDoneProgressCancelParams
		if err = protocol.Unmarshal(params, &p); err == nil {
			s.sessions.CancelToken(tokenKey(p.Token))
		}
	}
	if err != nil {
		s.log.Warn("bad notification", zap.String("method", method), zap.Error(err))
	}
}

func (s *server) initialize(params json.RawMessage) (any, error) {
	// What genls reads, not protocol.InitializeParams: decoding every
	// capability fails initialize (the server never starts) when a client
	// shapes one genls ignores otherwise, as Visual Studio 2019 sends
	// publishDiagnostics.tagSupport: true (LSP issue 1097).
	var p struct {
		InitializationOptions protocol.LSPAny `json:"initializationOptions"`
		Capabilities          struct {
			General struct {
				PositionEncodings []protocol.PositionEncodingKind `json:"positionEncodings"`
			} `json:"general"`
			Window struct {
				WorkDoneProgress bool `json:"workDoneProgress"`
			} `json:"window"`
			Workspace struct {
				Configuration bool `json:"configuration"`
				CodeLens      struct {
					RefreshSupport bool `json:"refreshSupport"`
				} `json:"codeLens"`
				WorkspaceEdit struct {
					DocumentChanges    bool                             `json:"documentChanges"`
					ResourceOperations []protocol.ResourceOperationKind `json:"resourceOperations"`
				} `json:"workspaceEdit"`
			} `json:"workspace"`
			TextDocument struct {
				InlineCompletion *struct {
					DynamicRegistration bool `json:"dynamicRegistration"`
				} `json:"inlineCompletion"`
			} `json:"textDocument"`
		} `json:"capabilities"`
		ClientInfo protocol.ClientInfo `json:"clientInfo"`
	}
	if err := protocol.Unmarshal(params, &p); err != nil {
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, "initialize: "+err.Error())
	}
	caps := clientCaps{
		encoding: negotiateEncoding(p.Capabilities.General.PositionEncodings),
		progress: p.Capabilities.Window.WorkDoneProgress,
		// The specification allows documentChanges to a client that
		// supports resource operations (Neovim 0.7 says only that).
		documentChanges: p.Capabilities.Workspace.WorkspaceEdit.DocumentChanges ||
			len(p.Capabilities.Workspace.WorkspaceEdit.ResourceOperations) > 0,
		configuration: p.Capabilities.Workspace.Configuration,
		lensRefresh:   p.Capabilities.Workspace.CodeLens.RefreshSupport,
		inlineDynamic: p.Capabilities.TextDocument.InlineCompletion != nil && p.Capabilities.TextDocument.InlineCompletion.DynamicRegistration,
		debounce:      debounceFor(p.ClientInfo.Name),
	}
	s.mu.Lock()
	s.caps = caps
	s.state = stateInitialized
	s.mu.Unlock()
	clientVersion, _ := p.ClientInfo.Version.Get()
	s.log.Info("initialize", zap.String("client", p.ClientInfo.Name+" "+clientVersion),
		zap.String("positionEncoding", string(caps.encoding)), zap.Bool("progress", caps.progress),
		zap.Bool("documentChanges", caps.documentChanges))
	if len(p.InitializationOptions) > 0 {
		s.applySettings(json.RawMessage(p.InitializationOptions), "initializationOptions")
	}
	// A client that cannot register inline completion later is told now,
	// unless the settings it sent turn completion off; requests are
	// answered per the settings in force when they come.
	var inline protocol.InlineCompletionProvider
	s.mu.Lock()
	if enabled := s.cfg.completion.enabled; !caps.inlineDynamic && (enabled == nil || *enabled) {
		inline = &protocol.InlineCompletionOptions{}
	}
	s.mu.Unlock()
	return &protocol.InitializeResult{
		Capabilities: protocol.ServerCapabilities{
			PositionEncoding: protocol.PositionEncodingKind(caps.encoding),
			TextDocumentSync: &protocol.TextDocumentSyncOptions{
				OpenClose: new(true),
				Change:    new(protocol.TextDocumentSyncKindIncremental),
			},
			CodeActionProvider: &protocol.CodeActionOptions{
				CodeActionKinds: []protocol.CodeActionKind{kindAccept, kindDiscard, kindRegenerate, kindGenerate, kindContinue, kindRewrite, kindAction, kindCancel},
			},
			CodeLensProvider:         &protocol.CodeLensOptions{},
			InlineCompletionProvider: inline,
			ExecuteCommandProvider: protocol.ExecuteCommandOptions{Commands: []string{
				cmdGenerate, cmdCancel, cmdAccept, cmdDiscard, cmdRegenerate}},
		},
		ServerInfo: protocol.ServerInfo{Name: "genls", Version: protocol.NewOptional(s.version)},
	}, nil
}

// negotiateEncoding prefers UTF-8 (the document's own bytes), then UTF-32,
// and falls back to the mandatory UTF-16.
func negotiateEncoding(offered []protocol.PositionEncodingKind) encoding {
	for _, want := range []encoding{encUTF8, encUTF32} {
		for _, o := range offered {
			if encoding(o) == want {
				return want
			}
		}
	}
	return encUTF16
}

func (s *server) shutdown() (any, error) {
	// Stop generations; their text so far is flushed to the editor, which
	// still answers requests until exit (bounded, for one that does not).
	s.sessions.Cancel("")
	waitTimeout(s.sessions.Wait, 3*time.Second)
	return nil, nil
}

// The text document notifications are decoded into structs with the URI as
// a string, not into the protocol package's types: their uri.URI fields
// canonicalise a URI when decoding it ("file:///C:/x" becomes
// "file:///c%3A/x"), and edits must name a document as the client does.
// protocol.Unmarshal decodes them all the same: 4 allocations for a
// didChange against encoding/json's 14 (BenchmarkDecodeDidChange).

func (s *server) didOpen(params json.RawMessage) error {
	var p struct {
		TextDocument struct {
			URI        string `json:"uri"`
			LanguageID string `json:"languageId"`
			Version    int32  `json:"version"`
			Text       string `json:"text"`
		} `json:"textDocument"`
	}
	if err := protocol.Unmarshal(params, &p); err != nil {
		return err
	}
	td := p.TextDocument
	s.docs.open(td.URI, td.LanguageID, td.Text, td.Version)
	return nil
}

// didChangeParams is didChange's params. The changes are contentChange, not
// protocol.TextDocumentContentChangeEvent: that union's decoder reads a
// change whose range it cannot decode (a negative line) as the document's
// whole new text.
type didChangeParams struct {
	TextDocument struct {
		URI     string `json:"uri"`
		Version int32  `json:"version"`
	} `json:"textDocument"`
	ContentChanges []contentChange `json:"contentChanges"`
}

func (s *server) didChange(params json.RawMessage) error {
	var p didChangeParams
	if err := protocol.Unmarshal(params, &p); err != nil {
		return err
	}
	if !s.docs.applyChanges(p.TextDocument.URI, p.TextDocument.Version, p.ContentChanges, s.positionEncoding()) {
		return fmt.Errorf("didChange for %s, which is not open", p.TextDocument.URI)
	}
	if s.reviews.has(p.TextDocument.URI) {
		s.marks.changed(p.TextDocument.URI, false)
	}
	return nil
}

func (s *server) didClose(params json.RawMessage) error {
	var p struct {
		TextDocument struct {
			URI string `json:"uri"`
		} `json:"textDocument"`
	}
	if err := protocol.Unmarshal(params, &p); err != nil {
		return err
	}
	s.sessions.Cancel(p.TextDocument.URI)
	s.docs.close(p.TextDocument.URI)
	s.completions.closed(p.TextDocument.URI)
	// Its generations go with it; the marks are cleared.
	for _, g := range s.reviews.in(p.TextDocument.URI) {
		s.forget(g)
	}
	return nil
}

func (s *server) positionEncoding() encoding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.caps.encoding
}

// showMessage tells the user something through window/showMessage. It does
// not wait for the write: it may be called on the read loop, which must never
// block on the client (the client may be blocked writing to us).
func (s *server) showMessage(typ protocol.MessageType, msg string) {
	s.notes.Go(func() {
		if err := s.conn.Notify(s.ctx, "window/showMessage", &protocol.ShowMessageParams{Type: typ, Message: "genls: " + msg}); err != nil {
			s.log.Debug("showMessage failed", zap.Error(err))
		}
	})
}

// rwc joins stdin and stdout into the connection's stream. Close does not
// close them: the process owns its standard streams.
type rwc struct {
	io.Reader
	io.Writer
}

func (rwc) Close() error { return nil }

// protocolCodec encodes and decodes payloads with the protocol package, the
// only codec that handles its union and optional fields (encoding/json writes
// an Optional as {}). Its generated encoders take pointers: a value goes
// through reflection, 15 allocations for an applyEdit instead of 7
// (BenchmarkEncodeApplyEditValue).
type protocolCodec struct{}

func (protocolCodec) Marshal(v any) ([]byte, error) {
	if raw, ok := v.(jsonrpc2.RawMessage); ok {
		return raw, nil
	}
	return protocol.Marshal(v)
}

func (protocolCodec) Unmarshal(data []byte, v any) error {
	if raw, ok := v.(*jsonrpc2.RawMessage); ok {
		*raw = append((*raw)[:0], data...)
		return nil
	}
	return protocol.Unmarshal(data, v)
}
