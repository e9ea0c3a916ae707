package lsp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.lsp.dev/protocol"
	"go.uber.org/goleak"

	"github.com/genls/genls/stream/streamtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const uri = "file:///work/main.go"

// inEveryMode runs a generation scenario once per fake editor mode: the
// server must hold up whatever the editor does to line breaks and however
// it orders its answers.
func inEveryMode(t *testing.T, scenario func(t *testing.T, mode editorMode)) {
	t.Parallel()
	for _, mode := range editorModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			scenario(t, mode)
		})
	}
}

func TestGenerateSelection(t *testing.T) { inEveryMode(t, testGenerateSelection) }

func testGenerateSelection(t *testing.T, mode editorMode) {
	for _, versioned := range []bool{true, false} {
		t.Run(fmt.Sprintf("versioned=%v", versioned), func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.TGI(time.Millisecond, "length", "Hello", ",", " wörld", "\n", "😀", "!"))
			ed := newFakeEditor(t, editorOptions{mode: mode, versioned: versioned, settings: tgiSettings(srv.URL)})
			doc := "// greet\nfunc main() {}\n"
			ed.open(uri, doc)
			sel := rangeOf(encUTF16, doc, 0, len("// greet"))
			if err := ed.run(uri, sel, "Generate"); err != nil {
				t.Fatal(err)
			}
			msgs := ed.awaitEnded(1)
			want := "// greetHello, wörld\n😀!\nfunc main() {}\n"
			if got := ed.text(uri); got != want {
				t.Fatalf("text\n got %q\nwant %q", got, want)
			}
			if !strings.HasPrefix(msgs[0], "length: 6 tokens") {
				t.Errorf("progress end %q", msgs[0])
			}
			req, _ := srv.LastRequest()
			if got := req.JSON()["inputs"]; got != "// greet" {
				t.Errorf("prompt %q, want the selection", got)
			}
		})
	}
}

func TestGenerateHereAndLine(t *testing.T) { inEveryMode(t, testGenerateHereAndLine) }

func testGenerateHereAndLine(t *testing.T, mode editorMode) {
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "X", "Y"))
	ed := newFakeEditor(t, editorOptions{mode: mode, versioned: true, settings: tgiSettings(srv.URL)})
	doc := "abc\ndef\n"
	ed.open(uri, doc)
	cursor := rangeOf(encUTF16, doc, 5, 5) // d|ef

	titles := []string{}
	for _, a := range ed.codeActions(uri, cursor) {
		titles = append(titles, a.Title)
	}
	if strings.Join(titles, ",") != "Generate,Generate here,Write tests" {
		t.Fatalf("code actions at a cursor: %v", titles)
	}

	ed.run(uri, cursor, "Generate here")
	ed.awaitEnded(1)
	if got := ed.text(uri); got != "abc\ndXYef\n" {
		t.Fatalf("Generate here: %q", got)
	}
	if req, _ := srv.LastRequest(); req.JSON()["inputs"] != "abc\nd" {
		t.Errorf("Generate here prompt %q, want the text before the cursor", req.JSON()["inputs"])
	}

	// Generate with an empty range uses the cursor's line and writes after it.
	ed.run(uri, rangeOf(encUTF16, ed.text(uri), 1, 1), "Generate")
	ed.awaitEnded(2)
	if got := ed.text(uri); got != "abcXY\ndXYef\n" {
		t.Fatalf("Generate on a line: %q", got)
	}
	if req, _ := srv.LastRequest(); req.JSON()["inputs"] != "abc" {
		t.Errorf("line prompt %q", req.JSON()["inputs"])
	}
}

func TestFIMPrompt(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "1"))
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL, func(s map[string]any) {
		s["prompt"] = map[string]any{"fim": map[string]any{"prefix": "<PRE>", "suffix": "<SUF>", "middle": "<MID>"}}
	})})
	ed.open(uri, "x = \ny")
	ed.run(uri, rangeOf(encUTF16, "x = \ny", 4, 4), "Generate here")
	ed.awaitEnded(1)
	if req, _ := srv.LastRequest(); req.JSON()["inputs"] != "<PRE>x = <SUF>\ny<MID>" {
		t.Errorf("FIM prompt %q", req.JSON()["inputs"])
	}
	if got := ed.text(uri); got != "x = 1\ny" {
		t.Errorf("text %q", got)
	}
}

