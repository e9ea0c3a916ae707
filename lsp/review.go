package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
	"go.uber.org/zap"

	"github.com/genls/genls/commands"
	"github.com/genls/genls/stream"
)

// The review commands: a generation's text stays pending after its stream
// ends until one of them settles it.
const (
	cmdAccept     = "genls.accept"
	cmdDiscard    = "genls.discard"
	cmdRegenerate = "genls.regenerate"
)

// reviewArgs is the optional argument of the review commands: no argument
// means every pending generation, a URI alone every one in that document,
// an ID that one, and a range those touching it (a cursor works).
type reviewArgs struct {
	URI   string          `json:"uri,omitempty"`
	ID    *int            `json:"id,omitempty"`
	Range *protocol.Range `json:"range,omitempty"`
}

// generation is one genls.generate request, from its start until the user
// accepts or discards its text.
type generation struct {
	id     int
	uri    string
	region *region // offsets guarded by store.mu
	// original is a rewrite's original text, removed by Accept; nil for
	// other generations. Guarded by reviews.mu (Regenerate hands it on).
	original *region
	req      generationRequest
	cancel   context.CancelCauseFunc
	done     chan struct{} // closed once the stream has ended and its edits are in

	// Guarded by reviews.mu.
	running bool
	// claimed is set by the Accept, Discard or Regenerate acting on it, so
	// that no second one does.
	claimed bool
	// acceptOnEnd is Accept for a generation still running.
	acceptOnEnd bool
}

// generationRequest is what a generation runs, kept for Regenerate.
type generationRequest struct {
	gen    commands.Generation // without its Client
	client *stream.Client
	caps   clientCaps
	// fit, until the generation starts, builds the prompt from the
	// document cut to what the endpoint accepts (gen.Prompt is then the
	// uncut prompt); Regenerate reuses the prompt it built.
	fit func(ctx context.Context, backend stream.Backend) (string, error)
}

// reviews holds the running and pending generations.
type reviews struct {
	mu   sync.Mutex
	next int
	gens map[int]*generation
}

func (rv *reviews) add(uri string, r, original *region, req generationRequest, cancel context.CancelCauseFunc) *generation {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.gens == nil {
		rv.gens = map[int]*generation{}
	}
	rv.next++
	g := &generation{id: rv.next, uri: uri, region: r, original: original, req: req, cancel: cancel, done: make(chan struct{}), running: true}
	rv.gens[g.id] = g
	return g
}

// in returns uri's generations, oldest first.
func (rv *reviews) in(uri string) []*generation {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.inLocked(uri)
}

func (rv *reviews) inLocked(uri string) []*generation {
	var out []*generation
	for _, g := range rv.gens {
		if g.uri == uri {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b *generation) int { return a.id - b.id })
	return out
}

func (rv *reviews) has(uri string) bool {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for _, g := range rv.gens {
		if g.uri == uri {
			return true
		}
	}
	return false
}

// forget drops g and stops tracking its text (and a rewrite's original).
func (s *server) forget(g *generation) {
	s.reviews.mu.Lock()
	delete(s.reviews.gens, g.id)
	original := g.original
	s.reviews.mu.Unlock()
	s.docs.untrack(g.uri, g.region)
	if original != nil {
		s.docs.untrack(g.uri, original)
	}
	s.marks.changed(g.uri, true)
}

// settle is called when g's stream has ended and its edits are in: g is
// pending, or accepted at once when review is off, when Accept came while
// it ran, or when it wrote nothing (there is nothing to review).
func (s *server) settle(g *generation) {
	review := s.reviewEnabled()
	s.docs.mu.Lock()
	_, open := s.docs.docs[g.uri]
	empty := g.region.start == g.region.end
	s.docs.mu.Unlock()
	s.reviews.mu.Lock()
	g.running = false
	keep := open && (g.claimed || review && !g.acceptOnEnd && !empty)
	rewritten := open && !empty && g.original != nil && !g.claimed
	if !keep && rewritten {
		g.claimed = true // accepted below: its original goes
	}
	s.reviews.mu.Unlock()
	close(g.done)
	switch {
	case !keep && rewritten:
		s.accept(g) // no longer running: its original goes
	case !keep:
		s.forget(g)
	default:
		s.marks.changed(g.uri, true)
	}
}

func (s *server) reviewEnabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.review
}

