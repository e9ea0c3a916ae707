package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
	"go.uber.org/zap"

	"github.com/genls/genls/commands"
	"github.com/genls/genls/stream"
)

// Inline completion (textDocument/inlineCompletion, LSP 3.18): ghost text
// at the cursor while the user types. Latency is what matters: a request
// goes upstream at once (after a debounce only for clients that do not
// debounce themselves), a newer request for the same document or the
// client's $/cancelRequest closes the upstream request at once, and typing
// the characters of the completion last shown answers with the rest of it
// without asking the endpoint again.

const (
	defaultCompletionLines     = 4
	defaultCompletionNewTokens = 128
	// defaultCompletionDebounce delays automatic requests from clients
	// that send one per keystroke; VS Code debounces itself.
	defaultCompletionDebounce = 50 * time.Millisecond
	// completionRegistrationID names genls's dynamic registration of
	// textDocument/inlineCompletion, to unregister it.
	completionRegistrationID = "genls.inlineCompletion"
	methodInlineCompletion   = "textDocument/inlineCompletion"
)

// completionSystemPrompt asks a chat model (one without fill-in-the-middle,
// when the user turned completion on for it) for the text at the cursor.
const completionSystemPrompt = "You are a code completion engine inside an editor. " +
	"The user's message is a file with the cursor marked <CURSOR>. Reply only with the text to insert at the cursor: " +
	"no explanations, no repetition of the text around it, no markdown fences."

// completionConfig is the validated completion settings.
type completionConfig struct {
	// enabled is nil when absent: on when the endpoint can complete code.
	enabled      *bool
	maxLines     int
	maxNewTokens int
	// debounce is nil when absent: debounceFor the client.
	debounce *time.Duration
}

func (c completionSettings) config() (completionConfig, error) {
	out := completionConfig{enabled: c.Enabled, maxLines: defaultCompletionLines, maxNewTokens: defaultCompletionNewTokens}
	if c.MaxLines != nil {
		if *c.MaxLines < 1 {
			return out, &settingError{Key: "completion.max_lines", Err: fmt.Errorf("must be at least 1, got %d", *c.MaxLines)}
		}
		out.maxLines = *c.MaxLines
	}
	if c.MaxNewTokens != nil {
		if *c.MaxNewTokens < 1 {
			return out, &settingError{Key: "completion.max_new_tokens", Err: fmt.Errorf("must be positive, got %d", *c.MaxNewTokens)}
		}
		out.maxNewTokens = *c.MaxNewTokens
	}
	if c.DebounceMS != nil {
		if *c.DebounceMS < 0 {
			return out, &settingError{Key: "completion.debounce_ms", Err: fmt.Errorf("must not be negative, got %d", *c.DebounceMS)}
		}
		d := time.Duration(*c.DebounceMS) * time.Millisecond
		out.debounce = &d
	}
	return out, nil
}

// debounceFor returns the debounce for automatic requests from the client
// named name (clientInfo.name). VS Code (and what is built from it) waits
// 50 ms after typing before it asks (inlineCompletionsController.ts),
// Neovim 0.12 200 ms (runtime/lua/vim/lsp/inline_completion.lua), Emacs's
// lsp-mode (clientInfo "emacs") until Emacs is idle; other clients may ask
// on every keystroke.
func debounceFor(name string) time.Duration {
	for _, debounced := range []string{"Visual Studio Code", "code-server", "VSCodium", "Code - OSS", "Neovim", "emacs"} {
		if strings.Contains(name, debounced) {
			return 0
		}
	}
	return defaultCompletionDebounce
}

// completions is the state of inline completion across requests.
type completions struct {
	mu sync.Mutex
	// running is the newest request of each document.
	running map[string]*completionRun
	// last is the completion last given for each document.
	last map[string]cachedCompletion
	// failure is the endpoint error last logged: a failing endpoint is
	// logged once, not on every keystroke.
	failure string

	// registering serialises dynamic (un)registration; registered says
	// whether the capability is registered.
	registering sync.Mutex
	registered  bool
}

// completionRun is one request in flight.
type completionRun struct {
	cancel context.CancelCauseFunc
}

// cachedCompletion is a completion given at the point between prefix and
// suffix (the document's text on either side of the cursor then); its line
// breaks are "\n".
type cachedCompletion struct {
	prefix, suffix, text string
}

// errSuperseded cancels a request that a newer one for its document
// replaces.
var errSuperseded = errors.New("superseded by a newer inline completion request")