func TestPromptTemplate(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "!"))
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL, func(s map[string]any) {
		s["prompt"] = map[string]any{"template": "[{{.Language}} {{.FileName}}] {{.Selection}}"}
	})})
	ed.open(uri, "hi")
	ed.run(uri, rangeOf(encUTF16, "hi", 0, 2), "Generate")
	ed.awaitEnded(1)
	if req, _ := srv.LastRequest(); req.JSON()["inputs"] != "[go main.go] hi" {
		t.Errorf("templated prompt %q", req.JSON()["inputs"])
	}
}

func TestStopAndSpecialTokens(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGITokens(0, "stop_sequence",
		streamtest.TGIToken{Text: "<s>", Special: true}, streamtest.TGIToken{Text: "return 1"},
		streamtest.TGIToken{Text: "\n"}, streamtest.TGIToken{Text: "\n"}, streamtest.TGIToken{Text: "def"}))
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL, func(s map[string]any) {
		s["parameters"] = map[string]any{"stop_sequences": []string{"\n\n"}}
	})})
	ed.open(uri, "def f():\n    ")
	ed.run(uri, rangeOf(encUTF16, "def f():\n    ", 13, 13), "Generate here")
	msgs := ed.awaitEnded(1)
	if got := ed.text(uri); got != "def f():\n    return 1" {
		t.Fatalf("text %q", got)
	}
	if !strings.HasPrefix(msgs[0], "stop_sequence") {
		t.Errorf("end %q", msgs[0])
	}
}

// Positions count UTF-16 code units by default: an emoji before the
// insertion point is two units, and the edit must still land right after
// the selection. With utf-8 or utf-32 negotiated, the same holds in those
// units.
func TestAstralCharactersBeforeInsertion(t *testing.T) {
	t.Parallel()
	for _, enc := range []encoding{encUTF16, encUTF8, encUTF32} {
		t.Run(string(enc), func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "→", "ok"))
			ed := newFakeEditor(t, editorOptions{versioned: true, encodings: []string{string(enc)}, settings: tgiSettings(srv.URL)})
			doc := "😀𝄞 ab\n"
			ed.open(uri, doc)
			end := strings.Index(doc, "\n")
			ed.run(uri, rangeOf(enc, doc, len("😀𝄞 "), end), "Generate")
			ed.awaitEnded(1)
			if got := ed.text(uri); got != "😀𝄞 ab→ok\n" {
				t.Fatalf("text %q", got)
			}
		})
	}
}

func TestErrorsKeepTextSoFar(t *testing.T) { inEveryMode(t, testErrorsKeepTextSoFar) }

func testErrorsKeepTextSoFar(t *testing.T, mode editorMode) {
	two := streamtest.TGI(0, "length", "par", "tial", "never").Chunks[:2]
	tests := []struct {
		name    string
		script  streamtest.Script
		want    string
		message string
	}{
		{"401", streamtest.Error(401, `{"error":"Invalid token"}`), "", "none was sent (set HF_TOKEN"},
		{"mid-stream error", streamtest.Script{Chunks: append(two[:2:2], streamtest.Events(0, `{"error":"boom","error_type":"generation"}`)...)},
			"partial", "failed while generating: boom"},
		{"dropped connection", streamtest.Script{Chunks: two, Reset: true}, "partial", "dropped during the stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			ed := newFakeEditor(t, editorOptions{mode: mode, versioned: true, settings: tgiSettings(srv.URL)})
			ed.open(uri, "x")
			ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
			ed.awaitEnded(1)
			if got := ed.text(uri); got != "x"+tt.want {
				t.Fatalf("text %q, want %q", got, "x"+tt.want)
			}
			ed.await("an error message", func() bool { return contains(ed.shownMessages(), tt.message) })
			// The server still serves: the next generation works.
			srv.Push(streamtest.TGI(0, "length", "!"))
			ed.run(uri, rangeOf(encUTF16, ed.text(uri), 0, 1), "Generate")
			ed.awaitEnded(2)
			if got := ed.text(uri); got != "x!"+tt.want {
				t.Fatalf("after recovery: %q", got)
			}
		})
	}
}

func TestCancel(t *testing.T) { inEveryMode(t, testCancel) }

