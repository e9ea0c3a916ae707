package lsp

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.lsp.dev/protocol"

	"github.com/genls/genls/stream/streamtest"
)

// exec runs a genls command as an editor does and returns its result.
func (e *fakeEditor) exec(command string, args ...any) json.RawMessage {
	e.t.Helper()
	if args == nil {
		args = []any{}
	}
	var res json.RawMessage
	if err := e.call("workspace/executeCommand", map[string]any{"command": command, "arguments": args}, &res); err != nil {
		e.t.Fatalf("%s: %v", command, err)
	}
	return res
}

// marks returns the genls diagnostics last published for uri.
func (e *fakeEditor) marks(uri string) []wireDiagnostic {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []wireDiagnostic
	for _, d := range e.diagnostics[uri] {
		if d.Source == "genls" {
			out = append(out, d)
		}
	}
	return out
}

// markedText returns the text each genls diagnostic of uri covers, read
// with the editor's own position conversion.
func (e *fakeEditor) markedText(uri string) []string {
	ms := e.marks(uri)
	text := e.text(uri)
	var out []string
	for _, m := range ms {
		out = append(out, text[fakeOffset(text, m.Range.Start, e.enc()):fakeOffset(text, m.Range.End, e.enc())])
	}
	return out
}

// awaitMarked waits until the genls diagnostics of uri cover exactly want
// (pending, not generating).
func (e *fakeEditor) awaitMarked(uri string, want ...string) {
	e.t.Helper()
	e.await(fmt.Sprintf("marks over %q", want), func() bool {
		got := e.markedText(uri)
		if len(got) != len(want) {
			return false
		}
		for i, m := range e.marks(uri) {
			if got[i] != want[i] || m.Code != codePending {
				return false
			}
		}
		return true
	})
}

// markIDs returns the generation ids in uri's genls diagnostics.
func (e *fakeEditor) markIDs(uri string) []int {
	var ids []int
	for _, m := range e.marks(uri) {
		var data struct {
			ID int `json:"id"`
		}
		if err := json.Unmarshal(m.Data, &data); err != nil {
			e.t.Fatalf("mark data %s: %v", m.Data, err)
		}
		ids = append(ids, data.ID)
	}
	return ids
}

func titles(actions []wireCodeAction) string {
	var out []string
	for _, a := range actions {
		out = append(out, a.Title)
	}
	return strings.Join(out, ",")
}

// generateOnce runs Generate on [a, b) of uri's text and waits for it to
// end and its mark to cover want.
func generateOnce(t *testing.T, ed *fakeEditor, a, b int, want string) {
	t.Helper()
	n := len(ed.ended())
	if err := ed.run(uri, rangeOf(ed.enc(), ed.text(uri), a, b), "Generate"); err != nil {
		t.Fatal(err)
	}
	ed.awaitEnded(n + 1)
	ed.awaitMarked(uri, want)
}

// A generation stays pending, marked, after it ends; Accept keeps its text,
// Discard removes it exactly (in LF and CRLF documents, whatever the editor
// does to line breaks), Regenerate writes it again in its place.
func TestReviewAcceptDiscardRegenerate(t *testing.T) {
	inEveryMode(t, testReviewAcceptDiscardRegenerate)
}

