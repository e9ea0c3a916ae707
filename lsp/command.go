package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
	"go.uber.org/zap"

	"github.com/genls/genls/commands"
	"github.com/genls/genls/stream"
)

// The commands genls executes, as listed in executeCommandProvider and
// used by the editor integrations.
const (
	cmdGenerate = "genls.generate"
	cmdCancel   = "genls.cancel"
)

// generateArgs is the single argument of genls.generate.
type generateArgs struct {
	URI   string         `json:"uri"`
	Range protocol.Range `json:"range"`
	// Mode is "insert" (the default), "here" or "rewrite".
	Mode string `json:"mode,omitempty"`
	// Here is mode "here", as older editor integrations ask for it.
	Here bool `json:"here,omitempty"`
	// Instruction is what the user asked for, if anything.
	Instruction string `json:"instruction,omitempty"`
	// Action is the title of a named action from the settings, whose
	// mode, prompt and parameters apply.
	Action string `json:"action,omitempty"`
}

// cancelArgs is the optional argument of genls.cancel; no argument (or an
// empty URI) cancels every generation.
type cancelArgs struct {
	URI string `json:"uri,omitempty"`
}

// generateResult is genls.generate's reply: the generation's id, which the
// review commands take.
type generateResult struct {
	ID int `json:"id"`
}

// executeCommand runs genls's commands. genls.generate replies at once
// (editors time out long requests) and the generation runs in the
// background on the connection's lifetime; so do Discard and Regenerate.
func (s *server) executeCommand(params json.RawMessage) (any, error) {
	var p protocol.ExecuteCommandParams
	if err := protocol.Unmarshal(params, &p); err != nil {
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, err.Error())
	}
	switch p.Command {
	case cmdGenerate:
		var args generateArgs
		if len(p.Arguments) != 1 || json.Unmarshal(p.Arguments[0], &args) != nil || args.URI == "" {
			return nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, `genls.generate takes one argument {"uri": …, "range": …}`)
		}
		id, err := s.startGeneration(args)
		if err != nil {
			s.showMessage(protocol.MessageTypeError, err.Error())
			return nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, err.Error())
		}
		return generateResult{ID: id}, nil
	case cmdCancel:
		var args cancelArgs
		if len(p.Arguments) > 0 {
			if err := json.Unmarshal(p.Arguments[0], &args); err != nil {
				return nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, `genls.cancel takes no argument or {"uri": …}`)
			}
		}
		n := s.sessions.Cancel(args.URI)
		s.log.Info("cancel", zap.String("uri", args.URI), zap.Int("generations", n))
		return nil, nil
	case cmdAccept, cmdDiscard, cmdRegenerate:
		return s.reviewCommand(p.Command, p.Arguments)
	}
	return nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, "unknown command "+p.Command)
}

// target is where a generation reads its prompt and writes its text.
type target struct {
	input  commands.PromptInput
	region *region // where the text goes, moved by every change since locate
	// original is a rewrite's selection, removed when it is accepted.
	original *region
}

// locate reads the prompt input and the insertion point from the document:
// after a selection; after the cursor's line for Generate without one; at
// the cursor for Generate here (or on an empty line). It starts the region
// at the insertion point under the same lock, so that no change can come
// between reading the point and tracking it; a caller that does not write
// into the region untracks it.
func (s *server) locate(args generateArgs, mode commands.Mode, caps clientCaps) (target, error) {
	s.docs.mu.Lock()
	defer s.docs.mu.Unlock()
	d, ok := s.docs.docs[args.URI]
	if !ok {
		return target{}, fmt.Errorf("%s is not open in the editor", args.URI)
	}
	text, enc := d.text, caps.encoding
	a, b := enc.offset(text, args.Range.Start), enc.offset(text, args.Range.End)
	if b < a {
		a, b = b, a
	}
	t := target{input: commands.PromptInput{Language: d.languageID, FileName: fileName(args.URI), Mode: mode}}
	var anchor int
	switch {
	case mode == commands.ModeRewrite && a == b:
		return target{}, errors.New("nothing to rewrite: select the text to rewrite")
	case mode == commands.ModeRewrite:
		// The rewrite goes right after the original, which stays until
		// the rewrite is accepted.
		t.input.Selection = text[a:b]
		anchor = b
		t.original = newRegion(a, caps.documentChanges, enc)
		t.original.end = b
		d.regions[t.original] = struct{}{}
	case a != b && mode == commands.ModeInsert:
		t.input.Selection = text[a:b]
		anchor = b
	case mode == commands.ModeInsert:
		start := lineStart(text, enc.position(text, a).Line)
		end := lineEnd(text, start)
		if start != end {
			t.input.Selection = text[start:end]
			anchor = end
			break
		}
		t.input.Mode, anchor = commands.ModeHere, a
	default:
		anchor = b
	}
	t.input.Prefix, t.input.Suffix = text[:anchor], text[anchor:]
	t.region = newRegion(anchor, caps.documentChanges, enc)
	d.regions[t.region] = struct{}{}
	return t, nil
}