func testCancel(t *testing.T, mode editorMode) {
	for _, how := range []string{"command", "code action", "progress"} {
		t.Run(how, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b", "c").Chunks[:2], Hang: true})
			ed := newFakeEditor(t, editorOptions{mode: mode, versioned: true, settings: tgiSettings(srv.URL)})
			ed.open(uri, "q")
			ed.run(uri, rangeOf(encUTF16, "q", 0, 1), "Generate")
			ed.await("the first tokens", func() bool { return ed.text(uri) == "qab" })
			switch how {
			case "command":
				ed.call("workspace/executeCommand", map[string]any{"command": "genls.cancel"}, nil)
			case "code action":
				ed.run(uri, rangeOf(encUTF16, "qab", 0, 0), "Cancel generation")
			case "progress":
				ed.mu.Lock()
				var token string
				for tok := range ed.progress {
					token = tok
				}
				ed.mu.Unlock()
				ed.notify("window/workDoneProgress/cancel", map[string]any{"token": token})
			}
			if msgs := ed.awaitEnded(1); msgs[0] != "cancelled" {
				t.Errorf("end %q", msgs[0])
			}
			if !srv.WaitDisconnect(5 * time.Second) {
				t.Errorf("upstream request not closed")
			}
			if got := ed.text(uri); got != "qab" {
				t.Errorf("text %q", got)
			}
			for _, a := range ed.codeActions(uri, rangeOf(encUTF16, "qab", 0, 0)) {
				if a.Title == "Cancel generation" {
					t.Errorf("Cancel offered after the generation ended")
				}
			}
		})
	}
}

// The user types while text streams in: above the insertion point, on its
// line before it, and after it. Every edit of theirs stays, and the
// generated text lands contiguous at the right place.
func TestUserTypingDuringGeneration(t *testing.T) { inEveryMode(t, testUserTypingDuringGeneration) }

func testUserTypingDuringGeneration(t *testing.T, mode editorMode) {
	tokens := make([]string, 40)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("t%d ", i)
	}
	generated := strings.Join(tokens, "")
	tests := []struct {
		name string
		// typing returns where to type in the current text.
		typing func(text string) int
		want   func(typed string) string
	}{
		{"above", func(string) int { return 0 },
			func(typed string) string { return typed + "line1\nstart" + generated + "\nend" }},
		{"on the line before the insertion point", func(text string) int { return strings.Index(text, "start") },
			func(typed string) string { return "line1\n" + typed + "start" + generated + "\nend" }},
		{"below", func(text string) int { return len(text) },
			func(typed string) string { return "line1\nstart" + generated + "\nend" + typed }},
	}
	for _, versioned := range []bool{true, false} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/versioned=%v", tt.name, versioned), func(t *testing.T) {
				if !versioned && tt.name != "above" && tt.name != "below" {
					// Without versions an editor applies an edit computed
					// before the user's keystroke reached the server at the
					// old position; that is why genls sends versioned edits
					// to every client that accepts them.
					t.Skip("an unversioned editor cannot reject stale edits")
				}
				srv := streamtest.NewServer(t, streamtest.TGI(2*time.Millisecond, "length", tokens...))
				ed := newFakeEditor(t, editorOptions{mode: mode, versioned: versioned, settings: tgiSettings(srv.URL, func(s map[string]any) {
					s["parameters"] = map[string]any{"max_new_tokens": 100}
				})})
				doc := "line1\nstart\nend"
				ed.open(uri, doc)
				ed.run(uri, rangeOf(encUTF16, doc, 6, 11), "Generate")
				typed := ""
				for i := 0; i < 15; i++ {
					ed.typeWhere(uri, tt.typing, "k")
					typed += "k"
					time.Sleep(3 * time.Millisecond)
				}
				ed.awaitEnded(1)
				if got, want := ed.text(uri), tt.want(typed); got != want {
					t.Fatalf("text\n got %q\nwant %q", got, want)
				}
			})
		}
	}
}

func TestUserEditsInsideGeneratedText(t *testing.T) { inEveryMode(t, testUserEditsInsideGeneratedText) }

