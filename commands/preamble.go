package commands

import "strings"

// preambleStripper drops one line of chatter before a code fence at the
// start of a reply ("Here is the rewritten code:"), which chat models add
// however they are asked. The first line is held until the line after it
// shows whether a fence follows; anything else passes through unchanged.
type preambleStripper struct {
	held strings.Builder
	done bool
}

// Push returns the text of s that can be released now.
func (p *preambleStripper) Push(s string) string {
	if p.done {
		return s
	}
	p.held.WriteString(s)
	text := p.held.String()
	nl := strings.IndexByte(text, '\n')
	if nl < 0 {
		return ""
	}
	first := strings.TrimSpace(text[:nl])
	if strings.HasPrefix(first, "```") || !strings.HasSuffix(first, ":") {
		return p.release()
	}
	rest := strings.TrimLeft(text[nl+1:], " \t\r\n")
	if len(rest) < 3 && strings.HasPrefix("```", rest) {
		return "" // the next line may still open a fence
	}
	if strings.HasPrefix(rest, "```") {
		p.done = true
		p.held.Reset()
		return rest
	}
	return p.release()
}

// Finish returns what is still held when the reply ends.
func (p *preambleStripper) Finish() string {
	if p.done {
		return ""
	}
	return p.release()
}

func (p *preambleStripper) release() string {
	p.done = true
	text := p.held.String()
	p.held.Reset()
	return text
}