// start registers a request for uri, cancelling the one it supersedes, and
// returns its context, cancelled when a newer request comes.
func (c *completions) start(ctx context.Context, uri string) (*completionRun, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	run := &completionRun{cancel: cancel}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running == nil {
		c.running = map[string]*completionRun{}
	}
	c.cancelLocked(uri, errSuperseded)
	c.running[uri] = run
	return run, ctx
}

// supersede cancels uri's running request, if any.
func (c *completions) supersede(uri string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelLocked(uri, errSuperseded)
}

// cancelLocked cancels uri's running request, if any, with cause.
func (c *completions) cancelLocked(uri string, cause error) {
	if old := c.running[uri]; old != nil {
		old.cancel(cause)
		delete(c.running, uri)
	}
}

// end unregisters run.
func (c *completions) end(uri string, run *completionRun) {
	run.cancel(nil)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[uri] == run {
		delete(c.running, uri)
	}
}

// cached returns what is left of uri's last completion when the user has
// since typed its first characters (or nothing) at its point.
func (c *completions) cached(uri, prefix, suffix string) (string, bool) {
	c.mu.Lock()
	last, ok := c.last[uri]
	c.mu.Unlock()
	if !ok || len(prefix) < len(last.prefix) || suffix != last.suffix || !strings.HasPrefix(prefix, last.prefix) {
		return "", false
	}
	// Typed line breaks are the document's.
	typed := canonicalBreaks(prefix[len(last.prefix):])
	if len(typed) >= len(last.text) || !strings.HasPrefix(last.text, typed) {
		return "", false
	}
	return last.text[len(typed):], true
}

func (c *completions) remember(uri string, cc cachedCompletion) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]cachedCompletion{}
	}
	c.last[uri] = cc
	c.failure = ""
}

// forgetAll drops every document's last completion.
func (c *completions) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.last)
}

// errDocumentClosed cancels the completion of a document that was closed.
var errDocumentClosed = errors.New("the document was closed")

// closed cancels uri's running request and forgets its last completion.
func (c *completions) closed(uri string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelLocked(uri, errDocumentClosed)
	delete(c.last, uri)
}

// firstFailure reports whether err is not the failure logged last, and
// makes it that.
func (c *completions) firstFailure(err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure == err.Error() {
		return false
	}
	c.failure = err.Error()
	return true
}

// completionPoint is the document around the cursor of a request.
type completionPoint struct {
	prefix, suffix string
	language, file string
	// singleLine is set when the cursor has text after it on its line:
	// the completion then ends with the line.
	singleLine bool
	// lineRest is that text.
	lineRest string
}

func (s *server) completionPoint(uri string, pos protocol.Position) (completionPoint, bool) {
	enc := s.positionEncoding()
	s.docs.mu.Lock()
	defer s.docs.mu.Unlock()
	d, ok := s.docs.docs[uri]
	if !ok {
		return completionPoint{}, false
	}
	off := enc.offset(d.text, pos)
	p := completionPoint{prefix: d.text[:off], suffix: d.text[off:], language: d.languageID, file: fileName(uri)}
	rest := p.suffix
	if i := strings.IndexAny(rest, "\r\n"); i >= 0 {
		rest = rest[:i]
	}
	p.lineRest = strings.TrimSpace(rest)
	p.singleLine = p.lineRest != ""
	return p, true
}

// inlineCompletion answers textDocument/inlineCompletion with at most one
// item at the cursor. An endpoint that fails gives no item (logged once),
// never an error: the client asks on every pause in typing.
func (s *server) inlineCompletion(ctx context.Context, params json.RawMessage) (any, error) {
	var p protocol.InlineCompletionParams
	if err := protocol.Unmarshal(params, &p); err != nil {
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, "textDocument/inlineCompletion: "+err.Error())
	}
	none := &protocol.InlineCompletionList{Items: []protocol.InlineCompletionItem{}}
	item := func(text string) *protocol.InlineCompletionList {
		if text == "" {
			return none
		}
		return &protocol.InlineCompletionList{Items: []protocol.InlineCompletionItem{{
			InsertText: protocol.String(text),
			Range:      &protocol.Range{Start: p.Position, End: p.Position},
		}}}
	}
	cfg, client, err := s.current()
	if err != nil {
		s.completionFailed(err)
		return none, nil
	}
	if cfg.completion.enabled != nil && !*cfg.completion.enabled {
		return none, nil
	}
	uri := string(p.TextDocument.URI)
	if s.sessions.Running(uri) {
		// A generation is writing into the document: ghost text would
		// sit in the way of its text, and the endpoint is busy with it.
		return none, nil
	}
	at, ok := s.completionPoint(uri, p.Position)
	if !ok {
		return none, nil
	}
	if rest, ok := s.completions.cached(uri, at.prefix, at.suffix); ok {
		s.completions.supersede(uri) // a request still running is for text now gone
		return item(rest), nil
	}
	run, ctx := s.completions.start(ctx, uri)
	defer s.completions.end(uri, run)
	if p.Context.TriggerKind != protocol.InlineCompletionTriggerKindInvoked {
		s.mu.Lock()
		wait := s.caps.debounce
		s.mu.Unlock()
		if cfg.completion.debounce != nil {
			wait = *cfg.completion.debounce
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
	}
	text := ""
	if ctx.Err() == nil {
		text, err = s.complete(ctx, cfg, client, at)
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errSuperseded), errors.Is(cause, errDocumentClosed):
		return none, nil
	case ctx.Err() != nil:
		return nil, jsonrpc2.NewError(jsonrpc2.Code(protocol.LSPErrorCodesRequestCancelled), "inline completion cancelled")
	case err != nil:
		s.completionFailed(err)
		return none, nil
	}
	s.completions.remember(uri, cachedCompletion{prefix: at.prefix, suffix: at.suffix, text: text})
	return item(text), nil
}