func testUserEditsInsideGeneratedText(t *testing.T, mode editorMode) {
	srv := streamtest.NewServer(t, streamtest.Script{Chunks: streamtest.TGI(0, "length", "abc", "def", "ghi").Chunks[:2], Hang: true})
	ed := newFakeEditor(t, editorOptions{mode: mode, versioned: true, settings: tgiSettings(srv.URL)})
	ed.open(uri, "x\n")
	ed.run(uri, rangeOf(encUTF16, "x\n", 0, 1), "Generate")
	ed.await("the first tokens", func() bool { return ed.text(uri) == "xabcdef\n" })
	ed.replace(uri, 2, 3, "Z") // xa[b]cdef
	msgs := ed.awaitEnded(1)
	if !strings.Contains(msgs[0], "edited") {
		t.Errorf("end %q", msgs[0])
	}
	ed.await("a message", func() bool { return contains(ed.shownMessages(), "the generated text was edited") })
	if !srv.WaitDisconnect(5 * time.Second) {
		t.Errorf("upstream not closed")
	}
	if got := ed.text(uri); got != "xaZcdef\n" {
		t.Errorf("text %q", got)
	}
}

func TestEditorRejectsEdits(t *testing.T) { inEveryMode(t, testEditorRejectsEdits) }

func testEditorRejectsEdits(t *testing.T, mode editorMode) {
	t.Run("transiently", func(t *testing.T) {
		srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "one", " two"))
		ed := newFakeEditor(t, editorOptions{mode: mode, versioned: true, rejectFirst: 2, settings: tgiSettings(srv.URL)})
		ed.open(uri, "0")
		ed.run(uri, rangeOf(encUTF16, "0", 0, 1), "Generate")
		ed.awaitEnded(1)
		if got := ed.text(uri); got != "0one two" {
			t.Fatalf("text %q", got)
		}
	})
	t.Run("always", func(t *testing.T) {
		srv := streamtest.NewServer(t, streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b").Chunks[:1], Hang: true})
		ed := newFakeEditor(t, editorOptions{mode: mode, versioned: true, rejectAlways: true, settings: tgiSettings(srv.URL)})
		ed.open(uri, "0")
		ed.run(uri, rangeOf(encUTF16, "0", 0, 1), "Generate")
		msgs := ed.awaitEnded(1)
		if !strings.Contains(msgs[0], "keeps rejecting edits") {
			t.Errorf("end %q", msgs[0])
		}
		if !srv.WaitDisconnect(5 * time.Second) {
			t.Errorf("upstream not closed")
		}
	})
	t.Run("never answers", func(t *testing.T) {
		srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "a"))
		ed := newFakeEditor(t, editorOptions{mode: mode, versioned: true, neverAnswer: true, settings: tgiSettings(srv.URL),
			limits: EditLimits{Timeout: 300 * time.Millisecond}})
		ed.open(uri, "0")
		ed.run(uri, rangeOf(encUTF16, "0", 0, 1), "Generate")
		ed.await("an error message", func() bool { return contains(ed.shownMessages(), "did not answer an edit") })
	})
}

func TestBurstIsCoalesced(t *testing.T) { inEveryMode(t, testBurstIsCoalesced) }

func testBurstIsCoalesced(t *testing.T, mode editorMode) {
	const n = 5000
	tokens := make([]string, n)
	var want strings.Builder
	for i := range tokens {
		tokens[i] = fmt.Sprintf("%d,", i)
		want.WriteString(tokens[i])
	}
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", tokens...))
	ed := newFakeEditor(t, editorOptions{mode: mode, versioned: true, editLatency: time.Millisecond, settings: tgiSettings(srv.URL, func(s map[string]any) {
		s["parameters"] = map[string]any{"max_new_tokens": n}
	})})
	ed.open(uri, "")
	ed.run(uri, protocol.Range{}, "Generate here")
	// An empty document has no prompt: nothing to generate from.
	ed.await("a message", func() bool { return contains(ed.shownMessages(), "nothing to generate from") })
	ed.open(uri, "go:")
	ed.run(uri, rangeOf(encUTF16, "go:", 3, 3), "Generate here")
	ed.awaitEnded(1)
	if got := ed.text(uri); got != "go:"+want.String() {
		t.Fatalf("text differs: len %d, want %d", len(got), len(want.String())+3)
	}
	ed.mu.Lock()
	edits := ed.edits
	ed.mu.Unlock()
	t.Logf("%d tokens in %d edits", n, edits)
	if edits >= n/4 {
		t.Errorf("%d edits for %d tokens: not coalesced", edits, n)
	}
}

