package stream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"

	sse "github.com/tmaxmax/go-sse"
)

// MaxEventSize bounds the memory one event may take. A larger event is a
// broken or hostile stream, not a token.
const MaxEventSize = 1 << 20

// ErrEventTooLarge reports an event over MaxEventSize.
var ErrEventTooLarge = fmt.Errorf("an event in the stream is larger than %d bytes", MaxEventSize)

// The decoders below yield each event's data, and "" (with a nil error)
// before each read of r: the events before it are all those that had
// arrived, and the next one may be a wait away. Stream.Next releases the
// text of the events between two of these together, so a client that reads
// slower than the server sends handles a burst of tokens at once (one
// write to a terminal instead of one per token), and one that keeps up gets
// each token as it comes.

// sseData yields the data of each server-sent event in r, per the HTML
// living standard's event-stream grammar (CRLF, CR or LF line ends; comment
// lines; multi-line data joined with "\n"; "data:" with or without a space).
//
// Parsing is go-sse's. One difference is deliberate: a final event that is not
// followed by a blank line is still dispatched at a clean EOF, because real
// servers (and recorded transcripts of them) end that way and dropping the
// final event would lose the generation's last token and its finish reason.
func sseData(r io.Reader) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		w := &waitReader{r: r, yield: yield}
		body := io.MultiReader(w, bytes.NewReader([]byte("\n\n")))
		for ev, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: MaxEventSize}) {
			if w.stopped {
				return
			}
			if err != nil {
				if errors.Is(err, bufio.ErrTooLong) {
					err = ErrEventTooLarge
				}
				yield("", err)
				return
			}
			if ev.Data == "" { // the spec does not dispatch events without data
				continue
			}
			if !yield(ev.Data, nil) {
				return
			}
		}
	}
}

// ndjsonLines yields each non-empty line of a newline-delimited JSON stream
// (Ollama's format), with the same bound on line length.
func ndjsonLines(r io.Reader) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		w := &waitReader{r: r, yield: yield}
		sc := bufio.NewScanner(w)
		sc.Buffer(make([]byte, 0, 4096), MaxEventSize)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			if !yield(string(line), nil) {
				return
			}
		}
		if err := sc.Err(); err != nil && !w.stopped {
			if errors.Is(err, bufio.ErrTooLong) {
				err = ErrEventTooLarge
			}
			yield("", err)
		}
	}
}

// waitReader yields "" before each read of r. When the consumer stops there,
// the read fails with errStopped, which ends the decoder.
type waitReader struct {
	r       io.Reader
	yield   func(string, error) bool
	stopped bool
}

var errStopped = errors.New("stopped")

func (w *waitReader) Read(p []byte) (int, error) {
	if w.stopped || !w.yield("", nil) {
		w.stopped = true
		return 0, errStopped
	}
	return w.r.Read(p)
}