// completionFailed logs err unless it is the failure logged last.
func (s *server) completionFailed(err error) {
	if s.completions.firstFailure(err) {
		s.log.Warn("inline completion failed (logged once until it works again)", zap.Error(err))
	}
}

// errChatWithoutFIM ends a completion that a chat model cannot give.
var errChatWithoutFIM = errors.New("inline completion is off: the endpoint is a chat model and no fill-in-the-middle format is known for it " +
	"(set prompt.fim.preset for a model that has one, or completion.enabled: true to ask the chat model)")

// completionFIM returns the fill-in-the-middle format for completion and
// the stop sequences that go with it: the explicit prompt.fim tokens, else
// the prompt.fim.preset named, else the family recognised from the model's
// name.
func completionFIM(ctx context.Context, cfg *config, client *stream.Client) (commands.FIM, []string) {
	switch {
	case cfg.preset != nil:
		return cfg.fim, cfg.preset.Stops
	case cfg.fim.Enabled():
		return cfg.fim, nil
	}
	model, err := client.Model(ctx)
	if err != nil || model == "" {
		return commands.FIM{}, nil
	}
	if p, ok := commands.FIMPresetForModel(model); ok {
		return p.FIM, p.Stops
	}
	return commands.FIM{}, nil
}

// complete asks the endpoint for the completion at at.
func (s *server) complete(ctx context.Context, cfg *config, client *stream.Client, at completionPoint) (string, error) {
	backend, err := client.Backend(ctx)
	if err != nil {
		return "", withDoctorHint(err)
	}
	fim, stops := completionFIM(ctx, cfg, client)
	chat := backend == stream.BackendOpenAI && !fim.Enabled()
	if chat && cfg.completion.enabled == nil {
		return "", errChatWithoutFIM
	}
	params := cfg.params
	params.MaxNewTokens = cfg.completion.maxNewTokens
	var lineEnd []string
	if at.singleLine {
		// First: TGI keeps only its first max_stop_sequences.
		lineEnd = []string{"\n"}
	}
	params.StopSequences = slices.Concat(lineEnd, params.StopSequences, stops)
	req := stream.Request{Params: params, Raw: fim.Enabled()}
	build := func(in commands.PromptInput) (string, error) {
		switch {
		case fim.Enabled():
			return fim.Wrap(in.Prefix, in.Suffix), nil
		case chat:
			return fmt.Sprintf("```%s\n%s<CURSOR>%s\n```", in.Language, in.Prefix, in.Suffix), nil
		}
		return in.Prefix, nil
	}
	in := commands.PromptInput{Prefix: at.prefix, Suffix: at.suffix, Language: at.language, FileName: at.file, Mode: commands.ModeHere}
	if !fim.Enabled() && !chat {
		in.Suffix = "" // a plain continuation does not see it
	}
	if chat {
		req.System = completionSystemPrompt
	}
	// The prompt fits the endpoint by estimate: counting tokens with the
	// server would cost a round trip per keystroke.
	limits, err := client.Limits(ctx)
	if err != nil {
		s.log.Debug("endpoint limits unknown", zap.Error(err))
	}
	budget := commands.InputBudget(limits, params.MaxNewTokens, cfg.settings.Context.MaxInputTokens)
	if in, err = commands.FitPrompt(ctx, nil, budget, in, build); err != nil {
		return "", err
	}
	if req.Prompt, err = build(in); err != nil {
		return "", err
	}
	st, err := client.Generate(ctx, req)
	if err != nil {
		return "", withDoctorHint(err)
	}
	defer st.Close()
	text, err := readCompletion(st, chat, at.singleLine, cfg.completion.maxLines)
	if err != nil {
		return "", err
	}
	if at.singleLine {
		// The model often writes the rest of the line too ("x)" before
		// a ")" already there); the editor would show it twice.
		text = strings.TrimSuffix(strings.TrimRight(text, " \t"), at.lineRest)
	}
	return text, nil
}

