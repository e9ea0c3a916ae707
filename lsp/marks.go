package lsp

import (
	"context"
	"sync"
	"time"

	lspuri "go.lsp.dev/uri"

	"go.lsp.dev/protocol"
	"go.uber.org/zap"
)

// A generation's text is marked, while it streams and while it is pending,
// by a Hint diagnostic over it: every editor shows diagnostics, so every
// editor shows what is generated and not yet accepted.

// mark is one generation's place in its document, as published.
type mark struct {
	g       *generation
	rng     protocol.Range
	running bool
	claimed bool
	// original marks a rewrite's original text rather than the new text.
	original bool
}

const (
	markSource       = "genls"
	codeGenerating   = "genls.generating"
	codePending      = "genls.pending"
	codeOriginal     = "genls.original"
	messageRunning   = "Generating…"
	messagePending   = "Generated text pending review: Accept or Discard (code actions)"
	messageOriginal  = "Original text: Accept replaces it with the rewrite below it; Discard keeps it"
	markThrottle     = 100 * time.Millisecond
	lensRefreshLimit = 2 * time.Second
)

func (m mark) diagnostic() protocol.Diagnostic {
	code, msg := codePending, messagePending
	switch {
	case m.original:
		code, msg = codeOriginal, messageOriginal
	case m.running:
		code, msg = codeGenerating, messageRunning
	}
	data, _ := protocol.Marshal(map[string]int{"id": m.g.id})
	d := protocol.Diagnostic{Range: m.rng, Severity: protocol.DiagnosticSeverityHint, Code: protocol.String(code),
		Source: protocol.NewOptional(markSource), Message: protocol.String(msg), Data: data}
	if m.original {
		// Struck through in VS Code and Neovim: the text the rewrite
		// replaces.
		d.Tags = protocol.NewDiagnosticTags(protocol.DiagnosticTagDeprecated)
	}
	return d
}

// marksOf returns the marks of uri's generations, oldest first, with the
// document's version they were computed on, and forgets pending generations
// whose text the user deleted entirely (an undo of the whole generation,
// say).
func (s *server) marksOf(uri string) (out []mark, version int32, open bool) {
	enc := s.positionEncoding()
	var gone []*generation
	s.reviews.mu.Lock()
	gens := s.reviews.inLocked(uri)
	s.docs.mu.Lock()
	d, open := s.docs.docs[uri]
	if open {
		version = d.version
	}
	for _, g := range gens {
		if !open {
			break
		}
		if g.region.gone && !g.running && !g.claimed {
			gone = append(gone, g)
			continue
		}
		at := func(r *region) protocol.Range {
			return protocol.Range{Start: enc.position(d.text, r.start), End: enc.position(d.text, r.end)}
		}
		if g.original != nil && g.original.start < g.original.end {
			out = append(out, mark{g: g, running: g.running, claimed: g.claimed, original: true, rng: at(g.original)})
		}
		out = append(out, mark{g: g, running: g.running, claimed: g.claimed, rng: at(g.region)})
	}
	s.docs.mu.Unlock()
	s.reviews.mu.Unlock()
	for _, g := range gone {
		s.forget(g)
	}
	return out, version, open
}

// marks publishes the documents whose generations changed, at most once
// per markThrottle, from one goroutine so that they arrive in order.
type marks struct {
	mu      sync.Mutex
	dirty   map[string]bool
	lenses  bool // the code lenses changed: ask the client to refresh them
	kick    chan struct{}
	publish func(uri string)
	refresh func()
}

func newMarks() *marks {
	return &marks{dirty: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// changed schedules uri's marks to be published; lenses says that a
// generation started, ended or was settled, which moves or changes lenses.
func (m *marks) changed(uri string, lenses bool) {
	m.mu.Lock()
	m.dirty[uri] = true
	m.lenses = m.lenses || lenses
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// run publishes until ctx ends.
func (m *marks) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		}
		m.mu.Lock()
		dirty, lenses := m.dirty, m.lenses
		m.dirty, m.lenses = map[string]bool{}, false
		m.mu.Unlock()
		for uri := range dirty {
			m.publish(uri)
		}
		if lenses {
			m.refresh()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(markThrottle):
		}
	}
}

// publishMarks sends uri's marks as its genls diagnostics (none clears them).
func (s *server) publishMarks(uri string) {
	diags := []protocol.Diagnostic{}
	ms, version, open := s.marksOf(uri)
	for _, m := range ms {
		diags = append(diags, m.diagnostic())
	}
	params := &protocol.PublishDiagnosticsParams{URI: lspuri.URI(uri), Diagnostics: diags}
	if open {
		params.Version = protocol.NewOptional(version)
	}
	if err := s.conn.Notify(s.ctx, "textDocument/publishDiagnostics", params); err != nil {
		s.log.Debug("publishDiagnostics failed", zap.Error(err))
	}
}

// refreshLenses asks a client that supports it to request code lenses again.
func (s *server) refreshLenses() {
	s.mu.Lock()
	supported := s.caps.lensRefresh
	s.mu.Unlock()
	if !supported {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, lensRefreshLimit)
	defer cancel()
	if _, err := s.conn.Call(ctx, "workspace/codeLens/refresh", nil, nil); err != nil {
		s.log.Debug("codeLens/refresh failed", zap.Error(err))
	}
}
