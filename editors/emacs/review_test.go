//go:build unix

package emacs_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/genls/genls/editors/e2etest"
	"github.com/genls/genls/stream/streamtest"
)

// words returns n tokens " w001", " w002", … (prefix w), every tenth a line
// break instead when breaks is set, and their concatenation.
func words(prefix string, n int, breaks bool) ([]string, string) {
	toks := make([]string, n)
	for i := range toks {
		toks[i] = fmt.Sprintf(" %s%03d", prefix, i+1)
		if breaks && i%10 == 9 {
			toks[i] = "\n"
		}
	}
	return toks, strings.Join(toks, "")
}

// TestReview generates, then runs genls-accept, genls-discard and
// genls-regenerate at point or (with C-u) in the whole buffer, and undo, in
// an interactive Emacs whose command loop runs a command every 50 ms while
// text streams in, as a user moving around would: each command closes an
// undo step. After each step it compares the buffer's text, the genls
// notes flymake shows and the server's answer; at the end, the written
// file byte for byte.
func TestReview(t *testing.T) {
	gen, genText := words("w", 60, false)
	again, againText := words("r", 30, false)
	broken, brokenText := words("w", 60, true)
	second := []string{" two", " three"}
	type want struct {
		// text is the buffer's text after the step: "", not waited for
		// nor checked; in a step with &, a part of the text. atInsert and
		// atInsertUntyped stand for the text right after the insert step's
		// insertion, and that text without the inserted line.
		text   string
		marks  int // the number of genls notes; -1: not checked
		result int // the server's answer to a review command; -1: none
	}
	const atInsert, atInsertUntyped = "<at insert>", "<at insert, untyped>"
	// 60 tokens 40 ms apart: at least 20 edits even on a loaded machine,
	// where an edit carries the tokens that arrived while Emacs was busy
	// (14 with 20 ms, once, with the Neovim tests running beside).
	const genDelay = 40 * time.Millisecond
	// Typing and undoing during a stream: the generation's edits after the
	// user's change are an undo step of their own. The tokens come slowly
	// enough for the change to land between two of them.
	slow := streamtest.TGI(150*time.Millisecond, "length", " one", " two", " three", " four", " five")
	tests := []struct {
		name    string
		text    string // the file
		eol     string // its line ends as Emacs must detect them
		scripts []streamtest.Script
		steps   []string
		want    []want
		file    string // the written file
	}{{
		name:    "accept keeps the text and clears the mark",
		text:    "Hello\nnext\n",
		scripts: []streamtest.Script{streamtest.TGI(genDelay, "length", gen...)},
		steps:   []string{"gen=1", "accept@1:10=0"},
		want: []want{
			{"Hello" + genText + "\nnext\n", 1, -1},
			{"Hello" + genText + "\nnext\n", 0, 1},
		},
		file: "Hello" + genText + "\nnext\n",
	}, {
		name:    "discard restores the file byte for byte",
		text:    "Hello\nnext\n",
		scripts: []streamtest.Script{streamtest.TGI(genDelay, "length", broken...)},
		steps:   []string{"gen=1", "discard@3:2=0"},
		want: []want{
			{"Hello" + brokenText + "\nnext\n", 1, -1},
			{"Hello\nnext\n", 0, 1},
		},
		file: "Hello\nnext\n",
	}, {
		name:    "discard restores a CRLF file byte for byte",
		text:    "Hello\r\nnext\r\n",
		eol:     "dos",
		scripts: []streamtest.Script{streamtest.TGI(genDelay, "length", broken...)},
		steps:   []string{"gen=1", "discard@3:2=0"},
		want: []want{
			{"Hello" + brokenText + "\nnext\n", 1, -1},
			{"Hello\nnext\n", 0, 1},
		},
		file: "Hello\r\nnext\r\n",
	}, {
		// The discard is an undo step of its own: undo brings the text
		// back (no longer pending: genls forgot it), a second undo
		// removes it.
		name:    "undo after a discard brings the text back",
		text:    "Hello\nnext\n",
		scripts: []streamtest.Script{streamtest.TGI(genDelay, "length", gen...)},
		steps:   []string{"gen=1", "discard@1:10=0", "undo=0", "undo=0"},
		want: []want{
			{"Hello" + genText + "\nnext\n", 1, -1},
			{"Hello\nnext\n", 0, 1},
			{"Hello" + genText + "\nnext\n", 0, -1},
			{"Hello\nnext\n", 0, -1},
		},
		file: "Hello\nnext\n",
	}, {
		// With no command between the generation's last edit and the
		// Discard, only genls-discard closes the generation's undo step.
		name:    "undo after a discard brings the text back, nothing done during the stream",
		text:    "Hello\nnext\n",
		scripts: []streamtest.Script{streamtest.TGI(genDelay, "length", gen...)},
		steps:   []string{"gen~=1", "discard@1:10=0", "undo=0"},
		want: []want{
			{"Hello" + genText + "\nnext\n", 1, -1},
			{"Hello\nnext\n", 0, 1},
			{"Hello" + genText + "\nnext\n", 0, -1},
		},
		file: "Hello" + genText + "\nnext\n",
	}, {
		name:    "one undo removes a generation and its mark",
		text:    "Hello\nnext\n",
		scripts: []streamtest.Script{streamtest.TGI(genDelay, "length", gen...)},
		steps:   []string{"gen=1", "undo=0"},
		want: []want{
			{"Hello" + genText + "\nnext\n", 1, -1},
			{"Hello\nnext\n", 0, -1},
		},
		file: "Hello\nnext\n",
	}, {
		// Regenerate replaces the text in place, once; one undo undoes
		// the Regenerate (the old text is back, no longer pending), the
		// next the generation.
		name: "regenerate writes the text again in place, one undo step",
		text: "Hello\nnext\n",
		scripts: []streamtest.Script{
			streamtest.TGI(genDelay, "length", gen...),
			streamtest.TGI(genDelay, "length", again...),
		},
		steps: []string{"gen=1", "regenerate@1:10=1", "undo=0", "undo=0"},
		want: []want{
			{"Hello" + genText + "\nnext\n", 1, -1},
			{"Hello" + againText + "\nnext\n", 1, 1},
			{"Hello" + genText + "\nnext\n", 0, -1},
			{"Hello\nnext\n", 0, -1},
		},
		file: "Hello\nnext\n",
	}, {
		name:    "typing during the stream is not merged into the generation",
		text:    "Hello\nnext\n",
		scripts: []streamtest.Script{slow},
		steps:   []string{"gen&", "insert", "wait", "undo", "undo", "undo=0"},
		want: []want{
			{"Hello one", -1, -1},
			{"", -1, -1},
			{"typed above\nHello one two three four five\nnext\n", 1, -1},
			{atInsert, -1, -1},
			{atInsertUntyped, -1, -1},
			{"Hello\nnext\n", 0, -1},
		},
		file: "Hello\nnext\n",
	}, {
		// A command that changes the buffer, then waits for output (as
		// one waiting for a server does) while the text streams in: the
		// edits applied during the command are not merged into its change.
		name:    "edits applied while a command waits stay out of its undo step",
		text:    "Hello\nnext\n",
		scripts: []streamtest.Script{slow},
		steps:   []string{"gen&", "insert-wait", "wait", "undo", "undo", "undo=0"},
		want: []want{
			{"Hello one", -1, -1},
			{"", -1, -1},
			{"typed above\nHello one two three four five\nnext\n", 1, -1},
			{atInsert, -1, -1},
			{atInsertUntyped, -1, -1},
			{"Hello\nnext\n", 0, -1},
		},
		file: "Hello\nnext\n",
	}, {
		// After the user's undo the buffer's undo list ends with what the
		// undo did, not with genls's last edit: the next edit starts a
		// new undo step.
		name:    "the user undoes their own change during the stream",
		text:    "Hello\nnext\n",
		scripts: []streamtest.Script{slow},
		steps:   []string{"gen&", "insert-undo", "wait", "undo"},
		want: []want{
			{"Hello one", -1, -1},
			{"", -1, -1},
			{"Hello one two three four five\nnext\n", 1, -1},
			{atInsertUntyped, -1, -1},
		},
		file: atInsertUntyped,
	}, {
		// Two pending generations: genls-accept at point takes the one
		// there, C-u genls-discard the other.
		name: "at point one of two, with a prefix argument the rest",
		text: "Hello\nnext\n",
		scripts: []streamtest.Script{
			streamtest.TGI(genDelay, "length", gen...),
			streamtest.TGI(2*time.Millisecond, "length", second...),
		},
		steps: []string{"gen:1-1=1", "gen:2-2=2", "accept@1:10=1", "discard!=0"},
		want: []want{
			{"Hello" + genText + "\nnext\n", 1, -1},
			{"Hello" + genText + "\nnext two three\n", 2, -1},
			{"Hello" + genText + "\nnext two three\n", 1, 1},
			{"Hello" + genText + "\nnext\n", 0, 1},
		},
		file: "Hello" + genText + "\nnext\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.Script{Status: 500})
			srv.Push(tt.scripts...)
			texts := make([]any, len(tt.want))
			for i, w := range tt.want {
				if w.text != "" && w.text != atInsert && w.text != atInsertUntyped {
					texts[i] = w.text
				}
			}
			got, rep := runReview(t, srv, scenario{
				text:      tt.text,
				lines:     "1,1",
				steps:     tt.steps,
				stepTexts: texts,
				timeout:   60 * time.Second,
			})
			eol := tt.eol
			if eol == "" {
				eol = "unix"
			}
			if rep.EOL != eol {
				t.Fatalf("Emacs visited the file with %s line ends, want %s", rep.EOL, eol)
			}
			if len(rep.Steps) != len(tt.steps) {
				t.Fatalf("%d steps reported, want %d", len(rep.Steps), len(tt.steps))
			}
			// The text at the insertion, and that the insertion came
			// between two of the generation's edits.
			inserted := ""
			for _, st := range rep.Steps {
				if st.Inserted != "" {
					inserted = st.Inserted
				}
			}
			at := strings.NewReplacer(atInsert, inserted, atInsertUntyped, strings.Replace(inserted, "typed above\n", "", 1))
			if slices.ContainsFunc(tt.want, func(w want) bool { return strings.HasPrefix(w.text, "<at insert") }) &&
				(!strings.Contains(inserted, "typed above\nHello one") || strings.Contains(inserted, "five")) {
				t.Fatalf("the text at the insertion is %q, want the line typed above a part of the generated text", inserted)
			}
			for i, st := range rep.Steps {
				w := tt.want[i]
				w.text = at.Replace(w.text)
				switch {
				case w.text == "":
				case strings.Contains(st.Step, "&"):
					if !strings.Contains(st.Text, w.text) {
						t.Errorf("after step %d (%s): buffer = %q, want it to contain %q", i+1, st.Step, e2etest.Clip(st.Text), w.text)
					}
				case st.Text != w.text:
					t.Errorf("after step %d (%s): buffer = %q, want %q", i+1, st.Step, e2etest.Clip(st.Text), e2etest.Clip(w.text))
				}
				if w.marks >= 0 && len(st.Marks) != w.marks {
					t.Errorf("after step %d (%s): %d genls notes %+v, want %d", i+1, st.Step, len(st.Marks), st.Marks, w.marks)
				}
				for _, m := range st.Marks {
					if w.marks >= 0 && (m.Type != "eglot-note" || !strings.Contains(m.Text, "[genls.pending]")) {
						t.Errorf("after step %d (%s): diagnostic %+v, want an eglot-note (Hint) with code genls.pending", i+1, st.Step, m)
					}
				}
				switch {
				case w.result >= 0 && (st.Result == nil || *st.Result != w.result):
					t.Errorf("step %d (%s): the server answered %s (arguments %s), want %d", i+1, st.Step, answer(st.Result), st.Arguments, w.result)
				case w.result < 0 && st.Result != nil:
					t.Errorf("step %d (%s): a review command ran, answered %d", i+1, st.Step, *st.Result)
				}
			}
			if file := at.Replace(tt.file); got != file {
				t.Errorf("file = %q, want %q", e2etest.Clip(got), e2etest.Clip(file))
			}
			// A generation of many edits, with commands in between: the
			// undo and discard steps must handle each of them.
			if first := rep.Steps[0]; tt.scripts[0].Chunks[0].Delay == genDelay && (first.ApplyEdits < 20 || first.Pokes < 5 && !strings.Contains(first.Step, "~")) {
				t.Errorf("the first generation came in %d workspace/applyEdit requests with %d commands in between, want at least 20 and 5",
					first.ApplyEdits, first.Pokes)
			}
			edits := make([]int, len(rep.Steps))
			for i, st := range rep.Steps {
				edits[i] = st.ApplyEdits
			}
			t.Logf("workspace/applyEdit requests per step: %v; commands during the first: %d", edits, rep.Steps[0].Pokes)
		})
	}
}

