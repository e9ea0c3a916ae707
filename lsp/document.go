package lsp

import (
	"strings"
	"sync"
)

// store holds the open documents as the client last described them, and the
// regions generations are writing into. One mutex guards both, because every
// change must move every region of its document atomically.
type store struct {
	mu   sync.Mutex
	docs map[string]*document
}

type document struct {
	uri        string
	languageID string
	text       string
	version    int32
	regions    map[*region]struct{}
}

// region is the text one generation has written and the point where it
// writes next. Both ends move with every change the user makes around them,
// so text always lands where the generation left off.
type region struct {
	start, end int // byte offsets in document.text; end is the insertion point

	// pending is generated text not yet sent to the editor.
	pending string
	// unechoed are edits sent (or applied) whose didChange has not come
	// back yet, oldest first. The next edit is placed after them.
	unechoed []*sentEdit
	// versioned edits are rejected by the editor when computed on an old
	// version; only then is a foreign change proof that unechoed edits
	// were dropped.
	versioned bool
	// edited is set when the user changes text inside the region.
	edited bool
	// changed wakes the region's writer: new text, a change, or a reply.
	changed chan struct{}

	// endPos caches end as a position in enc, so that writing at the end of
	// a large document does not rescan it for every edit; endValid is
	// cleared by any change it cannot follow cheaply.
	enc      Encoding
	endPos   Position
	endValid bool
}

type sentEdit struct {
	text    string
	applied bool
}

func newRegion(at int, versioned bool, enc Encoding) *region {
	return &region{start: at, end: at, versioned: versioned, changed: make(chan struct{}, 1), enc: enc}
}

// endPosition returns end as a position in text (the document's current
// text), from the cache when it is valid.
func (r *region) endPosition(text string) Position {
	if !r.endValid {
		r.endPos = r.enc.Position(text, r.end)
		r.endValid = true
	}
	return r.endPos
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
		s.change(d, nil, text, UTF8)
		d.version = version
		return
	}
	s.docs[uri] = &document{uri: uri, languageID: languageID, text: text, version: version, regions: map[*region]struct{}{}}
}

func (s *store) close(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.docs, uri)
}

// contentChange is one entry of didChange's contentChanges: a range
// replacement, or the full text when Range is nil.
type contentChange struct {
	Range *Range `json:"range,omitempty"`
	Text  string `json:"text"`
}

// applyChanges applies a didChange in order. It reports false for an unknown
// document.
func (s *store) applyChanges(uri string, version int32, changes []contentChange, enc Encoding) bool {
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
func (s *store) change(d *document, rng *Range, text string, enc Encoding) {
	var a, b int
	if rng == nil {
		// Full text: reduce to the single replacement that differs, so
		// regions survive clients that sync whole documents.
		a, b, text = diff(d.text, text)
	} else {
		a, b = enc.Offset(d.text, rng.Start), enc.Offset(d.text, rng.End)
		if b < a {
			a, b = b, a
		}
	}
	for r := range d.regions {
		r.observe(d.text, a, b, text)
		r.wake()
	}
	d.text = d.text[:a] + text + d.text[b:]
}

// observe moves r for the change replacing old[a:b] with text: its own echo
// advances the insertion point; a change before the region shifts it; a
// change inside it means the user edited generated text.
func (r *region) observe(old string, a, b int, text string) {
	if len(r.unechoed) > 0 && isEcho(old, a, b, text, r.end, r.unechoed[0].text) {
		echoed := r.unechoed[0].text
		crlfSplit := r.end > 0 && old[r.end-1] == '\r' && strings.HasPrefix(echoed, "\n")
		if r.endValid && !crlfSplit && !strings.ContainsRune(echoed, '\r') && (r.end == len(old) || old[r.end] != '\n') {
			r.endPos = r.enc.advance(r.endPos, echoed)
		} else {
			r.endValid = false // a CR next to an LF is one line break, not two
		}
		r.end += len(echoed)
		r.unechoed = r.unechoed[1:]
		return
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
		r.start = min(r.start, a)
		r.end = a + len(text)
	}
	if r.versioned && len(r.unechoed) > 0 {
		// The editor's document moved on before it applied our edits,
		// so it rejected (or silently dropped) them: send them again.
		var requeue string
		for _, e := range r.unechoed {
			requeue += e.text
		}
		r.pending = requeue + r.pending
		r.unechoed = nil
	}
}

// isEcho reports whether replacing old[a:b] with text has the same effect as
// inserting want at offset at: the client describing our own edit, possibly
// shifted within a run of equal characters by its diff algorithm.
func isEcho(old string, a, b int, text string, at int, want string) bool {
	if a != b || len(text) != len(want) {
		return false
	}
	lo, hi := min(a, at), max(a, at)
	if lo < 0 || hi > len(old) {
		return false
	}
	return old[lo:a]+text+old[a:hi] == old[lo:at]+want+old[at:hi]
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
