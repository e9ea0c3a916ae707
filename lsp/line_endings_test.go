package lsp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/genls/genls/stream/streamtest"
)

// Every generated line break lands exactly once, spelled as the document
// spells its line breaks, whatever the model writes and whatever the editor
// does to an applied edit's line breaks.
func TestLineEndings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		doc    string // "|" marks the selection's end, where text goes
		tokens []string
		want   string
	}{
		{"LF document, CRLF from the model", "def f():|\nx\n",
			[]string{"\r\n", "    a = 1", "\r\n", "    return a", "__':\r\n"}, "def f():\n    a = 1\n    return a__':\n\nx\n"},
		{"LF document, CR and LF in separate tokens", "a|\nb\n",
			[]string{"1", "\r", "\n", "2\r", "\n3"}, "a1\n2\n3\nb\n"},
		{"LF document, lone CR", "a|\n", []string{"1\r2", "\r"}, "a1\n2\n\n"},
		{"CRLF document, LF from the model", "def fib(n):|\r\n    pass\r\n",
			[]string{"\n", "    if n < 2:", "\n        return n", "\n"}, "def fib(n):\r\n    if n < 2:\r\n        return n\r\n\r\n    pass\r\n"},
		{"CRLF document, CRLF split across tokens", "a|\r\nb\r\n",
			[]string{"1", "\r", "\n2", "\r\n", "3", "\n", "é"}, "a1\r\n2\r\n3\r\né\r\nb\r\n"},
		{"CRLF document, a CRLF pair per token", "x|\r\n",
			[]string{"\r\n", "\r\n", "\r\n", "y"}, "x\r\n\r\n\r\ny\r\n"},
		{"CRLF document, astral and accented characters before", "x\r\n😀é|\r\n😀\r\n",
			[]string{"1\n", "😀", "\r", "\n2"}, "x\r\n😀é1\r\n😀\r\n2\r\n😀\r\n"},
		{"lone CR before the insertion point joins the first LF", "x\ny\r|",
			[]string{"\n", "b", "c"}, "x\ny\r\nbc"},
		{"unusual line breaks and NUL", "a|\n",
			[]string{"1\u2028", "2\u2029", "3\u0085", "4\x00", "5"}, "a1\n2\n3\n45\n"},
		{"unusual line breaks in a CRLF document", "a|\r\n",
			[]string{"1\u2028", "2"}, "a1\r\n2\r\n"},
	}
	variants := []struct {
		enc  encoding
		slow bool // the editor takes 20 ms to apply an edit
	}{{encUTF16, false}, {encUTF16, true}, {encUTF8, false}, {encUTF32, false}}
	for _, tt := range tests {
		for _, v := range variants {
			t.Run(fmt.Sprintf("%s/%s/slow=%v", tt.name, v.enc, v.slow), func(t *testing.T) {
				inEveryMode(t, func(t *testing.T, mode editorMode) {
					opts := editorOptions{mode: mode, versioned: true, encodings: []string{string(v.enc)}}
					if v.slow {
						opts.editLatency = 20 * time.Millisecond
					}
					got, ed := generateInto(t, opts, tt.doc, tt.tokens)
					if got != tt.want {
						t.Fatalf("text\n got %q\nwant %q", got, tt.want)
					}
					assertNoResends(t, ed, len(tt.tokens))
				})
			})
		}
	}
}

// VS Code gives a document without line breaks the end of line of
// files.eol (CRLF on Windows); the first generated line break is converted
// by the editor and the rest follow the document.
func TestLineEndingsOfDocumentWithoutLineBreaks(t *testing.T) {
	t.Parallel()
	for _, eol := range []string{"\n", "\r\n"} {
		t.Run(fmt.Sprintf("files.eol=%q", eol), func(t *testing.T) {
			got, ed := generateInto(t, editorOptions{mode: modeVSCode, versioned: true, eol: eol}, "x|",
				[]string{"1\n", "2\r\n", "3\n"})
			if want := strings.ReplaceAll("x1\n2\n3\n", "\n", eol); got != want {
				t.Fatalf("text %q, want %q", got, want)
			}
			assertNoResends(t, ed, 3)
		})
	}
}

// generateInto opens doc (without its "|") in a fake editor, generates
// tokens at the "|" and returns the final text.
func generateInto(t *testing.T, opts editorOptions, doc string, tokens []string) (string, *fakeEditor) {
	t.Helper()
	return generateIntoAt(t, opts, doc, tokens, time.Millisecond)
}

// generateIntoAt is generateInto with tokens every interval.
func generateIntoAt(t *testing.T, opts editorOptions, doc string, tokens []string, interval time.Duration) (string, *fakeEditor) {
	t.Helper()
	srv := streamtest.NewServer(t, streamtest.TGI(interval, "length", tokens...))
	opts.settings = tgiSettings(srv.URL)
	ed := newFakeEditor(t, opts)
	at := strings.Index(doc, "|")
	doc = strings.Replace(doc, "|", "", 1)
	ed.open(uri, doc)
	if err := ed.run(uri, rangeOf(ed.enc(), doc, 0, at), "Generate"); err != nil {
		t.Fatal(err)
	}
	ed.awaitEnded(1)
	if msgs := ed.shownErrors(); len(msgs) > 0 {
		t.Errorf("messages: %q", msgs)
	}
	return ed.text(uri), ed
}