func testReviewAcceptDiscardRegenerate(t *testing.T, mode editorMode) {
	tokens := []string{"one", "\n", "two", "\r\n", "three"}
	for _, eol := range []string{"\n", "\r\n"} {
		for _, versioned := range []bool{true, false} {
			t.Run(fmt.Sprintf("eol=%q/versioned=%v", eol, versioned), func(t *testing.T) {
				srv := streamtest.NewServer(t, streamtest.TGI(time.Millisecond, "length", tokens...))
				srv.Push(streamtest.TGI(time.Millisecond, "length", tokens...))
				ed := newFakeEditor(t, editorOptions{mode: mode, versioned: versioned, settings: tgiSettings(srv.URL)})
				doc := strings.ReplaceAll("head\nprompt\ntail\n", "\n", eol)
				// Every line break spelled as the document spells them.
				generated := "one" + eol + "two" + eol + "three"
				ed.open(uri, doc)
				at := strings.Index(doc, "prompt") + len("prompt")
				generateOnce(t, ed, at-len("prompt"), at, generated)
				want := doc[:at] + generated + doc[at:]
				if got := ed.text(uri); got != want {
					t.Fatalf("generated\n got %q\nwant %q", got, want)
				}
				if m := ed.marks(uri)[0]; m.Severity != 4 {
					t.Errorf("mark severity %d, want 4 (Hint)", m.Severity)
				}
				inside := rangeOf(ed.enc(), want, at+2, at+2)
				if got := titles(ed.codeActions(uri, inside)); !strings.HasPrefix(got, "Accept generation,Discard generation,Regenerate,Generate") {
					t.Errorf("code actions in the generated text: %s", got)
				}

				// Regenerate: the text again, once, in its place, pending.
				if err := ed.run(uri, inside, "Regenerate"); err != nil {
					t.Fatal(err)
				}
				ed.awaitEnded(2)
				ed.awaitMarked(uri, generated)
				if got := ed.text(uri); got != want {
					t.Fatalf("regenerated\n got %q\nwant %q", got, want)
				}

				// Discard: the document as it was.
				if err := ed.run(uri, inside, "Discard generation"); err != nil {
					t.Fatal(err)
				}
				ed.await("the generated text removed", func() bool { return ed.text(uri) == doc })
				ed.await("marks cleared", func() bool { return len(ed.marks(uri)) == 0 })
				if got := titles(ed.codeActions(uri, inside)); strings.Contains(got, "Accept") {
					t.Errorf("review actions after Discard: %s", got)
				}

				// Accept: the text stays, the marks go.
				srv.Push(streamtest.TGI(0, "length", "kept"))
				generateOnce(t, ed, at-len("prompt"), at, "kept")
				if err := ed.run(uri, rangeOf(ed.enc(), ed.text(uri), at, at), "Accept generation"); err != nil {
					t.Fatal(err)
				}
				ed.await("marks cleared", func() bool { return len(ed.marks(uri)) == 0 })
				if got, want := ed.text(uri), doc[:at]+"kept"+doc[at:]; got != want {
					t.Errorf("accepted %q, want %q", got, want)
				}
				if got := ed.exec(cmdDiscard); string(got) != "0" {
					t.Errorf("discard with nothing pending: %s", got)
				}
			})
		}
	}
}

// Every finish leaves the text pending: a cancelled generation and one
// that failed after some text are discarded as cleanly as a finished one.
func TestReviewAfterCancelAndError(t *testing.T) { inEveryMode(t, testReviewAfterCancelAndError) }

func testReviewAfterCancelAndError(t *testing.T, mode editorMode) {
	two := streamtest.TGI(0, "length", "par", "tial", "never").Chunks[:2]
	for _, tt := range []struct {
		name   string
		script streamtest.Script
	}{
		{"cancelled", streamtest.Script{Chunks: two, Hang: true}},
		{"mid-stream error", streamtest.Script{Chunks: append(two[:2:2], streamtest.Events(0, `{"error":"boom","error_type":"generation"}`)...)}},
		{"dropped connection", streamtest.Script{Chunks: two, Reset: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			ed := newFakeEditor(t, editorOptions{mode: mode, versioned: true, settings: tgiSettings(srv.URL)})
			ed.open(uri, "x\n")
			ed.run(uri, rangeOf(encUTF16, "x\n", 0, 1), "Generate")
			ed.await("the partial text", func() bool { return ed.text(uri) == "xpartial\n" })
			if tt.script.Hang {
				ed.exec(cmdCancel)
			}
			ed.awaitEnded(1)
			ed.awaitMarked(uri, "partial")
			if got := string(ed.exec(cmdDiscard, map[string]any{"uri": uri})); got != "1" {
				t.Errorf("discard acted on %s generations, want 1", got)
			}
			ed.await("the original text", func() bool { return ed.text(uri) == "x\n" })
			ed.await("marks cleared", func() bool { return len(ed.marks(uri)) == 0 })
		})
	}
}

// Discard keeps what the user typed outside the generated text (above,
// below, right before and right after it) and removes what they typed
// inside it.
func TestDiscardWithUserEdits(t *testing.T) { inEveryMode(t, testDiscardWithUserEdits) }