func fileName(uri string) string {
	if u, err := url.Parse(uri); err == nil && u.Path != "" {
		return path.Base(u.Path)
	}
	return ""
}

// startGeneration starts the generation args asks for and returns its id.
func (s *server) startGeneration(args generateArgs) (int, error) {
	cfg, client, err := s.current()
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	caps := s.caps
	s.mu.Unlock()
	mode, err := commands.ParseMode(args.Mode)
	if err != nil {
		return 0, err
	}
	if args.Here && args.Mode == "" {
		mode = commands.ModeHere
	}
	tmpl, system, params, instruction := cfg.template, cfg.systemFor, cfg.params, args.Instruction
	if args.Action != "" {
		a, ok := cfg.actionNamed(args.Action)
		if !ok {
			return 0, fmt.Errorf("no action is named %q in the settings", args.Action)
		}
		mode, params = a.mode, a.params
		if a.template != nil {
			tmpl = a.template
		}
		if a.system != nil {
			system = func(commands.Mode) string { return *a.system }
		}
		if a.instruction != "" {
			instruction = a.instruction
		}
		if a.client != nil {
			client = a.client
		}
	}
	t, err := s.locate(args, mode, caps)
	if err != nil {
		return 0, err
	}
	t.input.Instruction = instruction
	prompt, err := commands.BuildPrompt(tmpl, cfg.fim, t.input)
	if err == nil && prompt == "" {
		err = errors.New("nothing to generate from: select some text, or use Generate here after some text")
	}
	if err != nil {
		s.docs.untrack(args.URI, t.region)
		s.docs.untrack(args.URI, t.original)
		return 0, err
	}
	rewrite := t.input.Mode == commands.ModeRewrite
	gen := commands.Generation{Prompt: prompt, System: system(t.input.Mode), Params: params, Rewrite: rewrite,
		EndWithLineBreak: rewrite && strings.HasSuffix(t.input.Selection, "\n")}
	build := func(in commands.PromptInput) (string, error) { return commands.BuildPrompt(tmpl, cfg.fim, in) }
	fit := func(ctx context.Context, backend stream.Backend) (string, error) {
		limits, err := client.Limits(ctx)
		if err != nil {
			s.log.Debug("endpoint limits unknown", zap.Error(err))
		}
		budget := commands.InputBudget(limits, params.MaxNewTokens, cfg.settings.Context.MaxInputTokens)
		counted := build
		if backend == stream.BackendOpenAI {
			// A chat request carries the system message too, and a few
			// tokens of the chat template around each message.
			const chatTemplateTokens = 16
			budget -= chatTemplateTokens
			counted = func(in commands.PromptInput) (string, error) {
				p, err := build(in)
				return gen.System + "\n" + p, err
			}
		}
		in, err := commands.FitPrompt(ctx, client, budget, t.input, counted)
		if err != nil {
			return "", err
		}
		return build(in)
	}
	g := s.run(args.URI, t.region, t.original, generationRequest{caps: caps, client: client, gen: gen, fit: fit})
	return g.id, nil
}