// readCompletion reads a completion from st, with its line breaks as
// "\n" whatever the document's: an editor inserts the text through its own
// buffer, which spells them as the document does (VS Code's text model,
// Emacs), or splits it at "\n" into lines (Neovim, where a "\r" would stay
// in the line as a character). It reads to the end of the first line when
// singleLine, else at most maxLines lines, cut at a line break (a last line
// the token limit cut short is left out). Line breaks that end it are
// dropped. It closes st as soon as it has enough.
func readCompletion(st *stream.Stream, chat, singleLine bool, maxLines int) (string, error) {
	var lb lineBreaks
	var fence *stream.FenceStripper
	if chat {
		fence = &stream.FenceStripper{}
	}
	var b strings.Builder
	lines := 1
	cut := false
	for !cut && st.Next() {
		piece := lb.Push(st.Text())
		if fence != nil {
			piece = fence.Push(piece)
		}
		for piece != "" {
			i := strings.IndexByte(piece, '\n')
			if i < 0 {
				b.WriteString(piece)
				break
			}
			if singleLine || lines == maxLines {
				b.WriteString(piece[:i])
				cut = true
				break
			}
			b.WriteString(piece[:i+1])
			piece = piece[i+1:]
			lines++
		}
	}
	if cut {
		st.Close()
		for st.Next() { // releases the stream's reader
		}
	} else if err := st.Err(); err != nil {
		return "", err
	}
	if fence != nil && !cut {
		b.WriteString(fence.Finish())
	}
	text := b.String()
	if !cut && st.Result().FinishReason == stream.FinishLength && !singleLine {
		if i := strings.LastIndexByte(text, '\n'); i >= 0 {
			text = text[:i]
		}
	}
	return strings.TrimRight(text, "\n"), nil
}

// completionWanted says whether inline completion is to be offered for
// cfg: completion.enabled when set; otherwise unless the endpoint is a chat
// model with no fill-in-the-middle format known (an endpoint that cannot be
// reached yet is given the benefit of the doubt).
func (s *server) completionWanted(ctx context.Context, cfg *config, client *stream.Client) bool {
	if cfg.completion.enabled != nil {
		return *cfg.completion.enabled
	}
	backend, err := client.Backend(ctx)
	if err != nil || backend != stream.BackendOpenAI {
		return true
	}
	fim, _ := completionFIM(ctx, cfg, client)
	if !fim.Enabled() {
		s.log.Info(errChatWithoutFIM.Error())
	}
	return fim.Enabled()
}

// syncCompletionRegistration registers textDocument/inlineCompletion with
// a client that registers capabilities dynamically when the settings want
// it, and unregisters it when they no longer do. It runs in the background
// (s.notes.Go): it may wait for the endpoint, and its request to the
// client must not hold up the read loop.
func (s *server) syncCompletionRegistration() {
	c := &s.completions
	c.registering.Lock()
	defer c.registering.Unlock()
	s.mu.Lock()
	caps, ready := s.caps, s.ready
	s.mu.Unlock()
	if !caps.inlineDynamic || !ready {
		return
	}
	cfg, client, err := s.current()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	want := s.completionWanted(ctx, cfg, client)
	if want == c.registered {
		return
	}
	var params any
	method := "client/registerCapability"
	if want {
		params = protocol.RegistrationParams{Registrations: []protocol.Registration{{
			ID: completionRegistrationID, Method: methodInlineCompletion,
			// null: the documents the client's own selector names.
			RegisterOptions: protocol.LSPAny(`{"documentSelector":null}`),
		}}}
	} else {
		method = "client/unregisterCapability"
		params = protocol.UnregistrationParams{Unregisterations: []protocol.Unregistration{{
			ID: completionRegistrationID, Method: methodInlineCompletion}}}
	}
	if _, err := s.conn.Call(s.ctx, method, params, nil); err != nil {
		s.log.Warn("inline completion registration failed", zap.String("method", method), zap.Error(err))
		return
	}
	c.registered = want
	s.log.Info("inline completion", zap.Bool("registered", want))
}