func testDiscardWithUserEdits(t *testing.T, mode editorMode) {
	const doc = "top\nprompt\nbottom\n"
	at := len("top\nprompt")
	tests := []struct {
		name string
		// edit changes the document holding "GEN" at at.
		edit func(ed *fakeEditor)
		want string
	}{
		{"above", func(ed *fakeEditor) { ed.typeAt(uri, 0, "new line\n") }, "new line\n" + doc},
		{"below", func(ed *fakeEditor) { ed.typeAt(uri, len(ed.text(uri)), "end\n") }, doc + "end\n"},
		{"right before", func(ed *fakeEditor) { ed.typeAt(uri, at, "<") }, "top\nprompt<\nbottom\n"},
		{"right after", func(ed *fakeEditor) { ed.typeAt(uri, at+3, ">") }, "top\nprompt>\nbottom\n"},
		{"inside", func(ed *fakeEditor) { ed.typeAt(uri, at+1, "typed") }, doc},
		{"deleted inside", func(ed *fakeEditor) { ed.replace(uri, at+1, at+2, "") }, doc},
		{"over the start", func(ed *fakeEditor) { ed.replace(uri, at-2, at+1, "XY") }, "top\npromXY\nbottom\n"},
		{"over the end", func(ed *fakeEditor) { ed.replace(uri, at+2, at+4, "Z") }, "top\npromptZbottom\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "G", "E", "N"))
			ed := newFakeEditor(t, editorOptions{mode: mode, versioned: true, settings: tgiSettings(srv.URL)})
			ed.open(uri, doc)
			generateOnce(t, ed, at-len("prompt"), at, "GEN")
			tt.edit(ed)
			ed.exec(cmdDiscard, map[string]any{"uri": uri})
			ed.await("the generated text removed", func() bool { return ed.text(uri) == tt.want })
			ed.await("marks cleared", func() bool { return len(ed.marks(uri)) == 0 })
		})
	}
}

// The marks follow the generated text as the user types around it, in
// every position encoding, and a generation whose text the user deleted
// (undid) is forgotten.
func TestMarksFollowChanges(t *testing.T) {
	t.Parallel()
	for _, enc := range []string{"utf-16", "utf-8", "utf-32"} {
		t.Run(enc, func(t *testing.T) {
			t.Parallel()
			srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "😀", "b\n", "é"))
			ed := newFakeEditor(t, editorOptions{mode: modeVSCode, versioned: true, encodings: []string{enc}, settings: tgiSettings(srv.URL)})
			doc := "𝄞x\ny"
			ed.open(uri, doc)
			generateOnce(t, ed, 0, len("𝄞x"), "😀b\né")
			ed.typeAt(uri, 0, "𝄞\n")
			ed.awaitMarked(uri, "😀b\né")
			ed.typeAt(uri, len("𝄞\n𝄞x😀"), "ü")
			ed.awaitMarked(uri, "😀üb\né")
			// The user deletes the generated text (as an undo does).
			text := ed.text(uri)
			start := strings.Index(text, "😀")
			ed.replace(uri, start, start+len("😀üb\né"), "")
			ed.await("marks cleared", func() bool { return len(ed.marks(uri)) == 0 })
			if got := string(ed.exec(cmdAccept)); got != "0" {
				t.Errorf("a deleted generation is still pending: accept acted on %s", got)
			}
		})
	}
}

// Two pending generations are reviewed one at a time, by id or by range,
// or all at once.
func TestTwoPendingGenerations(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "C"))
	srv.Push(streamtest.TGI(0, "length", "A"), streamtest.TGI(0, "length", "B"))
	ed := newFakeEditor(t, editorOptions{mode: modeVSCode, versioned: true, settings: tgiSettings(srv.URL)})
	ed.open(uri, "1\n2\n3\n")
	generateOnce(t, ed, 0, 1, "A") // 1A
	ed.run(uri, rangeOf(encUTF16, ed.text(uri), 3, 4), "Generate")
	ed.awaitEnded(2)
	ed.awaitMarked(uri, "A", "B") // 1A\n2B\n3\n
	ed.run(uri, rangeOf(encUTF16, ed.text(uri), 6, 7), "Generate")
	ed.awaitEnded(3)
	ed.awaitMarked(uri, "A", "B", "C") // 1A\n2B\n3C\n

	// By range: the cursor right after B.
	if got := string(ed.exec(cmdDiscard, map[string]any{"uri": uri, "range": rangeOf(encUTF16, ed.text(uri), 5, 5)})); got != "1" {
		t.Fatalf("discard by range acted on %s", got)
	}
	ed.await("B removed", func() bool { return ed.text(uri) == "1A\n2\n3C\n" })
	ed.awaitMarked(uri, "A", "C")
	// By id: C's, read from its mark.
	if got := string(ed.exec(cmdAccept, map[string]any{"uri": uri, "id": ed.markIDs(uri)[1]})); got != "1" {
		t.Fatalf("accept by id acted on %s", got)
	}
	ed.awaitMarked(uri, "A")
	// No argument: all.
	if got := string(ed.exec(cmdDiscard)); got != "1" {
		t.Fatalf("discard all acted on %s", got)
	}
	ed.await("A removed", func() bool { return ed.text(uri) == "1\n2\n3C\n" })
	ed.await("marks cleared", func() bool { return len(ed.marks(uri)) == 0 })
}

