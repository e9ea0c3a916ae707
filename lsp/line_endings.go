package lsp

import "strings"

// Editors rewrite the line breaks of an applied edit: VS Code converts them
// to the document's end-of-line sequence, Neovim splits the text into lines
// (and reports a fileformat=dos buffer's changes with "\r\n"). genls
// therefore sends line breaks exactly as the document already spells them,
// so that what the editor applies is byte for byte what genls sent.
//
// Generated text goes through two steps: lineBreaks turns every line break
// the model writes ("\n", "\r\n", a lone "\r", and U+0085, U+2028, U+2029)
// into "\n" as the text arrives, and toLineEnding spells each "\n" as the
// document's line ending when an edit is sent.

// lineBreaks canonicalises the line breaks of a stream of text pieces. A
// "\r" that ends a piece is a line break at once; a "\n" that starts the
// next piece is then its second half, so a CRLF split between two tokens is
// one line break, and nothing waits for a next token that may never come.
type lineBreaks struct {
	afterCR bool // the last piece ended with "\r"
}

// Push returns s with its line breaks as "\n" and NUL characters removed.
func (lb *lineBreaks) Push(s string) string {
	if s == "" {
		return ""
	}
	if lb.afterCR {
		lb.afterCR = false
		s = strings.TrimPrefix(s, "\n") // the second half of a split CRLF
	}
	if !needsCanon(s) {
		return s // the common case: no allocation
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\r':
			b.WriteByte('\n')
			switch {
			case i+1 == len(s):
				lb.afterCR = true
			case s[i+1] == '\n':
				i++
			}
		case c == 0:
			// NUL: dropped. Emacs's JSON parser rejects a message that
			// holds one, and Neovim miscounts the columns after it.
		case unusualBreakLen(s[i:]) > 0:
			b.WriteByte('\n')
			i += unusualBreakLen(s[i:]) - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// needsCanon reports whether s holds a byte Push must rewrite.
func needsCanon(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r', 0:
			return true
		case 0xC2, 0xE2:
			if unusualBreakLen(s[i:]) > 0 {
				return true
			}
		}
	}
	return false
}

// unusualBreakLen returns the length of the line break that starts s and
// that LSP does not count as one: NEL (U+0085), LINE SEPARATOR (U+2028) or
// PARAGRAPH SEPARATOR (U+2029); 0 if s starts with none. LSP positions and
// Neovim treat them as ordinary characters, VS Code prompts the user to
// remove them: genls writes a line break instead, which is what the model
// meant.
func unusualBreakLen(s string) int {
	switch {
	case strings.HasPrefix(s, "\u0085"):
		return 2
	case strings.HasPrefix(s, "\u2028"), strings.HasPrefix(s, "\u2029"):
		return 3
	}
	return 0
}

// lineEndingOf returns the line ending of text's first line break: "\r\n",
// "\r" or "\n"; "\n" when text has none.
func lineEndingOf(text string) string {
	i := strings.IndexAny(text, "\r\n")
	switch {
	case i < 0 || text[i] == '\n':
		return "\n"
	case i+1 < len(text) && text[i+1] == '\n':
		return "\r\n"
	}
	return "\r"
}

// toLineEnding spells the "\n" line breaks of canonical text as eol.
func toLineEnding(text, eol string) string {
	if eol == "\n" || !strings.Contains(text, "\n") {
		return text
	}
	return strings.ReplaceAll(text, "\n", eol)
}

// canonicalBreaks returns s with "\r\n" and "\r" line breaks as "\n".
func canonicalBreaks(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}
