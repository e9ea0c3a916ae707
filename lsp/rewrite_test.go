package lsp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/genls/genls/stream/streamtest"
)

// rewriteMarks returns the codes of uri's genls diagnostics with the text
// each covers, and whether the original's is tagged Deprecated.
func (e *fakeEditor) rewriteMarks(uri string) (codes []string, deprecated bool) {
	texts := e.markedText(uri)
	for i, m := range e.marks(uri) {
		codes = append(codes, fmt.Sprintf("%v=%q", m.Code, texts[i]))
		if m.Code == codeOriginal {
			deprecated = len(m.Tags) == 1 && m.Tags[0] == 2
		}
	}
	return codes, deprecated
}

// Rewrite: the new text streams in after the selection, the original stays
// marked for removal; Accept removes the original, Discard the new text
// (the original byte for byte as it was), Regenerate tries again.
func TestRewrite(t *testing.T) { inEveryMode(t, testRewrite) }

func testRewrite(t *testing.T, mode editorMode) {
	for _, eol := range []string{"\n", "\r\n"} {
		for _, finish := range []string{"accept", "discard", "regenerate"} {
			t.Run(fmt.Sprintf("eol=%q/%s", eol, finish), func(t *testing.T) {
				// A chat-style reply: preamble, fence, code, fence.
				reply := []string{"Here is the rewritten code:\n", "```go\n", "func f() {\n", "\treturn 2\n", "}\n", "```"}
				srv := streamtest.NewServer(t, streamtest.TGI(time.Millisecond, "length", reply...))
				ed := newFakeEditor(t, editorOptions{mode: mode, versioned: true, settings: tgiSettings(srv.URL)})
				nl := func(s string) string { return strings.ReplaceAll(s, "\n", eol) }
				doc := nl("package p\n\nfunc f() {\n\treturn 1 \n}\n\n// end\n")
				original := nl("func f() {\n\treturn 1 \n}\n")
				rewritten := nl("func f() {\n\treturn 2\n}\n")
				a := strings.Index(doc, original)
				b := a + len(original)
				ed.open(uri, doc)
				err := ed.call("workspace/executeCommand", map[string]any{"command": "genls.generate", "arguments": []any{
					map[string]any{"uri": uri, "range": rangeOf(encUTF16, doc, a, b), "mode": "rewrite", "instruction": "return 2"}}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				ed.awaitEnded(1)
				want := doc[:b] + rewritten + doc[b:]
				ed.await("the rewrite after the original", func() bool { return ed.text(uri) == want })
				ed.await("both marks", func() bool {
					codes, deprecated := ed.rewriteMarks(uri)
					return deprecated && strings.Join(codes, " ") == fmt.Sprintf("genls.original=%q genls.pending=%q", original, rewritten)
				})
				req, _ := srv.LastRequest()
				prompt := fmt.Sprint(req.JSON()["inputs"])
				if !strings.HasPrefix(prompt, "return 2\n") || !strings.Contains(prompt, "```go\nfunc f() {\n\treturn 1 \n}\n```") {
					t.Errorf("prompt %q: want the instruction first and the original", prompt)
				}
				inside := rangeOf(encUTF16, want, b+3, b+3)
				switch finish {
				case "accept":
					ed.run(uri, inside, "Accept generation")
					ed.await("the original removed", func() bool { return ed.text(uri) == doc[:a]+rewritten+doc[b:] })
				case "discard":
					ed.run(uri, rangeOf(encUTF16, want, a+1, a+1), "Discard generation") // from inside the original
					ed.await("the document as it was", func() bool { return ed.text(uri) == doc })
				case "regenerate":
					srv.Push(streamtest.TGI(0, "length", "```\n", "func f() { return 3 }\n", "```\n"))
					ed.run(uri, inside, "Regenerate")
					ed.awaitEnded(2)
					again := nl("func f() { return 3 }\n")
					ed.await("the new rewrite", func() bool { return ed.text(uri) == doc[:b]+again+doc[b:] })
					ed.await("both marks again", func() bool {
						codes, _ := ed.rewriteMarks(uri)
						return strings.Join(codes, " ") == fmt.Sprintf("genls.original=%q genls.pending=%q", original, again)
					})
					// The original still follows the document's changes.
					ed.typeAt(uri, 0, "// top"+eol)
					ed.exec(cmdAccept)
					ed.await("the original removed", func() bool { return ed.text(uri) == "// top"+eol+doc[:a]+again+doc[b:] })
				}
				ed.await("marks cleared", func() bool { return len(ed.marks(uri)) == 0 })
			})
		}
	}
}

// A rewrite whose reply lacks the final line break still ends its line,
// and one the user accepts during the stream replaces the original when it
// ends.
func TestRewriteEndsLinesAndAcceptsWhileRunning(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(2*time.Millisecond, "length", "B", "B"))
	ed := newFakeEditor(t, editorOptions{mode: modeVSCode, versioned: true, settings: tgiSettings(srv.URL)})
	ed.open(uri, "aa\nzz\n")
	if err := ed.call("workspace/executeCommand", map[string]any{"command": "genls.generate", "arguments": []any{
		map[string]any{"uri": uri, "range": rangeOf(encUTF16, "aa\nzz\n", 0, 3), "mode": "rewrite"}}}, nil); err != nil {
		t.Fatal(err)
	}
	ed.exec(cmdAccept)
	ed.awaitEnded(1)
	ed.await("the rewrite in place of the original", func() bool { return ed.text(uri) == "BB\nzz\n" })
	ed.await("marks cleared", func() bool { return len(ed.marks(uri)) == 0 })
}

func TestRewriteNeedsASelection(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "x"))
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)})
	ed.open(uri, "abc")
	err := ed.call("workspace/executeCommand", map[string]any{"command": "genls.generate", "arguments": []any{
		map[string]any{"uri": uri, "range": rangeOf(encUTF16, "abc", 1, 1), "mode": "rewrite"}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "select the text to rewrite") {
		t.Errorf("rewrite at a cursor: %v", err)
	}
	if got := titles(ed.codeActions(uri, rangeOf(encUTF16, "abc", 1, 1))); strings.Contains(got, "Rewrite") {
		t.Errorf("Rewrite offered at a cursor: %s", got)
	}
	if got := titles(ed.codeActions(uri, rangeOf(encUTF16, "abc", 0, 2))); !strings.Contains(got, "Rewrite") {
		t.Errorf("Rewrite not offered on a selection: %s", got)
	}
}

// Named actions: offered by title for their languages and ranges, each
// with its own instruction, parameters and endpoint; a bad entry is
// reported by name and the others work; no setting means the defaults.
func TestNamedActions(t *testing.T) {
	t.Parallel()
	main := streamtest.NewServer(t, streamtest.TGI(0, "length", "M"))
	other := streamtest.NewServer(t, streamtest.TGI(0, "length", "O"))
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	settings := tgiSettings(main.URL, func(s map[string]any) {
		s["parameters"] = map[string]any{"temperature": 0.5, "max_new_tokens": 10}
		s["actions"] = []any{
			map[string]any{"title": "Explain", "mode": "insert", "instruction": "Explain this.", "languages": []any{"go"},
				"parameters": map[string]any{"max_new_tokens": 99}},
			map[string]any{"title": "Elsewhere", "endpoint": map[string]any{"url": otherURL, "backend": "tgi"}},
			map[string]any{"title": "Python only", "languages": []any{"python"}},
			map[string]any{"title": "Broken", "mode": "sideways"},
			map[string]any{"mode": "insert"},
			"not an object",
			map[string]any{"title": "Tidy", "mode": "rewrite", "template": "TIDY {{.Selection}} {{.Instruction}}"},
		}
	})
	// The token comes from the environment, as most users set it.
	env := func(k string) string {
		if k == "HF_TOKEN" {
			return "hf_secret"
		}
		return ""
	}
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: settings, getenv: env})
	ed.open(uri, "x := 1\n")
	for _, want := range []string{`actions[3] ("Broken")`, "actions[4]: title is required", "actions[5]"} {
		ed.await("a report of "+want, func() bool { return contains(ed.shownErrors(), want) })
	}
	sel := rangeOf(encUTF16, "x := 1\n", 0, 6)
	if got := titles(ed.codeActions(uri, sel)); got != "Generate,Rewrite,Explain,Elsewhere,Tidy" {
		t.Fatalf("code actions: %s", got)
	}
	if got := titles(ed.codeActions(uri, rangeOf(encUTF16, "x := 1\n", 2, 2))); got != "Generate,Generate here,Explain,Elsewhere" {
		t.Errorf("code actions at a cursor: %s", got)
	}

	ed.run(uri, sel, "Explain")
	ed.awaitEnded(1)
	req, _ := main.LastRequest()
	params, _ := req.JSON()["parameters"].(map[string]any)
	if req.JSON()["inputs"] != "Explain this.\n\nx := 1" || fmt.Sprint(params["max_new_tokens"]) != "99" || fmt.Sprint(params["temperature"]) != "0.5" {
		t.Errorf("Explain sent %v", req.JSON())
	}
	if req.Header.Get("Authorization") != "Bearer hf_secret" {
		t.Errorf("the main endpoint did not get the token")
	}

	ed.run(uri, sel, "Elsewhere")
	ed.awaitEnded(2)
	oreq, ok := other.LastRequest()
	if !ok {
		t.Fatalf("the action's endpoint got no request")
	}
	if h := oreq.Header.Get("Authorization"); h != "" {
		t.Errorf("the token went to the action's other host: %q", h)
	}

	ed.run(uri, sel, "Tidy")
	ed.awaitEnded(3)
	if req, _ := main.LastRequest(); req.JSON()["inputs"] != "TIDY x := 1 " {
		t.Errorf("Tidy's template: %v", req.JSON()["inputs"])
	}
}

func TestDefaultActions(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "x"))
	for _, tt := range []struct {
		actions any
		want    string
	}{
		{nil, "Generate,Rewrite,Add documentation comment,Fix bugs,Write tests"},
		{[]any{}, "Generate,Rewrite"},
	} {
		settings := tgiSettings(srv.URL)
		if tt.actions != nil {
			settings["actions"] = tt.actions
		}
		ed := newFakeEditor(t, editorOptions{versioned: true, settings: settings})
		ed.open(uri, "abc")
		if got := titles(ed.codeActions(uri, rangeOf(encUTF16, "abc", 0, 2))); got != tt.want {
			t.Errorf("actions %v: %s, want %s", tt.actions, got, tt.want)
		}
	}
}