// Discard during the stream stops it and removes what it wrote.
func TestDiscardWhileRunning(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b", "c").Chunks[:2], Hang: true})
	ed := newFakeEditor(t, editorOptions{mode: modeNeovim, versioned: true, settings: tgiSettings(srv.URL)})
	ed.open(uri, "q")
	ed.run(uri, rangeOf(encUTF16, "q", 0, 1), "Generate")
	ed.await("the first tokens", func() bool { return ed.text(uri) == "qab" })
	if m := ed.marks(uri); len(m) != 1 || m[0].Code != codeGenerating {
		ed.await("a generating mark", func() bool { m := ed.marks(uri); return len(m) == 1 && m[0].Code == codeGenerating })
	}
	ed.run(uri, rangeOf(encUTF16, "qab", 2, 2), "Discard generation")
	ed.await("the text removed", func() bool { return ed.text(uri) == "q" })
	if !srv.WaitDisconnect(5 * time.Second) {
		t.Errorf("upstream request not closed")
	}
	ed.await("marks cleared", func() bool { return len(ed.marks(uri)) == 0 })
	if errs := ed.shownErrors(); len(errs) > 0 {
		t.Errorf("errors shown: %v", errs)
	}
}

// With review off, a generation is accepted when it ends.
func TestReviewOff(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "done"))
	ed := newFakeEditor(t, editorOptions{mode: modeVSCode, versioned: true, settings: tgiSettings(srv.URL, func(s map[string]any) {
		s["review"] = false
	})})
	ed.open(uri, "x")
	ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
	ed.awaitEnded(1)
	ed.await("marks cleared", func() bool { return ed.publishedCount() >= 2 && len(ed.marks(uri)) == 0 })
	if got := titles(ed.codeActions(uri, rangeOf(encUTF16, "xdone", 2, 2))); strings.Contains(got, "Accept") {
		t.Errorf("review actions with review off: %s", got)
	}
	if got := string(ed.exec(cmdDiscard)); got != "0" || ed.text(uri) != "xdone" {
		t.Errorf("discard with review off: %s, text %q", got, ed.text(uri))
	}
}

// Code lenses: Cancel above a running generation, Accept | Discard |
// Regenerate above a pending one; clients that can are asked to refresh.
func TestCodeLenses(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b").Chunks[:1], Hang: true})
	ed := newFakeEditor(t, editorOptions{mode: modeVSCode, versioned: true, lensRefresh: true, settings: tgiSettings(srv.URL)})
	ed.open(uri, "l0\nl1\n")
	lenses := func() string {
		var ls []struct {
			Range   protocol.Range `json:"range"`
			Command struct {
				Title   string `json:"title"`
				Command string `json:"command"`
			} `json:"command"`
		}
		if err := ed.call("textDocument/codeLens", map[string]any{"textDocument": map[string]any{"uri": uri}}, &ls); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range ls {
			out = append(out, fmt.Sprintf("%d:%s=%s", l.Range.Start.Line, l.Command.Title, l.Command.Command))
		}
		return strings.Join(out, " ")
	}
	if got := lenses(); got != "" {
		t.Errorf("lenses with no generation: %s", got)
	}
	ed.run(uri, rangeOf(encUTF16, "l0\nl1\n", 3, 5), "Generate")
	ed.await("the first token", func() bool { return ed.text(uri) == "l0\nl1a\n" })
	if got := lenses(); got != "1:Cancel generation=genls.cancel" {
		t.Errorf("lenses while running: %s", got)
	}
	ed.exec(cmdCancel)
	ed.awaitEnded(1)
	ed.awaitMarked(uri, "a")
	if got := lenses(); got != "1:Accept=genls.accept 1:Discard=genls.discard 1:Regenerate=genls.regenerate" {
		t.Errorf("lenses while pending: %s", got)
	}
	ed.await("a codeLens refresh after the generation ended", func() bool {
		ed.mu.Lock()
		defer ed.mu.Unlock()
		return ed.lensRefreshes >= 2
	})
}

func (e *fakeEditor) publishedCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.published
}

