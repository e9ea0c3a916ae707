package stream

import "strings"

// FenceStripper removes a single markdown code fence wrapping a chat model's
// whole reply, while streaming: the opening fence line is held until it is
// complete and dropped, text inside is released at once, and a closing fence
// is dropped only if nothing but white space follows it. A reply that does
// not start with a fence passes through unchanged.
type FenceStripper struct {
	state   int // 0: deciding on the first line, 1: inside a fence, 2: passthrough
	pending strings.Builder
	tail    string // a line that may be the closing fence, held back
}

// Push returns the text of s that can be released now.
func (f *FenceStripper) Push(s string) string {
	switch f.state {
	case 2:
		return s
	case 0:
		f.pending.WriteString(s)
		head := f.pending.String()
		trimmed := strings.TrimLeft(head, " \t\r\n")
		if len(trimmed) < 3 && strings.HasPrefix("```", trimmed) {
			return "" // could still become a fence
		}
		if !strings.HasPrefix(trimmed, "```") {
			f.state = 2
			f.pending.Reset()
			return head
		}
		nl := strings.IndexByte(trimmed, '\n')
		if nl < 0 {
			return "" // the fence line (with its language) is not complete yet
		}
		f.state = 1
		f.pending.Reset()
		return f.inside(trimmed[nl+1:])
	}
	return f.inside(s)
}

// inside releases text within the fence, holding back the last line while it
// could be the closing fence.
func (f *FenceStripper) inside(s string) string {
	text := f.tail + s
	// The last line with content, and any blank lines after it.
	trimmed := strings.TrimRight(text, " \t\r\n")
	start := strings.LastIndexByte(trimmed, '\n') + 1
	if f.closing(trimmed[start:]) {
		f.tail = text[start:]
		return text[:start]
	}
	// A held "```" followed by more text was not the closing fence.
	f.tail = ""
	return text
}

// closing reports whether a (partial) last line may be a closing fence.
func (f *FenceStripper) closing(line string) bool {
	t := strings.TrimLeft(line, " \t")
	if len(t) < 3 {
		return strings.HasPrefix("```", t)
	}
	return strings.HasPrefix(t, "```") && strings.TrimSpace(strings.TrimLeft(t, "`")) == ""
}

// Finish returns what is still held at the end of the reply.
func (f *FenceStripper) Finish() string {
	switch f.state {
	case 0:
		s := f.pending.String()
		f.pending.Reset()
		return s
	case 1:
		t := f.tail
		f.tail = ""
		if strings.HasPrefix(strings.TrimSpace(t), "```") {
			return "" // the closing fence
		}
		return t
	}
	return ""
}