// assertNoResends checks that a generation nobody typed into cost at most an
// edit per token and no rejected edit: nothing was sent twice, and every
// edit was placed on the version the editor had by then.
func assertNoResends(t *testing.T, ed *fakeEditor, tokens int) {
	t.Helper()
	ed.mu.Lock()
	defer ed.mu.Unlock()
	if ed.edits > tokens {
		t.Errorf("%d edits for %d tokens", ed.edits, tokens)
	}
	if ed.rejected > 0 {
		t.Errorf("%d edits rejected as stale", ed.rejected)
	}
	if ed.labelled > 0 {
		t.Errorf("%d edits with a label, which Neovim prints", ed.labelled)
	}
}

// Neovim 0.7's default handler answers applied:true for a versioned edit it
// dropped because the user had typed meanwhile. Confirmed text is never sent
// again: the generation stops with a message, and no text is doubled.
func TestEditConfirmedButDropped(t *testing.T) {
	t.Parallel()
	tokens := make([]string, 30)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("%c", 'a'+i%26)
	}
	all := strings.Join(tokens, "")
	srv := streamtest.NewServer(t, streamtest.TGI(time.Millisecond, "length", tokens...))
	ed := newFakeEditor(t, editorOptions{versioned: true, dropStale: true, editLatency: 2 * time.Millisecond, settings: tgiSettings(srv.URL)})
	ed.open(uri, "top\n>")
	ed.run(uri, rangeOf(encUTF16, "top\n>", 5, 5), "Generate here")
	for i := 0; i < 10; i++ {
		ed.typeAt(uri, 0, "#")
		time.Sleep(3 * time.Millisecond)
	}
	ed.awaitEnded(1)
	got := ed.text(uri)
	prefix := "##########top\n>"
	if !strings.HasPrefix(got, prefix) || !strings.HasPrefix(all, got[len(prefix):]) {
		t.Fatalf("text %q: want %q and a prefix of %q", got, prefix, all)
	}
	if got == prefix+all {
		return // the typing happened to miss every edit
	}
	ed.await("a message", func() bool { return contains(ed.shownMessages(), "reported an edit as applied") })
}

// The region never holds more than was generated: an echo that would make
// it longer ends the generation instead of going on.
func TestRegionNeverOutgrowsGeneratedText(t *testing.T) {
	t.Parallel()
	r := newRegion(0, true, encUTF16)
	r.pending, r.budget = "", 4
	r.unechoed = []*sentEdit{{text: "ab\n", canon: "ab\n"}, {text: "cd", canon: "cd"}}
	r.observe("", 0, 0, "ab\r\n")
	if r.failure != nil || r.end != 4 {
		t.Fatalf("first echo: end %d, failure %v", r.end, r.failure)
	}
	r.observe("ab\r\n", 4, 4, "cd")
	if r.failure == nil {
		t.Fatalf("region of %d bytes from a budget of %d: no failure", r.end-r.start, r.budget)
	}
}

// FuzzLineEndings streams tokens made of "a", "b", "\r" and "\n", split
// anywhere (between a CR and its LF too), into LF and CRLF documents in
// every editor mode: the document must hold the generated text once, with
// the document's line endings, in at most one edit per token.
func FuzzLineEndings(f *testing.F) {
	f.Add([]byte("a\r\nb"), false, uint8(0))
	f.Add([]byte{'a', '\r' | 4, '\n', 'b'}, true, uint8(1))
	f.Add([]byte{'\r', '\r' | 4, '\n' | 4, '\r', '\n'}, true, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, crlf bool, mode uint8) {
		if len(data) == 0 || len(data) > 48 {
			return
		}
		// Each byte is a character; bit 2 ends a token after it.
		var tokens []string
		var tok strings.Builder
		for i, c := range data {
			tok.WriteByte("ab\r\n"[c&3])
			if c&4 != 0 || i == len(data)-1 {
				tokens = append(tokens, tok.String())
				tok.Reset()
			}
		}
		eol := "\n"
		if crlf {
			eol = "\r\n"
		}
		generated := strings.Join(tokens, "")
		generated = strings.ReplaceAll(strings.ReplaceAll(generated, "\r\n", "\n"), "\r", "\n")
		want := "x" + strings.ReplaceAll(generated, "\n", eol) + eol + "y" + eol

		opts := editorOptions{mode: editorModes[int(mode)%len(editorModes)], versioned: true}
		got, ed := generateIntoAt(t, opts, "x|"+eol+"y"+eol, tokens, 0)
		if got != want {
			t.Fatalf("tokens %q: text %q, want %q", tokens, got, want)
		}
		assertNoResends(t, ed, len(tokens))
	})
}