// An editor that diffs documents may report Discard's removal anywhere in
// a run of equal characters; Discard and Regenerate still find the place.
// Regenerate sends a new seed when one is set.
func TestDiscardReportedAnywhere(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "a", "a"))
	ed := newFakeEditor(t, editorOptions{mode: modeVerbatim, versioned: true, fullSync: true, settings: tgiSettings(srv.URL, func(s map[string]any) {
		s["parameters"] = map[string]any{"seed": 7}
	})})
	// The generated "aa" goes after "x", before "aa": a diff places its
	// removal after the "aa" that follows.
	ed.open(uri, "xaa\n")
	generateOnce(t, ed, 0, 1, "aa")
	first := ed.markIDs(uri)[0]
	ed.run(uri, rangeOf(encUTF16, ed.text(uri), 2, 2), "Regenerate")
	ed.awaitEnded(2)
	ed.await("the new generation's mark", func() bool { ids := ed.markIDs(uri); return len(ids) == 1 && ids[0] != first })
	ed.awaitMarked(uri, "aa")
	if got := ed.text(uri); got != "xaaaa\n" {
		t.Fatalf("regenerated %q", got)
	}
	reqs := srv.Requests()
	seeds := []any{}
	for _, r := range reqs {
		if params, ok := r.JSON()["parameters"].(map[string]any); ok {
			seeds = append(seeds, params["seed"])
		}
	}
	if len(seeds) != 2 || fmt.Sprint(seeds[0]) != "7" || fmt.Sprint(seeds[1]) == "7" {
		t.Errorf("seeds sent %v: want 7, then another", seeds)
	}
	if got := string(ed.exec(cmdDiscard, map[string]any{"uri": uri, "id": ed.markIDs(uri)[0]})); got != "1" {
		t.Fatalf("discard by id acted on %s", got)
	}
	ed.await("the original text", func() bool { return ed.text(uri) == "xaa\n" })
	ed.await("marks cleared", func() bool { return len(ed.marks(uri)) == 0 })
}

// A Discard the editor rejects as stale (the user typing meanwhile) is sent
// again; one it keeps rejecting is reported, and the generation stays
// pending.
func TestDiscardRejected(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rejections int
		want       string
	}{{2, "x\n"}, {100, "xGEN\n"}} {
		t.Run(fmt.Sprint(tt.rejections), func(t *testing.T) {
			t.Parallel()
			srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "GEN"))
			ed := newFakeEditor(t, editorOptions{mode: modeVSCode, versioned: true, rejectDeletes: tt.rejections, settings: tgiSettings(srv.URL)})
			ed.open(uri, "x\n")
			generateOnce(t, ed, 0, 1, "GEN")
			ed.exec(cmdDiscard)
			if tt.want == "x\n" {
				ed.await("the text removed", func() bool { return ed.text(uri) == tt.want })
				ed.await("marks cleared", func() bool { return len(ed.marks(uri)) == 0 })
				return
			}
			ed.await("an error", func() bool { return contains(ed.shownErrors(), "rejected the edit removing the text 8 times") })
			if got := ed.text(uri); got != tt.want {
				t.Errorf("text %q", got)
			}
			if got := string(ed.exec(cmdAccept)); got != "1" {
				t.Errorf("after a failed discard, accept acted on %s generations, want 1", got)
			}
		})
	}
}

// Accept during the stream: the generation is accepted when it ends, and
// can still be discarded until then.
func TestAcceptWhileRunning(t *testing.T) {
	t.Parallel()
	for _, thenDiscard := range []bool{false, true} {
		t.Run(fmt.Sprintf("discard=%v", thenDiscard), func(t *testing.T) {
			t.Parallel()
			srv := streamtest.NewServer(t, streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b", "c").Chunks[:2], Hang: true})
			ed := newFakeEditor(t, editorOptions{mode: modeVSCode, versioned: true, settings: tgiSettings(srv.URL)})
			ed.open(uri, "q")
			ed.run(uri, rangeOf(encUTF16, "q", 0, 1), "Generate")
			ed.await("the first tokens", func() bool { return ed.text(uri) == "qab" })
			if got := string(ed.exec(cmdAccept)); got != "1" {
				t.Fatalf("accept acted on %s", got)
			}
			want := "qab"
			if thenDiscard {
				if got := string(ed.exec(cmdDiscard)); got != "1" {
					t.Fatalf("discard after accept, while running, acted on %s", got)
				}
				want = "q"
			} else {
				ed.exec(cmdCancel)
			}
			ed.awaitEnded(1)
			ed.await("marks cleared", func() bool { return ed.publishedCount() > 0 && len(ed.marks(uri)) == 0 })
			ed.await("the text", func() bool { return ed.text(uri) == want })
			if got := string(ed.exec(cmdDiscard)); got != "0" {
				t.Errorf("still pending after the end: %s", got)
			}
		})
	}
}