// reviewCommand runs genls.accept, genls.discard or genls.regenerate on the
// generations its argument selects and returns how many. Discard and
// Regenerate edit the document in the background, as genls.generate does:
// the reply does not wait for the editor.
func (s *server) reviewCommand(cmd string, arguments []protocol.LSPAny) (any, error) {
	var args reviewArgs
	if len(arguments) > 1 || len(arguments) == 1 && json.Unmarshal(arguments[0], &args) != nil {
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, cmd+` takes no argument or {"uri": …, "id"?: …, "range"?: …}`)
	}
	gens := s.claim(args)
	for _, g := range gens {
		switch cmd {
		case cmdAccept:
			s.accept(g)
		default:
			s.notes.Go(func() {
				s.discard(g, cmd == cmdRegenerate)
			})
		}
	}
	s.log.Info(cmd, zap.String("uri", args.URI), zap.Int("generations", len(gens)))
	return len(gens), nil
}

// claim returns the unclaimed generations args selects, claimed.
func (s *server) claim(args reviewArgs) []*generation {
	enc := s.positionEncoding()
	s.reviews.mu.Lock()
	defer s.reviews.mu.Unlock()
	var out []*generation
	for _, g := range s.reviews.gens {
		if g.claimed || args.URI != "" && g.uri != args.URI || args.ID != nil && g.id != *args.ID {
			continue
		}
		if args.Range != nil && !s.touches(g, *args.Range, enc) {
			continue
		}
		g.claimed = true
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *generation) int { return a.id - b.id })
	return out
}

// touches reports whether rng (in the client's encoding) overlaps g's text
// or a rewrite's original, or touches either end of them. reviews.mu is
// held.
func (s *server) touches(g *generation, rng protocol.Range, enc encoding) bool {
	s.docs.mu.Lock()
	defer s.docs.mu.Unlock()
	d, ok := s.docs.docs[g.uri]
	if !ok {
		return false
	}
	a, b := enc.offset(d.text, rng.Start), enc.offset(d.text, rng.End)
	if b < a {
		a, b = b, a
	}
	in := func(r *region) bool { return r != nil && a <= r.end && b >= r.start }
	return in(g.region) || in(g.original)
}

// accept keeps g's text as it is and drops its marks (a rewrite's original
// goes, in the background, with one edit); a running generation is
// accepted when it ends.
func (s *server) accept(g *generation) {
	s.reviews.mu.Lock()
	running := g.running
	if running {
		g.acceptOnEnd, g.claimed = true, false
	}
	s.reviews.mu.Unlock()
	switch {
	case running:
	case g.original != nil:
		s.notes.Go(func() {
			s.acceptRewrite(g)
		})
	default:
		s.forget(g)
	}
}

// errDiscarded cancels a generation being discarded.
var errDiscarded = errors.New("generation discarded")

// discard removes g's text from the document with one edit, after stopping
// g if it still runs, and with again runs g's request once more in its place.
func (s *server) discard(g *generation, again bool) {
	g.cancel(errDiscarded)
	<-g.done
	removed, err := s.removeText(g, g.region)
	if err != nil {
		s.log.Warn("discard failed", zap.Int("generation", g.id), zap.Error(err))
		s.showMessage(protocol.MessageTypeError, err.Error())
		s.unclaim(g)
		return
	}
	if !again {
		s.forget(g)
		return
	}
	r, err := s.replacement(g, removed)
	// A rewrite's original stays, for the new rewrite.
	s.reviews.mu.Lock()
	original := g.original
	g.original = nil
	s.reviews.mu.Unlock()
	s.forget(g)
	if err != nil {
		s.docs.untrack(g.uri, original)
		s.showMessage(protocol.MessageTypeError, err.Error())
		return
	}
	req := g.req
	if req.gen.Params.Seed != nil {
		// The same request with the same seed would give the same text.
		seed := rand.Uint64()
		req.gen.Params.Seed = &seed
	}
	s.run(g.uri, r, original, req)
}

// acceptRewrite accepts a rewrite: its original goes, with one edit.
func (s *server) acceptRewrite(g *generation) {
	if _, err := s.removeText(g, g.original); err != nil {
		s.log.Warn("accept failed", zap.Int("generation", g.id), zap.Error(err))
		s.showMessage(protocol.MessageTypeError, err.Error())
		s.unclaim(g)
		return
	}
	s.forget(g)
}

// unclaim makes g pending again after a failed discard.
func (s *server) unclaim(g *generation) {
	s.reviews.mu.Lock()
	g.claimed = false
	s.reviews.mu.Unlock()
	s.marks.changed(g.uri, true)
}

// maxDiscardAttempts bounds how often a discard edit is re-sent after the
// editor rejected it as stale (the user typing meanwhile).
const maxDiscardAttempts = 8

