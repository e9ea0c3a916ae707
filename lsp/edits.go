package lsp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.lsp.dev/protocol"
	lspuri "go.lsp.dev/uri"
)

// Errors that end a generation from the editor's side.
var (
	errUserEdited   = errors.New("generation stopped: the generated text was edited")
	errDocClosed    = errors.New("generation stopped: the document was closed")
	errEditRejected = errors.New("generation stopped: the editor keeps rejecting edits")
)

// EditLimits bounds waiting for the editor. A zero field takes its default,
// generous enough for a slow editor on a busy machine.
type EditLimits struct {
	// Timeout bounds one workspace/applyEdit round trip (10 s).
	Timeout time.Duration
	// EchoTimeout bounds the wait, at the end, for the didChange that
	// confirms the last edits (3 s).
	EchoTimeout time.Duration
	// MaxRejections is how many rejections in a row, while the document
	// does not change, end a generation (8).
	MaxRejections int
	// NudgeAfter is when an unanswered edit gets a nudge (300 ms).
	NudgeAfter time.Duration
}

var defaultEditLimits = EditLimits{Timeout: 10 * time.Second, EchoTimeout: 3 * time.Second, MaxRejections: 8, NudgeAfter: 300 * time.Millisecond}

// orDefaults returns l with its zero fields set to the defaults.
func (l EditLimits) orDefaults() EditLimits {
	d := defaultEditLimits
	if l.Timeout > 0 {
		d.Timeout = l.Timeout
	}
	if l.EchoTimeout > 0 {
		d.EchoTimeout = l.EchoTimeout
	}
	if l.MaxRejections > 0 {
		d.MaxRejections = l.MaxRejections
	}
	if l.NudgeAfter > 0 {
		d.NudgeAfter = l.NudgeAfter
	}
	return d
}

// applyEditFunc sends workspace/applyEdit and returns whether the editor
// applied it.
type applyEditFunc func(ctx context.Context, params *protocol.ApplyWorkspaceEditParams) (applied bool, reason string, err error)

// editSink writes one generation's text into a document through
// workspace/applyEdit, with at most one request in flight: text that arrives
// meanwhile is merged into the next edit, so the edit rate adapts to how fast
// the editor answers and a burst of tokens costs few edits.
type editSink struct {
	ctx     context.Context // the connection's lifetime: ends unanswered edits when it ends
	store   *store
	uri     string
	enc     encoding
	r       *region
	apply   applyEditFunc
	onFail  func(error)
	nudge   func() // optional: pokes an editor that is slow to answer
	limits  EditLimits
	started bool
	breaks  lineBreaks // guarded by store.mu

	done   chan struct{} // closed when the writer goroutine exits
	closed bool          // Close was called; guarded by store.mu
	err    error         // guarded by store.mu
}

// newEditSink writes into r, a region of uri that the store already moves
// with every change. onFail is called once if the sink fails on its own
// (user edit, rejection), so the session can stop the stream at once.
func newEditSink(ctx context.Context, st *store, uri string, r *region, enc encoding, apply applyEditFunc, onFail func(error)) *editSink {
	return &editSink{ctx: ctx, store: st, uri: uri, enc: enc, r: r, apply: apply, onFail: onFail, limits: defaultEditLimits, done: make(chan struct{})}
}

// Write queues text; it never blocks on the editor.
func (s *editSink) Write(text string) error {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.queue(s.breaks.Push(text))
	if !s.started {
		s.started = true
		go s.run()
	}
	s.r.wake()
	return nil
}

// queue adds canonical text to what is to be sent; store.mu is held.
func (s *editSink) queue(text string) {
	s.r.pending += text
	s.r.budget += len(text) + strings.Count(text, "\n")
}

