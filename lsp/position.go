package lsp

import (
	"strings"
	"unicode/utf8"

	"go.lsp.dev/protocol"
)

// encoding is the negotiated position encoding: how Character counts.
type encoding string

const (
	encUTF8  encoding = "utf-8"
	encUTF16 encoding = "utf-16" // the LSP default
	encUTF32 encoding = "utf-32"
)

// units returns how many code units of enc s takes.
func (enc encoding) units(s string) int {
	switch enc {
	case encUTF8:
		return len(s)
	case encUTF32:
		return utf8.RuneCountInString(s)
	}
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// lineStart returns the byte offset where line begins, or -1 past the last
// line. LSP lines end at \n, \r\n or \r.
func lineStart(text string, line uint32) int {
	off := 0
	if strings.IndexByte(text, '\r') < 0 {
		// Only LFs: strings.IndexByte is vectorised, IndexAny is not.
		for l := uint32(0); l < line; l++ {
			i := strings.IndexByte(text[off:], '\n')
			if i < 0 {
				return -1
			}
			off += i + 1
		}
		return off
	}
	for l := uint32(0); l < line; l++ {
		i := strings.IndexAny(text[off:], "\r\n")
		if i < 0 {
			return -1
		}
		off += i
		if text[off] == '\r' && off+1 < len(text) && text[off+1] == '\n' {
			off += 2
		} else {
			off++
		}
	}
	return off
}

// lineEnd returns the offset of the end of the line starting at off (before
// its line terminator).
func lineEnd(text string, off int) int {
	if i := strings.IndexAny(text[off:], "\r\n"); i >= 0 {
		return off + i
	}
	return len(text)
}

// offset converts p to a byte offset in text. As the specification says, a
// character past the end of its line means the line's end, and a line past
// the end of the text means the text's end; a position inside a UTF-16
// surrogate pair or a multi-byte character rounds down to its start.
func (enc encoding) offset(text string, p protocol.Position) int {
	start := lineStart(text, p.Line)
	if start < 0 {
		return len(text)
	}
	end := lineEnd(text, start)
	want := int(p.Character)
	if enc == encUTF8 {
		off := min(start+want, end)
		for off > start && off < end && !utf8.RuneStart(text[off]) {
			off--
		}
		return off
	}
	units := 0
	for i, r := range text[start:end] {
		w := 1
		if enc == encUTF16 && r >= 0x10000 {
			w = 2
		}
		if units+w > want {
			return start + i
		}
		units += w
	}
	return end
}

// position converts a byte offset in text to a position. It runs for
// every mark and edit, on documents of any size: when every CR before off
// is half of a CRLF (LF and CRLF files), lines are counted with
// strings.Count, which is many times faster than the byte loop that lone
// CRs need.
func (enc encoding) position(text string, off int) protocol.Position {
	off = max(0, min(off, len(text)))
	before := text[:off]
	lone := strings.Count(before, "\r")
	if lone > 0 {
		lone -= strings.Count(before, "\r\n")
	}
	if lone == 0 || lone == 1 && before[len(before)-1] == '\r' && off < len(text) && text[off] == '\n' {
		lastStart := strings.LastIndexByte(before, '\n') + 1
		return protocol.Position{Line: uint32(strings.Count(before, "\n")), Character: uint32(enc.units(before[lastStart:]))}
	}
	line := uint32(0)
	lastStart := 0
	for i := 0; i < len(before); i++ {
		switch before[i] {
		case '\n':
			line++
			lastStart = i + 1
		case '\r':
			if i+1 < len(text) && text[i+1] == '\n' {
				continue // counted at the \n
			}
			line++
			lastStart = i + 1
		}
	}
	return protocol.Position{Line: line, Character: uint32(enc.units(before[lastStart:]))}
}

// advance returns the position reached by inserting s at p: how the
// insertion point moves as generated text is written.
func (enc encoding) advance(p protocol.Position, s string) protocol.Position {
	i := strings.LastIndexAny(s, "\r\n")
	if i < 0 {
		p.Character += uint32(enc.units(s))
		return p
	}
	p.Line += uint32(countLineBreaks(s))
	p.Character = uint32(enc.units(s[i+1:]))
	return p
}

func countLineBreaks(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n':
			n++
		case '\r':
			if i+1 >= len(s) || s[i+1] != '\n' {
				n++
			}
		}
	}
	return n
}