func TestTwoGenerationsAtOnce(t *testing.T) { inEveryMode(t, testTwoGenerationsAtOnce) }

func testTwoGenerationsAtOnce(t *testing.T, mode editorMode) {
	srv := streamtest.NewServer(t, streamtest.TGI(time.Millisecond, "length", "1", "2", "3", "4", "5"))
	ed := newFakeEditor(t, editorOptions{mode: mode, versioned: true, settings: tgiSettings(srv.URL)})
	doc := "A\nB\n"
	ed.open(uri, doc)
	ed.open("file:///other.go", "C")
	ed.run(uri, rangeOf(encUTF16, doc, 0, 1), "Generate")
	ed.run(uri, rangeOf(encUTF16, doc, 2, 3), "Generate")
	ed.run("file:///other.go", rangeOf(encUTF16, "C", 0, 1), "Generate")
	ed.awaitEnded(3)
	if got := ed.text(uri); got != "A12345\nB12345\n" {
		t.Errorf("text %q", got)
	}
	if got := ed.text("file:///other.go"); got != "C12345" {
		t.Errorf("other %q", got)
	}
}

func TestShutdownMidStream(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b").Chunks[:1], Hang: true})
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)})
	ed.open(uri, "x")
	ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
	ed.await("the first token", func() bool { return ed.text(uri) == "xa" })
	if err := ed.call("shutdown", nil, nil); err != nil {
		t.Fatal(err)
	}
	if !srv.WaitDisconnect(5 * time.Second) {
		t.Errorf("upstream not closed on shutdown")
	}
	ed.notify("exit", nil)
	select {
	case err := <-ed.served:
		if err != nil {
			t.Errorf("Serve after shutdown+exit = %v, want nil", err)
		}
		ed.served <- err
	case <-time.After(5 * time.Second):
		t.Fatal("server did not exit")
	}
	if got := ed.text(uri); got != "xa" {
		t.Errorf("text %q", got)
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "ok"))
	good := tgiSettings(srv.URL)
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: good})
	ed.open(uri, "x")

	// A bad setting is reported by name and the old settings stay.
	ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"genls": map[string]any{
		"endpoint": map[string]any{"url": srv.URL, "backend": "tgi"}, "parameters": map[string]any{"max_new_tokens": "many"}}}})
	ed.await("a message naming the key", func() bool { return contains(ed.shownMessages(), "parameters.max_new_tokens") })
	ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"endpoint": map[string]any{"backend": "gpt"}}})
	ed.await("a message naming the key", func() bool { return contains(ed.shownMessages(), "endpoint.backend") })

	ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
	ed.awaitEnded(1)
	if got := ed.text(uri); got != "xok" {
		t.Fatalf("text %q: the previous settings were not kept", got)
	}

	// The pull model: didChangeConfiguration with null settings makes the
	// server ask; a null answer keeps the settings.
	ed.mu.Lock()
	ed.config = nil
	ed.mu.Unlock()
	asked := ed.configRequests()
	ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": nil})
	ed.await("the server to ask for the configuration", func() bool { return ed.configRequests() > asked })
	ed.run(uri, rangeOf(encUTF16, "xok", 0, 1), "Generate")
	ed.awaitEnded(2)
	if got := ed.text(uri); got != "xokok" {
		t.Fatalf("text %q after a null configuration", got)
	}
	// A real answer is applied.
	srv2 := streamtest.NewServer(t, streamtest.TGI(0, "length", "2"))
	ed.mu.Lock()
	ed.config = tgiSettings(srv2.URL)
	ed.mu.Unlock()
	ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": nil})
	ed.await("the new settings", func() bool {
		ed.run(uri, rangeOf(encUTF16, ed.text(uri), 0, 0), "Generate")
		time.Sleep(20 * time.Millisecond)
		return strings.Contains(ed.text(uri), "2")
	})
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ed := newFakeEditor(t, editorOptions{})
	var res any
	if err := ed.call("initialize", map[string]any{"capabilities": map[string]any{}}, &res); err == nil {
		t.Errorf("second initialize accepted")
	}
	if err := ed.call("textDocument/hover", map[string]any{}, &res); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("unknown method: %v", err)
	}
	// Notifications about unknown documents are ignored, not fatal.
	ed.notify("textDocument/didChange", map[string]any{"textDocument": map[string]any{"uri": "file:///nope", "version": 2},
		"contentChanges": []any{map[string]any{"text": "x"}}})
	if err := ed.call("workspace/executeCommand", map[string]any{"command": "genls.generate",
		"arguments": []any{map[string]any{"uri": "file:///nope", "range": protocol.Range{}}}}, nil); err == nil {
		t.Errorf("generate in an unopened document accepted")
	}
	if err := ed.call("workspace/executeCommand", map[string]any{"command": "genls.generate", "arguments": []any{}}, nil); err == nil {
		t.Errorf("generate without arguments accepted")
	}
	ed.notify("exit", nil)
	select {
	case err := <-ed.served:
		if err != ErrExitWithoutShutdown {
			t.Errorf("exit without shutdown: %v", err)
		}
		ed.served <- err
	case <-time.After(5 * time.Second):
		t.Fatal("server did not exit")
	}
}