// Close waits until everything written is in the document, then settles
// the region: it stays tracked, as the generation's text, for whoever
// created it to keep for review or untrack.
func (s *editSink) Close(ctx context.Context) error {
	s.store.mu.Lock()
	s.closed = true
	started := s.started
	s.r.wake()
	s.store.mu.Unlock()
	if started {
		select {
		case <-s.done:
		case <-ctx.Done():
		}
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	// Edits never echoed (the editor was too slow, or dropped them) are
	// not waited for any more.
	s.r.pending, s.r.unechoed = "", nil
	return s.err
}

func (s *editSink) fail(err error) {
	s.store.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.store.mu.Unlock()
	if s.onFail != nil {
		s.onFail(err)
	}
}

// run is the writer: it sends the pending text whenever the previous edit
// has been answered.
func (s *editSink) run() {
	defer close(s.done)
	rejections := 0
	rejectedAt := int32(-1) // the document's version at the last rejection
	var echoDeadline time.Time
	for {
		s.store.mu.Lock()
		d, open := s.store.docs[s.uri]
		switch {
		case !open:
			s.store.mu.Unlock()
			s.fail(errDocClosed)
			return
		case s.r.edited:
			s.store.mu.Unlock()
			s.fail(errUserEdited)
			return
		case s.r.failure != nil:
			err := s.r.failure
			s.store.mu.Unlock()
			s.fail(err)
			return
		case s.r.pending == "" && s.closed && len(s.r.unechoed) == 0:
			s.store.mu.Unlock()
			return
		case s.r.pending == "" && s.closed:
			// Wait a bounded time for the editor to confirm the last edits.
			if echoDeadline.IsZero() {
				echoDeadline = time.Now().Add(s.limits.EchoTimeout)
			}
			if time.Now().After(echoDeadline) {
				s.store.mu.Unlock()
				return
			}
			s.store.mu.Unlock()
			s.waitChange(time.Until(echoDeadline))
			continue
		case s.r.pending == "":
			s.store.mu.Unlock()
			s.waitChange(time.Hour)
			continue
		}
		// Place the edit after the edits the editor has applied but not yet
		// echoed, on the version it will have by then.
		var ahead strings.Builder
		for _, e := range s.r.unechoed {
			ahead.WriteString(e.text)
		}
		pos := s.enc.advance(s.r.endPosition(d.text), ahead.String())
		version := d.version + int32(len(s.r.unechoed))
		sent := &sentEdit{text: toLineEnding(s.r.pending, d.lineEnding()), canon: s.r.pending}
		text := sent.text
		s.r.pending = ""
		s.r.unechoed = append(s.r.unechoed, sent)
		s.store.mu.Unlock()

		params := insertEdit(s.uri, version, s.r.versioned, pos, text)
		ctx, cancel := context.WithTimeout(s.ctx, s.limits.Timeout)
		// Emacs 28's jsonrpc can leave a message unprocessed until another
		// arrives; an overdue answer gets a harmless logMessage as a nudge.
		nudge := time.AfterFunc(s.limits.NudgeAfter, func() {
			if s.nudge != nil {
				s.nudge()
			}
		})
		applied, reason, err := s.apply(ctx, params)
		nudge.Stop()
		cancel()

		s.store.mu.Lock()
		i := indexEdit(s.r.unechoed, sent)
		if err == nil && applied {
			if i >= 0 {
				// Applied, echo still to come. Confirmed text is never
				// sent again: if the document already moved on without
				// it, the generation stops instead.
				sent.applied = true
				if sent.overtaken && s.r.failure == nil {
					s.r.failure = errUnconfirmed
				}
			}
			rejections = 0
			s.store.mu.Unlock()
			continue
		}
		// Not applied: put the text back in front and try again once the
		// document has moved.
		if i >= 0 {
			s.r.unechoed = append(s.r.unechoed[:i], s.r.unechoed[i+1:]...)
			s.r.pending = sent.canon + s.r.pending
		}
		// Only rejections while the document stands still count: a document
		// that moved on (the user typing, another generation) explains why
		// the edit was stale.
		if d, open := s.store.docs[s.uri]; open && d.version != rejectedAt {
			rejectedAt, rejections = d.version, 0
		}
		rejections++
		s.store.mu.Unlock()
		if s.ctx.Err() != nil {
			return // the connection is gone: nobody to write to
		}
		if errors.Is(err, context.DeadlineExceeded) {
			s.fail(fmt.Errorf("generation stopped: the editor did not answer an edit within %s", s.limits.Timeout))
			return
		}
		if rejections >= s.limits.MaxRejections {
			why := reason
			if err != nil {
				why = err.Error()
			}
			s.fail(fmt.Errorf("%w (%s)", errEditRejected, why))
			return
		}
		s.waitChange(time.Duration(rejections) * 50 * time.Millisecond)
	}
}

func (s *editSink) waitChange(d time.Duration) { s.r.waitChange(d, nil) }

func indexEdit(es []*sentEdit, e *sentEdit) int {
	for i, x := range es {
		if x == e {
			return i
		}
	}
	return -1
}

// insertEdit is workspace/applyEdit's params inserting text at pos of uri:
// versioned documentChanges, which the editor rejects when its document has
// another version, or plain changes.
func insertEdit(uri string, version int32, versioned bool, pos protocol.Position, text string) *protocol.ApplyWorkspaceEditParams {
	return replaceEdit(uri, version, versioned, protocol.Range{Start: pos, End: pos}, text)
}

// replaceEdit is workspace/applyEdit's params replacing rng of uri with
// text, versioned as insertEdit's.
func replaceEdit(uri string, version int32, versioned bool, rng protocol.Range, text string) *protocol.ApplyWorkspaceEditParams {
	edit := protocol.TextEdit{Range: rng, NewText: text}
	// No label: Neovim prints every labelled edit, one line per streamed edit.
	p := &protocol.ApplyWorkspaceEditParams{}
	if versioned {
		p.Edit.DocumentChanges = []protocol.DocumentChange{&protocol.TextDocumentEdit{
			TextDocument: protocol.OptionalVersionedTextDocumentIdentifier{
				// The client's URI verbatim, not canonicalised by uri.Parse.
				TextDocumentIdentifier: protocol.TextDocumentIdentifier{URI: lspuri.URI(uri)},
				Version:                &version,
			},
			Edits: []protocol.TextDocumentEditElement{&edit},
		}}
	} else {
		p.Edit.Changes = map[lspuri.URI][]protocol.TextEdit{lspuri.URI(uri): {edit}}
	}
	return p
}
