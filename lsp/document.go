package lsp

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.lsp.dev/protocol"
)

// store holds the open documents as the client last described them, and the
// regions generations are writing into. One mutex guards both, because every
// change must move every region of its document atomically.
type store struct {
	mu   sync.Mutex
	docs map[string]*document
}

type document struct {
	languageID string
	text       string
	version    int32
	regions    map[*region]struct{}

	// eol caches lineEndingOf(text) ("" when unknown); eolAt is the offset
	// of the line break it was read from, -1 when the text has none.
	eol   string
	eolAt int
}

// lineEnding returns the document's line ending, the one generated text is
// written with: that of its first line break, "\n" when it has none.
func (d *document) lineEnding() string {
	if d.eol == "" {
		d.eol = lineEndingOf(d.text)
		d.eolAt = strings.IndexAny(d.text, "\r\n")
	}
	return d.eol
}

// region is the text one generation has written and the point where it
// writes next. Both ends move with every change the user makes around them,
// so text always lands where the generation left off.
type region struct {
	start, end int // byte offsets in document.text; end is the insertion point

	// pending is generated text not yet sent to the editor, with "\n"
	// line breaks (see lineBreaks).
	pending string
	// unechoed are edits sent (or applied) whose didChange has not come
	// back yet, oldest first. The next edit is placed after them.
	unechoed []*sentEdit
	// versioned edits are rejected by the editor when computed on an old
	// version, so a change that arrives before an edit's echo proves the
	// edit was not applied.
	versioned bool
	// edited is set when the user changes text inside the region.
	edited bool
	// gone is set when a change deleted all of the region's text.
	gone bool
	// removing is set while Discard removes the region's text, so that
	// the editor's report of the removal is recognised wherever its diff
	// places it (see removedAt).
	removing bool
	// failure, once set, ends the generation: the editor's changes cannot
	// be reconciled with the edits it confirmed, and going on could write
	// text twice.
	failure error
	// budget is the most bytes the region can hold: every byte generated,
	// with room for each line break to be spelled "\r\n".
	budget int
	// changed wakes the region's writer: new text, a change, or a reply.
	changed chan struct{}

	// endPos caches end as a position in enc, so that writing at the end of
	// a large document does not rescan it for every edit; endValid is
	// cleared by any change it cannot follow cheaply.
	enc      encoding
	endPos   protocol.Position
	endValid bool
}

// sentEdit is one workspace/applyEdit on its way to the document.
type sentEdit struct {
	text  string // as sent, line breaks spelled as the document spells them
	canon string // as generated, with "\n" line breaks: re-sent if rejected
	// applied is set when the editor answers that it applied the edit.
	applied bool
	// overtaken is set when the document changed before the edit's echo
	// arrived: a versioned edit must then have been rejected.
	overtaken bool
}

// reportedAs reports whether got is how the editor reports e: its text,
// or the same lines with the editor's own line breaks (an editor rewrites
// an applied edit's line breaks as its document's).
func (e *sentEdit) reportedAs(got string) bool {
	return got == e.text || canonicalBreaks(got) == e.canon
}

// errUnconfirmed ends a generation whose edit the editor reported applied
// but whose change never arrived.
var errUnconfirmed = errors.New("generation stopped: the editor reported an edit as applied, but the document changed without it; stopped rather than risk writing text twice")

func newRegion(at int, versioned bool, enc encoding) *region {
	return &region{start: at, end: at, versioned: versioned, changed: make(chan struct{}, 1), enc: enc}
}

// endPosition returns end as a position in text (the document's current
// text), from the cache when it is valid.
func (r *region) endPosition(text string) protocol.Position {
	if !r.endValid {
		r.endPos = r.enc.position(text, r.end)
		r.endValid = true
	}
	return r.endPos
}

// waitChange waits up to d for a change to r's document (or a wake), or
// until done is closed; a nil done never is.
func (r *region) waitChange(d time.Duration, done <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.changed:
	case <-t.C:
	case <-done:
	}
}