// With a chat backend the selection is the user message under the system
// prompt, and the code fence around the reply does not reach the file.
func TestChatBackendStripsFence(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.OpenAIChat(0, "stop", "```python\n", "    return a", " + b\n", "```"))
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: map[string]any{
		"endpoint": map[string]any{"url": srv.URL + "/v1", "model": "qwen"},
		"prompt":   map[string]any{"system": "Only code."},
	}})
	doc := "def add(a, b):\n"
	ed.open(uri, doc)
	ed.run(uri, rangeOf(encUTF16, doc, 0, len(doc)), "Generate")
	ed.awaitEnded(1)
	if got := ed.text(uri); got != doc+"    return a + b\n" {
		t.Fatalf("text %q", got)
	}
	req, _ := srv.LastRequest()
	if req.Path != "/v1/chat/completions" {
		t.Errorf("path %s", req.Path)
	}
	msgs := req.JSON()["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["content"] != "Only code." || msgs[1].(map[string]any)["content"] != doc {
		t.Errorf("messages %v", msgs)
	}
}

// A settings change that moves the endpoint to another host does not take
// the token there unless the user agrees.
func TestTokenNeverMovesHostSilently(t *testing.T) {
	t.Parallel()
	for _, answer := range []string{"Send token", ""} {
		t.Run(fmt.Sprintf("answer=%q", answer), func(t *testing.T) {
			home := streamtest.NewServer(t, streamtest.TGI(0, "length", "home"))
			other := streamtest.NewServer(t, streamtest.TGI(0, "length", "other"))
			// Both servers are on 127.0.0.1; "localhost" names another host.
			otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
			settings := func(url string) map[string]any {
				return map[string]any{"endpoint": map[string]any{"url": url, "backend": "tgi", "token": "hf_secret"}}
			}
			logger, logged := bufferLogger()
			ed := newFaultyEditor(t, editorOptions{versioned: true, answer: answer, settings: settings(home.URL)}, logger)
			ed.open(uri, "x")
			ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": settings(otherURL)})
			ed.await("the question", func() bool { return contains(ed.shownMessages(), "Send your API token to localhost") })
			if answer == "" {
				ed.await("the refusal", func() bool { return contains(ed.shownMessages(), "the token was not sent") })
			} else {
				ed.await("the new settings", func() bool { return strings.Count(logged.String(), "settings applied") == 2 })
			}
			ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
			ed.awaitEnded(1)
			want, got := "xother", ed.text(uri)
			if answer == "" {
				want = "xhome"
				if len(other.Requests()) != 0 {
					t.Errorf("the other host received %d requests", len(other.Requests()))
				}
			}
			if got != want {
				t.Errorf("text %q, want %q", got, want)
			}
		})
	}
}