// run runs req into region r of uri, in the background, as a new
// generation; original is a rewrite's original text.
func (s *server) run(uri string, r, original *region, req generationRequest) *generation {
	caps := req.caps
	// The session's context: cancelled by genls.cancel, progress cancel,
	// Discard, closing the document, shutdown, or the connection ending.
	ctx, cancelCtx := context.WithCancelCause(s.ctx)
	g := s.reviews.add(uri, r, original, req, cancelCtx)
	sink := newEditSink(s.ctx, s.docs, uri, r, caps.encoding, s.applyEdit, func(err error) { cancelCtx(err) })
	sink.limits = s.editLimits
	sink.nudge = func() {
		nudge := &protocol.LogMessageParams{Type: protocol.MessageTypeLog, Message: "genls: waiting for the editor to apply an edit"}
		if err := s.conn.Notify(s.ctx, "window/logMessage", nudge); err != nil {
			s.log.Debug("logMessage failed", zap.Error(err))
		}
	}
	prog := s.beginProgress(ctx, "Generating…", "starting")
	sessCtx, end := s.sessions.Start(ctx, uri, prog.Token())
	s.marks.changed(uri, true)
	go func() {
		defer cancelCtx(nil)
		outcome, err := s.generate(sessCtx, g, sink, prog)
		s.settle(g)
		// The session ends before the editor hears of it, so that it is no
		// longer offered "Cancel generation".
		end(func() {
			prog.End(outcome)
			if err != nil {
				typ := protocol.MessageTypeError
				if errors.Is(err, errUserEdited) || errors.Is(err, errDocClosed) {
					typ = protocol.MessageTypeWarning
				}
				s.showMessage(typ, err.Error())
			}
		})
	}()
	return g
}

// generate runs one generation into sink and returns the outcome to end its
// progress with, and the error to show the user, if any.
func (s *server) generate(ctx context.Context, gen *generation, sink *editSink, prog *progress) (outcome string, shown error) {
	req := gen.req
	if req.fit != nil {
		// The document around the cursor, cut to what the endpoint
		// accepts; kept for Regenerate.
		backend, err := req.client.Backend(ctx)
		if err == nil {
			req.gen.Prompt, err = req.fit(ctx, backend)
		}
		if err != nil {
			sink.Close(context.WithoutCancel(ctx))
			s.log.Info("generation not started", zap.String("uri", sink.uri), zap.Error(err))
			if errors.Is(err, context.Canceled) {
				return "cancelled", nil
			}
			return "failed: " + err.Error(), withDoctorHint(err)
		}
		req.fit = nil
		gen.req = req
	}
	g := req.gen
	g.Client = req.client
	g.Started = func(backend stream.Backend) {
		s.log.Info("generation started", zap.String("uri", sink.uri), zap.String("backend", string(backend)))
	}
	res, err := commands.Run(ctx, g, sink, prog)
	tokens := fmt.Sprintf("%d tokens", res.Tokens)
	if res.Tokens == 1 {
		tokens = "1 token"
	}
	summary := fmt.Sprintf("%s: %s, %.1f tokens/s", res.FinishReason, tokens, res.TokensPerSecond())
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // the sink's own failure, which cancelled the stream
	}
	s.log.Info("generation ended", zap.String("uri", sink.uri), zap.String("summary", summary), zap.Error(err))
	switch {
	case err == nil:
		return summary, nil
	case errors.Is(err, errDiscarded):
		return "discarded", nil
	case errors.Is(err, context.Canceled):
		return "cancelled", nil
	}
	return "failed: " + err.Error(), withDoctorHint(err)
}

// applyEdit sends workspace/applyEdit and returns the editor's answer.
func (s *server) applyEdit(ctx context.Context, params *protocol.ApplyWorkspaceEditParams) (applied bool, reason string, err error) {
	var res protocol.ApplyWorkspaceEditResult
	if _, err := s.conn.Call(ctx, "workspace/applyEdit", params, &res); err != nil {
		return false, "", err
	}
	if res.FailureReason != nil {
		reason = *res.FailureReason
	}
	return res.Applied, reason, nil
}

// withDoctorHint points an error about the endpoint's setup (unreachable,
// token missing or rejected, wrong URL) at `genls doctor`, which diagnoses
// those.
func withDoctorHint(err error) error {
	if msg, ok := noEndpointMessage(err); ok {
		return errors.New(msg)
	}
	if stream.IsSetupError(err) {
		return fmt.Errorf("%w (run `genls doctor` in a terminal to check the setup)", err)
	}
	return err
}
