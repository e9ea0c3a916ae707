package stream

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// parseTGIToken is the fast path for the event a TGI stream sends for every
// token but the last:
//
//	{"index":3,"token":{"id":5,"text":" is","logprob":-0.1,"special":false},"generated_text":null,"details":null}
//
// encoding/json spends a dozen allocations and most of the client's time per
// token on it (see docs/benchmarks.md); this scanner reads the few fields
// genls needs, returns the token text as a substring of data when it has no
// escapes, and allocates nothing. It gives up (ok false) on anything else —
// a final event, an error, unexpected types or malformed JSON — and the caller
// then decodes with encoding/json, so its only job is to agree with it.
// FuzzTGIFastPath checks that it does.
func parseTGIToken(data string) (tok Token, ok bool) {
	s := scanner{s: data}
	s.ws()
	if !s.eat('{') {
		return Token{}, false
	}
	sawToken := false
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			break
		}
		if !first && (!s.eat(',') || !s.wsThen()) {
			return Token{}, false
		}
		key, ok := s.str()
		if !ok || !s.colon() {
			return Token{}, false
		}
		switch key {
		case "token":
			if sawToken {
				return Token{}, false // duplicate: let encoding/json decide
			}
			if tok, ok = s.token(); !ok {
				return Token{}, false
			}
			sawToken = true
		case "generated_text", "details", "error", "error_type":
			// Only null is the common case; anything else is rare and
			// goes the slow way.
			if !s.lit("null") {
				return Token{}, false
			}
		default:
			if foldsTo(key, "token", "generated_text", "details", "error", "error_type") || !s.skip(0) {
				return Token{}, false
			}
		}
	}
	s.ws()
	if !sawToken || s.i != len(s.s) {
		return Token{}, false
	}
	return tok, true
}

// foldsTo reports whether key matches one of names case-insensitively:
// encoding/json would decode it into that field, so the fast path must not
// skip it.
func foldsTo(key string, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(key, n) {
			return true
		}
	}
	return false
}

// number reads a JSON number, checking its grammar.
func (s *scanner) number() (string, bool) {
	start := s.i
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.s) && s.s[s.i] >= '1' && s.s[s.i] <= '9':
		s.digits()
	default:
		return "", false
	}
	if s.eat('.') && !s.digits() {
		return "", false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return "", false
		}
	}
	return s.s[start:s.i], true
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.s) && s.s[s.i] >= '0' && s.s[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

type scanner struct {
	s string
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.s) {
		switch s.s[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// wsThen skips white space and reports whether input remains.
func (s *scanner) wsThen() bool { s.ws(); return s.i < len(s.s) }

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.s) && s.s[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) colon() bool { s.ws(); ok := s.eat(':'); s.ws(); return ok }

func (s *scanner) lit(l string) bool {
	if strings.HasPrefix(s.s[s.i:], l) {
		s.i += len(l)
		return true
	}
	return false
}

// token reads the token object; text and special must be present with the
// right types, other fields (id, logprob) are skipped.
func (s *scanner) token() (Token, bool) {
	var tok Token
	if !s.eat('{') {
		return tok, false
	}
	var sawText, sawSpecial bool
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			break
		}
		if !first && (!s.eat(',') || !s.wsThen()) {
			return tok, false
		}
		key, ok := s.str()
		if !ok || !s.colon() {
			return tok, false
		}
		switch key {
		case "text":
			if sawText {
				return tok, false
			}
			if tok.Text, ok = s.str(); !ok {
				return tok, false
			}
			sawText = true
		case "special":
			if sawSpecial {
				return tok, false
			}
			switch {
			case s.lit("true"):
				tok.Special = true
			case s.lit("false"):
			default:
				return tok, false
			}
			sawSpecial = true
		default:
			if foldsTo(key, "text", "special") || !s.skip(0) {
				return tok, false
			}
		}
	}
	return tok, sawText && sawSpecial
}

// str reads a JSON string. Without escapes it is a substring of the input;
// with them it is decoded like encoding/json does (invalid UTF-8 and lone
// surrogates become U+FFFD).
func (s *scanner) str() (string, bool) {
	if !s.eat('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.s) {
		c := s.s[s.i]
		switch {
		case c == '"':
			out := s.s[start:s.i]
			s.i++
			if !utf8.ValidString(out) {
				return "", false
			}
			return out, true
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return "", false
		}
		s.i++
	}
	return "", false
}

func (s *scanner) escaped(start int) (string, bool) {
	b := []byte(s.s[start:s.i])
	for s.i < len(s.s) {
		c := s.s[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(b) {
				return "", false
			}
			return string(b), true
		case c < 0x20:
			return "", false
		case c != '\\':
			b = append(b, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.s) {
			return "", false
		}
		e := s.s[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				save := s.i
				if strings.HasPrefix(s.s[s.i:], `\u`) {
					s.i += 2
					if lo, ok := s.hex4(); ok && utf16.DecodeRune(r, lo) != utf8.RuneError {
						r2 = utf16.DecodeRune(r, lo)
					} else {
						s.i = save
					}
				}
				r = r2
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", false
		}
	}
	return "", false
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s.s[s.i:s.i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	s.i += 4
	return rune(v), true
}

// skip passes over one JSON value of a simple kind: a string, number,
// literal, or a nested object or array (to a bounded depth).
func (s *scanner) skip(depth int) bool {
	if depth > 8 || s.i >= len(s.s) {
		return false
	}
	switch c := s.s[s.i]; {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.i++
		for first := true; ; first = false {
			s.ws()
			if s.eat(closer) {
				return true
			}
			if !first && (!s.eat(',') || !s.wsThen()) {
				return false
			}
			if c == '{' {
				if _, ok := s.str(); !ok || !s.colon() {
					return false
				}
			}
			if !s.skip(depth + 1) {
				return false
			}
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	default:
		_, ok := s.number()
		return ok
	}
}
