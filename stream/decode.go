package stream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
)

// MaxEventSize bounds the memory one event may take. A larger event is a
// broken or hostile stream, not a token.
const MaxEventSize = 1 << 20

// ErrEventTooLarge reports an event over MaxEventSize.
var ErrEventTooLarge = fmt.Errorf("an event in the stream is larger than %d bytes", MaxEventSize)

// The decoders below yield each event's data, and an empty slice (with a
// nil error) before each read of r: the events before it are all those that
// had arrived, and the next one may be a wait away. Stream.Next releases the
// text of the events between two of these together, so a client that reads
// slower than the server sends handles a burst of tokens at once (one
// write to a terminal instead of one per token), and one that keeps up gets
// each token as it comes.
//
// The data is the decoder's own buffer, valid until the loop continues, as
// with bufio.Scanner's Bytes: a token event costs no allocation, and what a
// consumer keeps, it copies. Each decoder asks r for up to readSize bytes at
// a time, so that a client behind a fast server catches up in few reads.

const readSize = 64 << 10

// readBuffers holds the decoders' first buffers (readSize bytes): a
// stream is often short (an inline completion at every pause in typing),
// and allocating 64 KiB for each was most of what it allocated.
var readBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, readSize)
	return &b
}}

// scanner returns a scanner of r with a pooled buffer, and the function
// that gives the buffer back, once nothing the scanner returned is used.
func scanner(r io.Reader) (*bufio.Scanner, func()) {
	buf := readBuffers.Get().(*[]byte)
	sc := bufio.NewScanner(r)
	sc.Buffer((*buf)[:0], MaxEventSize)
	return sc, func() { readBuffers.Put(buf) }
}

// sseData yields the data of each server-sent event in r, read as the HTML
// living standard's event-stream interpretation says: lines end in CRLF, LF
// or a lone CR; a byte order mark at the start is skipped; a line is a
// field name, a colon and a value (less one leading space), or a name
// alone; "data" lines append their value to the event's data, joined with
// "\n"; a blank line dispatches the event; comments (lines that start with
// a colon) and other fields (event, id, retry) mean nothing to a
// generation and are skipped, as are events with empty data.
//
// One difference is deliberate: at a clean EOF the last event is still
// dispatched without its blank line, because real servers (and recorded
// transcripts of them) end that way and dropping it would lose the
// generation's last token and its finish reason.
//
// It replaces go-sse, whose reader scans each event byte by byte twice and
// copies it twice; docs/benchmarks.md has what that cost.
func sseData(r io.Reader) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		w := &waitReader{r: r, yield: yield}
		var lines lineSplitter
		sc, release := scanner(w)
		defer release()
		sc.Split(lines.split)
		var data []byte // the event's data lines, each followed by "\n"
		dispatch := func() bool {
			if len(data) <= 1 { // no data, or empty data
				data = data[:0]
				return true
			}
			d := data[:len(data)-1]
			data = data[:0]
			return yield(d, nil)
		}
		for first := true; sc.Scan(); first = false {
			line := sc.Bytes()
			if first {
				line = bytes.TrimPrefix(line, []byte("\uFEFF"))
			}
			if len(line) == 0 {
				if !dispatch() {
					return
				}
				continue
			}
			name, value, _ := bytes.Cut(line, []byte(":"))
			if string(name) != "data" {
				continue
			}
			value = bytes.TrimPrefix(value, []byte(" "))
			if len(data)+len(value) >= MaxEventSize {
				yield(nil, ErrEventTooLarge)
				return
			}
			data = append(append(data, value...), '\n')
		}
		if w.stopped { // the scanner's last line, if any, was half a line: no event
			return
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = ErrEventTooLarge
			}
			yield(nil, err)
			return
		}
		dispatch()
	}
}

// lineSplitter is a bufio.SplitFunc for lines that end in CRLF, LF or a
// lone CR. A CR ends its line at once, without waiting for the next byte
// to tell CRLF from CR; an LF that follows it is skipped then.
type lineSplitter struct{ afterCR bool }

func (l *lineSplitter) split(data []byte, atEOF bool) (advance int, line []byte, err error) {
	skip := 0
	if l.afterCR && len(data) > 0 {
		l.afterCR = false
		if data[0] == '\n' {
			skip = 1
		}
	}
	rest := data[skip:]
	lf := bytes.IndexByte(rest, '\n')
	if lf < 0 {
		lf = len(rest)
	}
	if cr := bytes.IndexByte(rest[:lf], '\r'); cr >= 0 {
		l.afterCR = true
		return skip + cr + 1, rest[:cr], nil
	}
	if lf < len(rest) {
		return skip + lf + 1, rest[:lf], nil
	}
	if atEOF && len(rest) > 0 {
		return len(data), rest, nil
	}
	return skip, nil, nil
}

// ndjsonLines yields each non-empty line of a newline-delimited JSON stream
// (Ollama's format), with the same bound on line length.
func ndjsonLines(r io.Reader) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		w := &waitReader{r: r, yield: yield}
		sc, release := scanner(w)
		defer release()
		for sc.Scan() {
			if w.stopped {
				return
			}
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			if !yield(line, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil && !w.stopped {
			if errors.Is(err, bufio.ErrTooLong) {
				err = ErrEventTooLarge
			}
			yield(nil, err)
		}
	}
}

// waitReader yields an empty slice before each read of r. When the
// consumer stops there, the read fails with errStopped, which ends the
// decoder.
type waitReader struct {
	r       io.Reader
	yield   func([]byte, error) bool
	stopped bool
}

var errStopped = errors.New("stopped")

func (w *waitReader) Read(p []byte) (int, error) {
	if w.stopped || !w.yield(nil, nil) {
		w.stopped = true
		return 0, errStopped
	}
	return w.r.Read(p)
}
