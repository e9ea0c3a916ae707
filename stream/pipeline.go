package stream

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Token is one token as the endpoint sent it.
type Token struct {
	Text    string
	Special bool
}

// FinishReason says why a generation ended.
type FinishReason string

const (
	FinishLength       FinishReason = "length"
	FinishEOS          FinishReason = "eos_token"
	FinishStopSequence FinishReason = "stop_sequence"
	FinishCancelled    FinishReason = "cancelled"
	FinishError        FinishReason = "error"
)

// Pipeline turns the tokens of one generation into the text that may be
// written to the user's file. It is where the product's promises about text
// are kept, independent of any wire protocol:
//
//   - special tokens (flagged by the server) never reach the output;
//   - no stop sequence reaches the output, even split across tokens, and the
//     output ends right before the first one; text that only begins like a
//     stop sequence is held back until it can no longer match;
//   - the output is valid UTF-8: an incomplete multi-byte sequence at the end
//     of a token is held until the next token completes it;
//   - after maxTokens tokens the generation is over, whatever the server does.
//
// A Pipeline is not safe for concurrent use.
type Pipeline struct {
	stops     []string
	stopBytes [][]byte // stops, for matching in pending bytes without allocating
	maxTokens int

	tokens  int
	pending []byte // held back: an incomplete rune and/or a possible stop prefix
	done    bool
	reason  FinishReason
}

// NewPipeline returns a pipeline enforcing stops (empty strings are ignored)
// and stopping after maxTokens tokens (0: no client-side limit).
func NewPipeline(stops []string, maxTokens int) *Pipeline {
	p := &Pipeline{maxTokens: maxTokens}
	add := func(s string) {
		p.stops = append(p.stops, s)
		p.stopBytes = append(p.stopBytes, []byte(s))
	}
	for _, s := range stops {
		if s == "" {
			continue
		}
		add(s)
		// Models write "\r\n" where a stop says "\n" (a chat stop such as
		// "\nUser:"); the CRLF spelling stops too, so no dangling "\r" is
		// released before it.
		if crlf := crlfSpelling(s); crlf != s {
			add(crlf)
		}
	}
	return p
}

// crlfSpelling returns s with every "\n" not already preceded by "\r"
// written as "\r\n".
func crlfSpelling(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
			b.WriteByte('\r')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Push feeds one token and returns the text that can be released now. Once
// done is true the generation is over (see Reason) and later tokens are
// ignored.
func (p *Pipeline) Push(tok Token) (text string, done bool) {
	if p.done {
		return "", true
	}
	p.tokens++
	if !tok.Special && tok.Text != "" {
		text = p.push(tok.Text)
	}
	if !p.done && p.maxTokens > 0 && p.tokens >= p.maxTokens {
		text += p.flush()
		p.finish(FinishLength)
	}
	return text, p.done
}

// Finish ends the generation with reason (unless a stop sequence or the
// token limit already ended it) and releases the text still held back: a
// partial stop sequence that never completed is text; an incomplete UTF-8
// sequence is not, and is dropped.
func (p *Pipeline) Finish(reason FinishReason) string {
	if p.done {
		return ""
	}
	text := p.flush()
	p.finish(reason)
	return text
}

// Done reports whether the generation is over.
func (p *Pipeline) Done() bool { return p.done }

// Reason is why the generation ended; empty while it runs.
func (p *Pipeline) Reason() FinishReason { return p.reason }

func (p *Pipeline) finish(reason FinishReason) {
	p.done = true
	p.reason = reason
	p.pending = p.pending[:0]
}

func (p *Pipeline) flush() string {
	buf := p.pending
	buf = buf[:completeRunes(buf)]
	text := string(validUTF8(buf))
	p.pending = p.pending[:0]
	return text
}

func (p *Pipeline) push(s string) string {
	// The common case, allocation-free: nothing held back, and a token that
	// is whole characters, holds no stop and ends with no stop's beginning.
	if len(p.pending) == 0 && utf8.ValidString(s) && p.firstStopString(s) < 0 && p.stopPrefixLenString(s) == 0 {
		return s
	}
	buf := append(p.pending, s...)
	ready := completeRunes(buf)

	if i := p.firstStop(buf[:ready]); i >= 0 {
		text := string(validUTF8(buf[:i]))
		p.pending = buf
		p.finish(FinishStopSequence)
		return text
	}
	hold := p.stopPrefixLen(buf[:ready])
	release := ready - hold
	text := string(validUTF8(buf[:release]))
	p.pending = append(buf[:0], buf[release:]...)
	return text
}

// firstStop returns the index of the earliest stop sequence in b, or -1.
func (p *Pipeline) firstStop(b []byte) int {
	first := -1
	for _, s := range p.stopBytes {
		if i := bytes.Index(b, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}

func (p *Pipeline) firstStopString(b string) int {
	first := -1
	for _, s := range p.stops {
		if i := strings.Index(b, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}

// stopPrefixLen returns the length of the longest suffix of b that is a
// proper prefix of some stop sequence: the text that might still become a
// stop and so must be held back.
func (p *Pipeline) stopPrefixLen(b []byte) int {
	longest := 0
	for _, s := range p.stopBytes {
		for k := min(len(s)-1, len(b)); k > longest; k-- {
			if bytes.HasSuffix(b, s[:k]) {
				longest = k
				break
			}
		}
	}
	return longest
}

func (p *Pipeline) stopPrefixLenString(b string) int {
	longest := 0
	for _, s := range p.stops {
		for k := min(len(s)-1, len(b)); k > longest; k-- {
			if strings.HasSuffix(b, s[:k]) {
				longest = k
				break
			}
		}
	}
	return longest
}

// completeRunes returns the length of the longest prefix of b that does not
// end in the middle of a multi-byte UTF-8 sequence. Bytes that can never
// start a valid sequence are not held; validUTF8 replaces them.
func completeRunes(b []byte) int {
	// Look back at most UTFMax-1 bytes for the start of the last rune.
	for i := len(b) - 1; i >= 0 && i >= len(b)-(utf8.UTFMax-1); i-- {
		c := b[i]
		if c < utf8.RuneSelf {
			return len(b) // ASCII: nothing incomplete after it
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			return len(b)
		}
	}
	return len(b)
}

// validUTF8 returns b unchanged when it is valid UTF-8, else a copy with each
// invalid byte sequence replaced by U+FFFD.
func validUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	return bytes.ToValidUTF8(b, []byte("\uFFFD"))
}