func (r *region) wake() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func newStore() *store { return &store{docs: map[string]*document{}} }

func (s *store) open(uri, languageID, text string, version int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.docs[uri]; ok {
		// Reopened without a close: treat as a full change so regions
		// follow.
		s.change(d, nil, text, encUTF8)
		d.version = version
		return
	}
	s.docs[uri] = &document{languageID: languageID, text: text, version: version, regions: map[*region]struct{}{}}
}

// languageOf returns the languageId uri was opened with.
func (s *store) languageOf(uri string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.docs[uri]; ok {
		return d.languageID
	}
	return ""
}

// untrack stops moving r with the changes to uri.
func (s *store) untrack(uri string, r *region) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.docs[uri]; ok {
		delete(d.regions, r)
	}
}

func (s *store) close(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.docs, uri)
}

// contentChange is one entry of didChange's contentChanges: a range
// replacement, or the full text when Range is nil.
type contentChange struct {
	Range *protocol.Range `json:"range,omitempty"`
	Text  string          `json:"text"`
}

// applyChanges applies a didChange in order. It reports false for an unknown
// document.
func (s *store) applyChanges(uri string, version int32, changes []contentChange, enc encoding) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[uri]
	if !ok {
		return false
	}
	for _, c := range changes {
		s.change(d, c.Range, c.Text, enc)
	}
	d.version = version
	return true
}

// change applies one change to d and moves its regions.
func (s *store) change(d *document, rng *protocol.Range, text string, enc encoding) {
	var a, b int
	if rng == nil {
		// Full text: reduce to the single replacement that differs, so
		// regions survive clients that sync whole documents.
		a, b, text = diff(d.text, text)
	} else {
		a, b = enc.offset(d.text, rng.Start), enc.offset(d.text, rng.End)
		if b < a {
			a, b = b, a
		}
	}
	for r := range d.regions {
		r.observe(d.text, a, b, text)
		r.wake()
	}
	if d.eol != "" && (a <= d.eolAt+1 || d.eolAt < 0 && strings.ContainsAny(text, "\r\n")) {
		d.eol = "" // the first line break may have changed
	}
	d.text = d.text[:a] + text + d.text[b:]
}

// observe moves r for the change replacing old[a:b] with text: its own echo
// advances the insertion point; a change before the region shifts it; a
// change inside it means the user edited generated text (which stops a
// running generation; a pending one's ends follow it, see follow).
func (r *region) observe(old string, a, b int, text string) {
	if r.removing && r.start < r.end && removedAt(old, a, b, text, r.start, r.end) {
		r.end, r.gone = r.start, true
		return
	}
	if len(r.unechoed) > 0 {
		// The echo is recognised by where it lands, not by its bytes: the
		// editor may have rewritten its line breaks.
		if got, ok := insertedAt(old, a, b, text, r.end); ok && r.unechoed[0].reportedAs(got) {
			r.echoed(old, got)
			return
		}
	}
	if a <= r.end {
		r.endValid = false // the change moves the end, in lines or units
	}
	delta := len(text) - (b - a)
	switch {
	case b <= r.start && !(a == r.start && a == b && r.start == r.end):
		// Before the region (an insertion exactly at an empty region's
		// point falls through to the case below).
		r.start += delta
		r.end += delta
	case a > r.end || (a == r.end && b == r.end && a > r.start):
		// After the region; an insertion at the end of a non-empty region
		// is the user typing right after the generated text: it stays after.
	case a == b && a == r.end:
		// An insertion at the (empty) region's point: the user typed where
		// text is about to go; generation continues after their text.
		r.start += delta
		r.end += delta
	default:
		r.edited = true
		r.follow(old, a, b, text)
	}
	if r.versioned {
		// The editor's document moved on before it applied our edits, so
		// it must reject them; an edit it already confirmed cannot be
		// reconciled.
		for _, e := range r.unechoed {
			if e.applied && r.failure == nil {
				r.failure = errUnconfirmed
			}
			e.overtaken = true
		}
	}
}