// removeText deletes r, g's text or its original, with a
// workspace/applyEdit on the document's current version, again if the
// editor rejects it as stale. It reports whether there was text to remove.
func (s *server) removeText(g *generation, r *region) (bool, error) {
	caps := g.req.caps
	for attempt := 1; ; attempt++ {
		s.docs.mu.Lock()
		d, ok := s.docs.docs[g.uri]
		if !ok || r.start == r.end {
			s.docs.mu.Unlock()
			return false, nil
		}
		rng := protocol.Range{Start: caps.encoding.position(d.text, r.start), End: caps.encoding.position(d.text, r.end)}
		params := replaceEdit(g.uri, d.version, caps.documentChanges, rng, "")
		r.removing = true
		s.docs.mu.Unlock()

		ctx, cancel := context.WithTimeout(s.ctx, s.editLimits.Timeout)
		applied, reason, err := s.applyEdit(ctx, params)
		cancel()
		switch {
		case err != nil:
			return false, fmt.Errorf("the editor did not apply the edit removing the text: %w", err)
		case applied:
			return true, nil
		case attempt == maxDiscardAttempts:
			return false, fmt.Errorf("the editor rejected the edit removing the text %d times (%s)", attempt, reason)
		}
		r.waitChange(time.Duration(attempt)*50*time.Millisecond, s.ctx.Done())
	}
}

// replacement returns the region Regenerate writes into: where g's text
// was, once the editor has reported removing it.
func (s *server) replacement(g *generation, removed bool) (*region, error) {
	deadline := time.Now().Add(s.editLimits.EchoTimeout)
	for {
		s.docs.mu.Lock()
		d, ok := s.docs.docs[g.uri]
		switch {
		case !ok:
			s.docs.mu.Unlock()
			return nil, errDocClosed
		case g.region.start == g.region.end:
			r := newRegion(g.region.start, g.req.caps.documentChanges, g.req.caps.encoding)
			d.regions[r] = struct{}{}
			s.docs.mu.Unlock()
			return r, nil
		}
		s.docs.mu.Unlock()
		if !removed || time.Now().After(deadline) {
			return nil, errors.New("regenerate: the editor did not report removing the generated text")
		}
		g.region.waitChange(time.Until(deadline), s.ctx.Done())
	}
}

// reviewActions returns Accept, Discard and Regenerate for the generations
// rng touches in uri, each with its mark as the diagnostic it resolves.
func (s *server) reviewActions(uri string, rng protocol.Range) []protocol.CodeAction {
	enc := s.positionEncoding()
	var actions []protocol.CodeAction
	ms, _, _ := s.marksOf(uri)
	for _, m := range ms {
		if m.original || m.claimed || !s.touches(m.g, rng, enc) {
			continue
		}
		arg, _ := json.Marshal(reviewArgs{URI: uri, ID: &m.g.id})
		diags := []protocol.Diagnostic{m.diagnostic()}
		for _, a := range []struct {
			title string
			kind  protocol.CodeActionKind
			cmd   string
		}{
			{"Accept generation", kindAccept, cmdAccept},
			{"Discard generation", kindDiscard, cmdDiscard},
			{"Regenerate", kindRegenerate, cmdRegenerate},
		} {
			kind := a.kind
			actions = append(actions, protocol.CodeAction{Title: a.title, Kind: &kind, Diagnostics: diags,
				Command: protocol.Command{Title: a.title, Command: a.cmd, Arguments: []protocol.LSPAny{arg}}})
		}
	}
	return actions
}

// codeLens puts Accept | Discard | Regenerate above each pending generation
// and Cancel above a running one.
func (s *server) codeLens(params json.RawMessage) (any, error) {
	var p struct {
		TextDocument struct {
			URI string `json:"uri"`
		} `json:"textDocument"`
	}
	if err := protocol.Unmarshal(params, &p); err != nil {
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, err.Error())
	}
	uri := p.TextDocument.URI
	lenses := []protocol.CodeLens{}
	lens := func(at protocol.Position, title, cmd string, arg any) {
		raw, _ := json.Marshal(arg)
		lenses = append(lenses, protocol.CodeLens{Range: protocol.Range{Start: at, End: at},
			Command: protocol.Command{Title: title, Command: cmd, Arguments: []protocol.LSPAny{raw}}})
	}
	ms, _, _ := s.marksOf(uri)
	for _, m := range ms {
		if m.original {
			continue
		}
		at := protocol.Position{Line: m.rng.Start.Line}
		switch {
		case m.running:
			lens(at, "Cancel generation", cmdCancel, cancelArgs{URI: uri})
		case !m.claimed:
			id := reviewArgs{URI: uri, ID: &m.g.id}
			lens(at, "Accept", cmdAccept, id)
			lens(at, "Discard", cmdDiscard, id)
			lens(at, "Regenerate", cmdRegenerate, id)
		}
	}
	return lenses, nil
}