// answer formats a review command's answer, nil when none was recorded.
func answer(n *int) string {
	if n == nil {
		return "nothing"
	}
	return strconv.Itoa(*n)
}

// TestRewrite rewrites the first line with M-x genls-rewrite, the
// instruction typed into the minibuffer, and discards the rewrite: the
// instruction must reach the endpoint, the original must be marked
// genls.original and the new text genls.pending while it is pending, and
// Discard must leave the file byte for byte as it was. The reply comes
// fenced, as a chat model writes it: the fences go. C-u M-x genls-generate
// asks for an instruction too.
func TestRewrite(t *testing.T) {
	fenced := streamtest.TGI(5*time.Millisecond, "length", "```\n", "HELLO", " THERE\n", "```\n")
	for _, tt := range []struct {
		name, text, file string
	}{
		{"discard", "Hello\nnext\n", "Hello\nnext\n"},
		{"discard in a CRLF file", "Hello\r\nnext\r\n", "Hello\r\nnext\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.Script{Status: 500})
			srv.Push(fenced)
			want := []any{"Hello\nHELLO THERE\nnext\n", "Hello\nnext\n"}
			got, rep := runReview(t, srv, scenario{
				text:        tt.text,
				lines:       "1,1",
				steps:       []string{"rewrite=2", "discard@1:1=0"},
				stepTexts:   want,
				instruction: "shout it",
				timeout:     60 * time.Second,
			})
			checkInstruction(t, srv, "shout it", "Hello")
			if len(rep.Steps) != 2 {
				t.Fatalf("%d steps reported, want 2", len(rep.Steps))
			}
			rewrite, discard := rep.Steps[0], rep.Steps[1]
			if rewrite.Text != want[0] {
				t.Errorf("after the rewrite: buffer = %q, want %q", rewrite.Text, want[0])
			}
			// The original's mark over line 1 with its line end, the new
			// text's over line 2 with its own.
			var codes []string
			for _, m := range rewrite.Marks {
				code := "?"
				for _, c := range []string{"genls.original", "genls.pending"} {
					if strings.Contains(m.Text, "["+c+"]") {
						code = c
					}
				}
				codes = append(codes, fmt.Sprintf("%s %d:%d-%d:%d %s", code, m.Line, m.Col, m.EndLine, m.EndCol, m.Type))
			}
			slices.Sort(codes)
			if w := []string{"genls.original 0:0-1:0 eglot-note", "genls.pending 1:0-2:0 eglot-note"}; !slices.Equal(codes, w) {
				t.Errorf("after the rewrite: genls notes %q, want %q", codes, w)
			}
			if discard.Text != want[1] || len(discard.Marks) != 0 {
				t.Errorf("after the discard: buffer = %q with notes %+v, want %q and none", discard.Text, discard.Marks, want[1])
			}
			if discard.Result == nil || *discard.Result != 1 {
				t.Errorf("genls-discard: the server answered %s (arguments %s), want 1", answer(discard.Result), discard.Arguments)
			}
			if got != tt.file {
				t.Errorf("file = %q, want %q", got, tt.file)
			}
		})
	}
	t.Run("C-u genls-generate", func(t *testing.T) {
		srv := streamtest.NewServer(t, streamtest.TGI(5*time.Millisecond, "length", " and", " more"))
		got, rep := runReview(t, srv, scenario{
			text:        "Hello\nnext\n",
			lines:       "1,1",
			steps:       []string{"gen-ask=1"},
			stepTexts:   []any{"Hello and more\nnext\n"},
			instruction: "continue in French",
			timeout:     60 * time.Second,
		})
		checkInstruction(t, srv, "continue in French", "Hello")
		if len(rep.Steps) != 1 || len(rep.Steps[0].Marks) != 1 {
			t.Errorf("steps %+v, want one with one genls note", rep.Steps)
		}
		if want := "Hello and more\nnext\n"; got != want {
			t.Errorf("file = %q, want %q", got, want)
		}
	})
}

// checkInstruction checks that the one generation request srv received
// holds the instruction and the selected text.
func checkInstruction(t *testing.T, srv *streamtest.Server, instruction, selection string) {
	t.Helper()
	var bodies []string
	for _, r := range srv.Requests() {
		if r.Path == "/generate_stream" {
			bodies = append(bodies, fmt.Sprint(r.JSON()["inputs"]))
		}
	}
	if len(bodies) != 1 || !strings.Contains(bodies[0], instruction) || !strings.Contains(bodies[0], selection) {
		t.Errorf("generation requests %q: want one, with the instruction %q and the text %q", bodies, instruction, selection)
	}
}
