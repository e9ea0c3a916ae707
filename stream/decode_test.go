package stream

import (
	"errors"
	"io"
	"iter"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// collect returns the data a decoder yields, without the empty data it
// yields before each read.
func collect(t *testing.T, seq iter.Seq2[[]byte, error]) ([]string, error) {
	t.Helper()
	var got []string
	for d, err := range seq {
		if err != nil {
			return got, err
		}
		if len(d) > 0 {
			got = append(got, string(d))
		}
	}
	return got, nil
}

// chunkReader returns one chunk a read, like a connection on which the
// server wrote and flushed each chunk in turn.
type chunkReader []string

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(*r) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*r)[0])
	if (*r)[0] = (*r)[0][n:]; (*r)[0] == "" {
		*r = (*r)[1:]
	}
	return n, nil
}

// The decoders yield empty data before each read, so that the events that
// arrived together are told from the ones that come later.
func TestDecodersMarkReads(t *testing.T) {
	tests := []struct {
		name   string
		decode func(io.Reader) iter.Seq2[[]byte, error]
		chunks chunkReader
		want   []string
	}{
		{"sse", sseData, chunkReader{"data: a\n\ndata: b\n\n", "data: c\n\n"}, []string{"", "a", "b", "", "c", ""}},
		{"sse event split across reads", sseData, chunkReader{"data: a\n\nda", "ta: b\n\n"}, []string{"", "a", "", "b", ""}},
		// A CR ends its line without waiting for the next read to tell
		// CR from CRLF.
		{"sse CR line ends", sseData, chunkReader{"data: a\r\r", "\ndata: b\r\r"}, []string{"", "a", "", "b", ""}},
		{"sse empty data is no event", sseData, chunkReader{"data:\n\ndata: a\n\n"}, []string{"", "a", ""}},
		{"ndjson", ndjsonLines, chunkReader{"{\"a\":1}\n{\"b\":2}\n", "{\"c\":3}\n"}, []string{"", `{"a":1}`, `{"b":2}`, "", `{"c":3}`, ""}},
	}
	for _, tt := range tests {
		var got []string
		for d, err := range tt.decode(&tt.chunks) {
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			got = append(got, string(d))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	// A consumer that stops at the mark before a read ends the decoder
	// without that read, and without yielding again (which a range loop
	// turns into a panic), even with half a line read.
	for _, decode := range []func(io.Reader) iter.Seq2[[]byte, error]{sseData, ndjsonLines} {
		for _, chunks := range []chunkReader{{"data: a\n\n", "data: b\n\n"}, {"data: a\n\ndata: b", "\n\n"}} {
			marks := 0
			for d := range decode(&chunks) {
				if len(d) == 0 {
					if marks++; marks == 2 {
						break
					}
				}
			}
			if len(chunks) != 1 {
				t.Errorf("%d chunks read after the consumer stopped", 2-len(chunks))
			}
		}
	}
}

func TestSSEData(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"data with space", "data: {\"a\":1}\n\n", []string{`{"a":1}`}},
		{"data without space", "data:{\"a\":1}\n\n", []string{`{"a":1}`}},
		{"only the first space is stripped", "data:  x\n\n", []string{" x"}},
		{"CRLF line ends", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"a", "b"}},
		{"CR line ends", "data: a\r\rdata: b\r\r", []string{"a", "b"}},
		{"comments ignored", ": keep-alive\n\ndata: a\n: note\n\n", []string{"a"}},
		{"multi-line data joined", "data: a\ndata: b\n\n", []string{"a\nb"}},
		{"no trailing blank line", "data: a\n\ndata: last", []string{"a", "last"}},
		{"no trailing newline after final line", "data: a\n\ndata: last\n", []string{"a", "last"}},
		{"DONE is data", "data: x\n\ndata: [DONE]\n\n", []string{"x", "[DONE]"}},
		{"event and id fields", "event: message\nid: 7\ndata: a\n\n", []string{"a"}},
		{"unknown fields ignored", "retry: 10\nfoo: bar\ndata: a\n\n", []string{"a"}},
		{"empty events skipped", "\n\n\ndata: a\n\n\n\n", []string{"a"}},
		{"unicode", "data: 日本\n\n", []string{"日本"}},
		{"empty body", "", nil},
		{"a byte order mark is skipped at the start only", "\ufeffdata: a\n\n\ufeffdata: b\n\n", []string{"a"}},
		{"a field name alone is an empty value", "data\ndata: a\n\ndata\n\n", []string{"\na"}},
		{"mixed line ends", "data: a\r\ndata: b\rdata: c\n\r\n: x\r\rdata: d\n\r", []string{"a\nb\nc", "d"}},
		{"later events reuse no earlier data", "data: long event\n\ndata: b\n\ndata: c\ndata: d\n\n", []string{"long event", "b", "c\nd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				wrap func(string) *strings.Reader
			}{{"whole", strings.NewReader}} {
				got, err := collect(t, sseData(r.wrap(tt.in)))
				if err != nil {
					t.Fatalf("%s: error %v", r.name, err)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("%s: got %q, want %q", r.name, got, tt.want)
				}
			}
			// One byte at a time: events cut anywhere decode the same.
			got, err := collect(t, sseData(iotest.OneByteReader(strings.NewReader(tt.in))))
			if err != nil {
				t.Fatalf("one byte: error %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("one byte: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSSEDataErrors(t *testing.T) {
	big := "data: " + strings.Repeat("x", MaxEventSize+10) + "\n\n"
	if _, err := collect(t, sseData(strings.NewReader(big))); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("oversized event: err = %v, want ErrEventTooLarge", err)
	}
	lines := strings.Repeat("data: xxxxxxxxxxxxxxxxxxxxxxxxxx\n", MaxEventSize/16) + "\n"
	if _, err := collect(t, sseData(strings.NewReader(lines))); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("oversized event of short lines: err = %v, want ErrEventTooLarge", err)
	}
	broken := iotest.DataErrReader(iotest.TimeoutReader(strings.NewReader("data: a\n\ndata: b\n\n")))
	if _, err := collect(t, sseData(broken)); err == nil {
		t.Errorf("read error not reported")
	}
}

func TestNDJSONLines(t *testing.T) {
	got, err := collect(t, ndjsonLines(strings.NewReader("{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}")))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	big := strings.Repeat("x", MaxEventSize+10) + "\n"
	if _, err := collect(t, ndjsonLines(strings.NewReader(big))); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("oversized line: err = %v, want ErrEventTooLarge", err)
	}
}

// FuzzSSEData checks sseData against sseReference, read whole and one
// byte at a time.
func FuzzSSEData(f *testing.F) {
	f.Add("data: a\n\n")
	f.Add("data:{\"x\":1}\r\n\r\n: c\ndata: b\ndata: c")
	f.Add("event: e\nid: 1\nretry: 5\n\ndata: [DONE]\n\n")
	f.Add("\ufeffdata\r\rdata:\r\n\ndata:  x\n\r\ufeffdata: y\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		want := sseReference(in)
		for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
			got, err := collect(t, sseData(r))
			if err != nil {
				t.Fatalf("%q: %v", in, err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%q:\n      got %q\nreference %q", in, got, want)
			}
		}
	})
}

// sseReference reads an event stream as the HTML standard's event-stream
// interpretation says, one line at a time from the whole text, plus
// genls's dispatch at EOF: what sseData does from a buffer that a read may
// cut anywhere.
func sseReference(in string) []string {
	in = strings.TrimPrefix(in, "\ufeff")
	var events []string
	var data strings.Builder
	dispatch := func() {
		if d := strings.TrimSuffix(data.String(), "\n"); d != "" {
			events = append(events, d)
		}
		data.Reset()
	}
	for in != "" {
		line, rest := in, ""
		if end := strings.IndexAny(in, "\r\n"); end >= 0 {
			line, rest = in[:end], in[end+1:]
			if in[end] == '\r' {
				rest = strings.TrimPrefix(rest, "\n")
			}
		}
		in = rest
		if line == "" {
			dispatch()
			continue
		}
		if field, value, _ := strings.Cut(line, ":"); field == "data" {
			data.WriteString(strings.TrimPrefix(value, " "))
			data.WriteByte('\n')
		}
	}
	dispatch()
	return events
}