// Settings edited one after another while the token question is open (the
// URL, then the model, then the backend) are one question, whose answer
// applies to the last of them.
func TestOneConsentQuestionPerSettingsChange(t *testing.T) {
	t.Parallel()
	home := streamtest.NewServer(t, streamtest.TGI(0, "length", "home"))
	other := streamtest.NewServer(t, streamtest.TGI(0, "length", "other"))
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	settings := func(url, model string) map[string]any {
		return map[string]any{"endpoint": map[string]any{"url": url, "backend": "tgi", "model": model, "token": "hf_secret"}}
	}
	logger, logged := bufferLogger()
	ed := newFaultyEditor(t, editorOptions{versioned: true, answer: "Send token", answerDelay: 300 * time.Millisecond,
		settings: settings(home.URL, "")}, logger)
	ed.open(uri, "x")
	for _, model := range []string{"", "m1", "m2"} {
		ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": settings(otherURL, model)})
	}
	ed.await("the new settings", func() bool { return strings.Count(logged.String(), "settings applied") == 2 })
	if n := strings.Count(strings.Join(ed.shownMessages(), "\n"), "Send your API token"); n != 1 {
		t.Errorf("asked %d times, want once", n)
	}
	if !strings.Contains(logged.String(), `"model":"m2"`) {
		t.Errorf("the last settings were not applied: %s", logged.String())
	}
	// Away and back to the trusted host before the answer: the question
	// no longer matters, and its answer does not move the token.
	ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": settings(home.URL, "")})
	ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": settings(otherURL, "m3")})
	ed.await("the m3 settings", func() bool { return strings.Contains(logged.String(), `"model":"m3"`) })
	ed.await("the answer ignored", func() bool { return strings.Contains(logged.String(), "answer ignored") })
	if n := strings.Count(logged.String(), "settings applied"); n != 3 {
		t.Errorf("settings applied %d times, want 3 (the answer to a stale question applied): %s", n, logged.String())
	}
}

func TestLogFileSetting(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	ed := newFakeEditor(t, editorOptions{settings: map[string]any{"log": map[string]any{"file": "/tmp/genls-test.log", "level": "debug"}},
		setLogFile: func(p string) error { got <- p; return nil }})
	select {
	case p := <-got:
		if p != "/tmp/genls-test.log" {
			t.Errorf("log file %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("log.file not applied")
	}
	_ = ed
}

func TestCheckSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		want string // "" for accepted
	}{
		{`{"endpoint":{"url":"http://127.0.0.1:8080","backend":"tgi"},"parameters":{"max_new_tokens":64,"stop_sequences":["\n"]}}`, ""},
		{`{"genls":{"endpoint":{"url":"http://h:1"}}}`, ""},
		{`{"parameters":{"truncate":1000}}`, ""},
		{`{"parameters":{"truncate":0}}`, "truncate must be positive"},
		{`{"endpoint":{"url":"http://h:1"},"parameters":{"max_new_token":64}}`, "parameters.max_new_token"},
		{`{"endpont":{"url":"http://h:1"}}`, "endpont"},
		{`{"endpoint":{"url":"ftp://h"}}`, "endpoint.url"},
		{`{"parameters":{"top_p":"high"}}`, "parameters.top_p"},
		{`{"prompt":{"fim":{"prefix":"<p>"}}}`, "prompt.fim"},
		{`{"prompt":{"template":"{{.Nope"}}`, "prompt.template"},
	}
	for _, tt := range tests {
		err := CheckSettings([]byte(tt.raw))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.raw, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: err %v, want one naming %s", tt.raw, err, tt.want)
		}
	}
}

func TestUnknownSettingIsReported(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "ok"))
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: map[string]any{
		"endpoint": map[string]any{"url": srv.URL, "backend": "tgi"}, "parameters": map[string]any{"max_new_token": 5}}})
	ed.await("a warning", func() bool { return contains(ed.shownMessages(), "unknown setting parameters.max_new_token (ignored)") })
	ed.open(uri, "x")
	ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
	ed.awaitEnded(1)
	if got := ed.text(uri); got != "xok" {
		t.Errorf("text %q: the known settings were not applied", got)
	}
}

// didChange notifications must be applied in wire order: a burst of typing
// leaves the server with exactly the editor's text (the prompt shows it).
func TestDidChangeAppliedInWireOrder(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "!"))
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)})
	ed.open(uri, "")
	for i := 0; i < 500; i++ {
		text := ed.text(uri)
		ed.typeAt(uri, len(text), string(rune('a'+i%26)))
		if i%50 == 49 {
			ed.typeAt(uri, len(ed.text(uri)), "\n")
		}
	}
	text := ed.text(uri)
	ed.run(uri, rangeOf(encUTF16, text, 0, len(text)), "Generate")
	ed.awaitEnded(1)
	req, _ := srv.LastRequest()
	if got := req.JSON()["inputs"]; got != text {
		t.Fatalf("the server saw\n%q\nthe editor has\n%q", got, text)
	}
}