// follow moves the ends of a region nothing is written into any more for
// the change replacing old[a:b] with text. Text typed strictly inside the
// region becomes part of it; text typed at either edge, or over an edge,
// stays outside: Discard removes what lies between the ends, and never
// what the user typed next to the generated text.
func (r *region) follow(old string, a, b int, text string) {
	n := len(text)
	delta := n - (b - a)
	switch {
	case b <= r.start:
		r.start += delta
		r.end += delta
		return
	case a >= r.end:
		return
	}
	wasEmpty := r.start == r.end
	start, end := r.start, r.end+delta
	if a <= r.start {
		start = a + n
	}
	if b >= r.end {
		end = a
	}
	if start > end {
		start, end = a, a
	}
	r.start, r.end = start, end
	if r.start == r.end && !wasEmpty {
		r.gone = true
	}
}

// echoed records the echo of the oldest unechoed edit: got, inserted at the
// insertion point of old.
func (r *region) echoed(old, got string) {
	// A CR just before the insertion point and an LF starting got (or a
	// CR ending got and an LF after it) join into one line break, which
	// advance cannot see; genls never splits a CRLF, but a document may
	// hold a lone CR.
	joinsCRLF := r.end > 0 && old[r.end-1] == '\r' && strings.HasPrefix(got, "\n") ||
		r.end < len(old) && old[r.end] == '\n' && strings.HasSuffix(got, "\r")
	if r.endValid && !joinsCRLF {
		r.endPos = r.enc.advance(r.endPos, got)
	} else {
		r.endValid = false
	}
	r.end += len(got)
	r.unechoed = r.unechoed[1:]
	if n := r.end - r.start; n > r.budget && r.failure == nil {
		r.failure = fmt.Errorf("generation stopped: the generated text in the document (%d bytes) is longer than the text generated (at most %d bytes)", n, r.budget)
	}
}

// removedAt reports whether replacing old[a:b] with text leaves the
// document that removing old[start:end] would: an editor's diff may report
// the removal anywhere in a run of equal characters, or over a wider range.
func removedAt(old string, a, b int, text string, start, end int) bool {
	if len(text)-(b-a) != start-end {
		return false
	}
	lo, hi := min(a, start), max(b, end)
	if hi-lo > end-start+len(text)+maxEchoShift {
		return false
	}
	return old[lo:a]+text+old[b:hi] == old[lo:start]+old[end:hi]
}

// maxEchoShift bounds how far from the insertion point an editor's diff may
// place the report of an edit (within a run of equal characters).
const maxEchoShift = 256

// insertedAt reports whether replacing old[a:b] with text leaves the
// document that inserting some text at offset at would, and returns that
// text. Editors compute the changes they report by diffing, which may place
// an insertion elsewhere within a run of equal characters or widen its
// range; the result is what counts.
func insertedAt(old string, a, b int, text string, at int) (string, bool) {
	n := len(text) - (b - a)
	if n <= 0 || at < 0 || at > len(old) {
		return "", false
	}
	lo, hi := min(a, at), max(b, at)
	if hi-lo > len(text)+maxEchoShift {
		return "", false
	}
	w := old[lo:a] + text + old[b:hi]
	k := at - lo
	if w[:k] != old[lo:at] || w[k+n:] != old[at:hi] {
		return "", false
	}
	return w[k : k+n], true
}

// diff returns the single replacement old[a:b] -> text that turns old into
// new, trimming their common prefix and suffix.
func diff(old, new string) (a, b int, text string) {
	p := 0
	for p < len(old) && p < len(new) && old[p] == new[p] {
		p++
	}
	s := 0
	for s < len(old)-p && s < len(new)-p && old[len(old)-1-s] == new[len(new)-1-s] {
		s++
	}
	return p, len(old) - s, new[p : len(new)-s]
}
