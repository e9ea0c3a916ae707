package lsp

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/genls/genls/stream/streamtest"
)

// wireInline is an inline completion list as the client reads it.
type wireInline struct {
	Items []struct {
		InsertText string          `json:"insertText"`
		Range      *protocol.Range `json:"range"`
	} `json:"items"`
}

// inlineRequest is an inline completion request in flight.
type inlineRequest struct {
	id   json.RawMessage
	done chan struct{}
	res  wireInline
	err  error
}

// askInline sends textDocument/inlineCompletion at offset off of uri's
// text and returns at once; automatic says how it was triggered.
func (e *fakeEditor) askInline(uri string, off int, automatic bool) *inlineRequest {
	e.t.Helper()
	e.mu.Lock()
	pos := fakePosition(e.docs[uri].text, off, e.enc())
	e.mu.Unlock()
	kind := protocol.InlineCompletionTriggerKindInvoked
	if automatic {
		kind = protocol.InlineCompletionTriggerKindAutomatic
	}
	r := &inlineRequest{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = e.call(methodInlineCompletion, map[string]any{
			"textDocument": map[string]any{"uri": uri}, "position": pos,
			"context": map[string]any{"triggerKind": kind}}, &r.res)
	}()
	select {
	case r.id = <-e.inlineIDs:
	case <-time.After(5 * time.Second):
		e.t.Fatal("inline completion request not sent")
	}
	return r
}

// wait waits for the answer.
func (r *inlineRequest) wait(t testing.TB) (wireInline, error) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to textDocument/inlineCompletion")
	}
	return r.res, r.err
}

// inline asks for the completion at off and returns its text ("" for
// none), failing the test on an error or an item not at the cursor.
func (e *fakeEditor) inline(uri string, off int) string {
	e.t.Helper()
	res, err := e.askInline(uri, off, false).wait(e.t)
	if err != nil {
		e.t.Fatalf("inline completion: %v", err)
	}
	switch len(res.Items) {
	case 0:
		return ""
	case 1:
	default:
		e.t.Fatalf("%d items, want at most 1", len(res.Items))
	}
	it := res.Items[0]
	e.mu.Lock()
	want := fakePosition(e.docs[uri].text, off, e.enc())
	e.mu.Unlock()
	if it.Range == nil || it.Range.Start != want || it.Range.End != want {
		e.t.Errorf("range %v, want the empty range at %v", it.Range, want)
	}
	return it.InsertText
}

// completionSettings is tgiSettings with a completion section.
func withCompletion(c map[string]any) func(map[string]any) {
	return func(s map[string]any) { s["completion"] = c }
}

func withFIMPreset(name string) func(map[string]any) {
	return func(s map[string]any) { s["prompt"] = map[string]any{"fim": map[string]any{"preset": name}} }
}

func TestInlineCompletionPrompt(t *testing.T) {
	t.Parallel()
	const doc = "def add(a, b):\n    \n\nprint(add(1, 2))\n"
	at := strings.Index(doc, "    \n") + 4
	cases := []struct {
		name     string
		settings func(url string) map[string]any
		info     string // TGI's /info, naming the model
		want     string // the request's inputs
	}{
		{"plain continuation", func(u string) map[string]any { return tgiSettings(u) }, `{"model_id":"gpt2"}`,
			"def add(a, b):\n    "},
		{"model recognised", func(u string) map[string]any { return tgiSettings(u) }, `{"model_id":"bigcode/starcoder2-3b"}`,
			"<fim_prefix>def add(a, b):\n    <fim_suffix>\n\nprint(add(1, 2))\n<fim_middle>"},
		{"preset named", func(u string) map[string]any { return tgiSettings(u, withFIMPreset("starcoder")) }, `{"model_id":"my-model"}`,
			"<fim_prefix>def add(a, b):\n    <fim_suffix>\n\nprint(add(1, 2))\n<fim_middle>"},
		{"explicit tokens", func(u string) map[string]any {
			return tgiSettings(u, func(s map[string]any) {
				s["prompt"] = map[string]any{"fim": map[string]any{"prefix": "<P>", "suffix": "<S>", "middle": "<M>"}}
			})
		}, `{"model_id":"bigcode/starcoder2-3b"}`, "<P>def add(a, b):\n    <S>\n\nprint(add(1, 2))\n<M>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.TGI(0, "eos_token", "return a + b")).Route("/info", c.info)
			ed := newFakeEditor(t, editorOptions{settings: c.settings(srv.URL)})
			ed.open(uri, doc)
			if got := ed.inline(uri, at); got != "return a + b" {
				t.Errorf("completion %q", got)
			}
			req, _ := srv.LastRequest()
			if got := req.JSON()["inputs"]; got != c.want {
				t.Errorf("prompt %q, want %q", got, c.want)
			}
		})
	}
}

// A chat endpoint with a known fill-in-the-middle format gets the prompt
// raw, on its completions route; one without gets no request unless
// completion is turned on, and then a chat request.
func TestInlineCompletionChatEndpoint(t *testing.T) {
	t.Parallel()
	completionsEvent := func(text string) string {
		b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "text": text}}})
		return string(b)
	}
	t.Run("fim", func(t *testing.T) {
		srv := streamtest.NewServer(t, streamtest.Script{Chunks: streamtest.Events(0, completionsEvent("x + 1"), "[DONE]")})
		ed := newFakeEditor(t, editorOptions{settings: map[string]any{
			"endpoint": map[string]any{"url": srv.URL + "/v1", "backend": "openai", "model": "qwen2.5-coder:1.5b"},
			"prompt":   map[string]any{"fim": map[string]any{"preset": "starcoder"}}}})
		ed.open(uri, "y = ")
		if got := ed.inline(uri, 4); got != "x + 1" {
			t.Errorf("completion %q", got)
		}
		req, _ := srv.LastRequest()
		if req.Path != "/v1/completions" || req.JSON()["prompt"] != "<fim_prefix>y = <fim_suffix><fim_middle>" {
			t.Errorf("request %s %s", req.Path, req.Body)
		}
	})
	t.Run("no fim", func(t *testing.T) {
		srv := streamtest.NewServer(t, streamtest.OpenAIChat(0, "stop", "x"))
		ed := newFakeEditor(t, editorOptions{settings: map[string]any{
			"endpoint": map[string]any{"url": srv.URL + "/v1", "backend": "openai", "model": "gpt-4o"}}})
		ed.open(uri, "y = ")
		if got := ed.inline(uri, 4); got != "" {
			t.Errorf("completion %q from a chat model without FIM", got)
		}
		if n := len(srv.Requests()); n != 0 {
			t.Errorf("%d requests", n)
		}
	})
	t.Run("chat turned on", func(t *testing.T) {
		srv := streamtest.NewServer(t, streamtest.OpenAIChat(0, "stop", "```python\n", "x + 1\n", "```"))
		ed := newFakeEditor(t, editorOptions{settings: map[string]any{
			"endpoint":   map[string]any{"url": srv.URL + "/v1", "backend": "openai", "model": "gpt-4o"},
			"completion": map[string]any{"enabled": true}}})
		ed.open(uri, "y = ")
		if got := ed.inline(uri, 4); got != "x + 1" {
			t.Errorf("completion %q", got)
		}
		req, _ := srv.LastRequest()
		if msgs, _ := req.JSON()["messages"].([]any); req.Path != "/v1/chat/completions" || len(msgs) != 2 ||
			msgs[1].(map[string]any)["content"] != "```go\ny = <CURSOR>\n```" {
			t.Errorf("request %s %s", req.Path, req.Body)
		}
	})
}

// With text after the cursor on its line, a completion ends with the line;
// without, it may take max_lines lines, cut at a line break, spelt with the
// document's line breaks.
func TestInlineCompletionLines(t *testing.T) { inEveryMode(t, testInlineCompletionLines) }

func testInlineCompletionLines(t *testing.T, mode editorMode) {
	cases := []struct {
		name   string
		doc    string
		at     string // the cursor is before the first occurrence
		tokens []string
		reason string
		lines  int // completion.max_lines, 0 for the default
		want   string
		stop   bool // "\n" is among the request's stop sequences
	}{
		{"single line", "f(x, )\n", ")", []string{"y", ", z\nmore"}, "eos_token", 0, "y, z", true},
		{"rest of the line not repeated", "f(x, )\n", ")", []string{"y)"}, "eos_token", 0, "y", true},
		{"only spaces after the cursor", "if x:  \n", "  \n", []string{"\n    a\n", "    b\n"}, "eos_token", 0, "\n    a\n    b", false},
		{"max lines", "x = 1\n", "\n", []string{"\na\nb", "\nc\n", "d\n"}, "eos_token", 2, "\na", false},
		{"default max lines", "", "", []string{"1\n2\n3\n4\n5\n6\n"}, "eos_token", 0, "1\n2\n3\n4", false},
		{"cut short by the token limit", "", "", []string{"a = 1\n", "b = f("}, "length", 0, "a = 1", false},
		{"crlf document", "x\r\n", "\r\n", []string{"\r\na\r", "\nb\n", "c\n"}, "eos_token", 3, "\na\nb", false},
		{"one line cut short is kept", "", "", []string{"a = f("}, "length", 0, "a = f(", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.TGI(0, c.reason, c.tokens...)).Route("/info", `{"model_id":"gpt2"}`)
			completion := map[string]any{}
			if c.lines > 0 {
				completion["max_lines"] = c.lines
			}
			ed := newFakeEditor(t, editorOptions{mode: mode, settings: tgiSettings(srv.URL, withCompletion(completion))})
			ed.open(uri, c.doc)
			at := len(c.doc)
			if c.at != "" {
				at = strings.Index(c.doc, c.at)
			}
			if got := ed.inline(uri, at); got != c.want {
				t.Errorf("completion %q, want %q", got, c.want)
			}
			req, _ := srv.LastRequest()
			stops, _ := req.JSON()["parameters"].(map[string]any)["stop"].([]any)
			if hasNL := contains(anyStrings(stops), "\n"); hasNL != c.stop {
				t.Errorf("stop sequences %q", stops)
			}
		})
	}
}

func anyStrings(v []any) []string {
	var out []string
	for _, x := range v {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// $/cancelRequest closes the upstream request at once and answers
// RequestCancelled.
func TestInlineCompletionCancelRequest(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, hanging()).Route("/info", `{"model_id":"gpt2"}`)
	ed := newFakeEditor(t, editorOptions{settings: tgiSettings(srv.URL)})
	ed.open(uri, "x = ")
	r := ed.askInline(uri, 4, false)
	if !srv.WaitRequests(1, 5*time.Second) {
		t.Fatal("no upstream request")
	}
	ed.notify("$/cancelRequest", map[string]any{"id": r.id})
	if !srv.WaitDisconnect(2 * time.Second) {
		t.Error("the upstream request stayed open after $/cancelRequest")
	}
	_, err := r.wait(t)
	var rpcErr *jsonrpc2.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != jsonrpc2.Code(protocol.LSPErrorCodesRequestCancelled) {
		t.Errorf("answer %v, want RequestCancelled", err)
	}
	// The server still completes.
	srv.Push(streamtest.TGI(0, "eos_token", "1"))
	if got := ed.inline(uri, 4); got != "1" {
		t.Errorf("next completion %q", got)
	}
}

// A newer request for the same document closes the older one's upstream
// request; the older is answered with no item.
func TestInlineCompletionSuperseded(t *testing.T) {
	t.Parallel()
	hang := hanging()
	srv := completionEndpoint(t, "2")
	srv.Push(hang)
	ed := newFakeEditor(t, editorOptions{settings: tgiSettings(srv.URL)})
	ed.open(uri, "x = ")
	ed.open("file:///other.go", "y = ")
	first := ed.askInline(uri, 4, false)
	if !srv.WaitRequests(1, 5*time.Second) {
		t.Fatal("no upstream request")
	}
	// Another document's request leaves it running.
	srv.Push(streamtest.TGI(0, "eos_token", "3"))
	if got := ed.inline("file:///other.go", 4); got != "3" {
		t.Errorf("other document's completion %q", got)
	}
	select {
	case <-first.done:
		t.Fatalf("another document's request ended the first: %+v %v", first.res, first.err)
	default:
	}
	ed.typeAt(uri, 4, "1")
	if got := ed.inline(uri, 5); got != "2" {
		t.Errorf("newer completion %q", got)
	}
	res, err := first.wait(t)
	if err != nil || len(res.Items) != 0 {
		t.Errorf("superseded request answered %v, %v; want no item", res, err)
	}
	if !srv.WaitDisconnect(2 * time.Second) {
		t.Error("the superseded upstream request stayed open")
	}
}

// Typing the characters the completion predicted answers with the rest of
// it, with no new request; anything else asks again.
func TestInlineCompletionCache(t *testing.T) { inEveryMode(t, testInlineCompletionCache) }

func testInlineCompletionCache(t *testing.T, mode editorMode) {
	srv := streamtest.NewServer(t, streamtest.TGI(0, "eos_token", "print", "(x)")).Route("/info", `{"model_id":"gpt2"}`)
	ed := newFakeEditor(t, editorOptions{mode: mode, settings: tgiSettings(srv.URL)})
	ed.open(uri, "x = 1\n")
	end := len("x = 1\n")
	if got := ed.inline(uri, end); got != "print(x)" {
		t.Fatalf("completion %q", got)
	}
	ed.typeAt(uri, end, "pri")
	if got := ed.inline(uri, end+3); got != "nt(x)" {
		t.Errorf("after typing its start: %q", got)
	}
	ed.typeAt(uri, end+3, "nt(")
	if got := ed.inline(uri, end+6); got != "x)" {
		t.Errorf("after typing more: %q", got)
	}
	if n := generations(srv); n != 1 {
		t.Errorf("%d upstream requests, want 1", n)
	}
	srv.Push(streamtest.TGI(0, "eos_token", "y)"))
	ed.typeAt(uri, end+6, "z")
	if got := ed.inline(uri, end+7); got != "y)" {
		t.Errorf("after typing something else: %q", got)
	}
	if n := generations(srv); n != 2 {
		t.Errorf("%d upstream requests, want 2", n)
	}
	// Each completion ended with the server's last event: one warm
	// connection served them all.
	if n := srv.Connections(); n != 1 {
		t.Errorf("%d connections to the endpoint, want 1", n)
	}
}

// Positions count the client's units: astral characters before the cursor
// are two UTF-16 units, four UTF-8 ones, one UTF-32 one.
func TestInlineCompletionAstralCharacters(t *testing.T) {
	t.Parallel()
	for _, enc := range []encoding{encUTF16, encUTF8, encUTF32} {
		t.Run(string(enc), func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.TGI(0, "eos_token", "!")).Route("/info", `{"model_id":"bigcode/starcoder"}`)
			ed := newFakeEditor(t, editorOptions{encodings: []string{string(enc)}, settings: tgiSettings(srv.URL)})
			doc := "s = \"😀𝄞\" + \nt = 1\n"
			ed.open(uri, doc)
			at := strings.Index(doc, "\n")
			if got := ed.inline(uri, at); got != "!" {
				t.Errorf("completion %q", got)
			}
			req, _ := srv.LastRequest()
			if want := "<fim_prefix>s = \"😀𝄞\" + <fim_suffix>\nt = 1\n<fim_middle>"; req.JSON()["inputs"] != want {
				t.Errorf("prompt %q, want %q", req.JSON()["inputs"], want)
			}
		})
	}
}

// An endpoint that fails gives no completion and no error, and is logged
// once, not on every keystroke.
func TestInlineCompletionEndpointError(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.Error(500, `{"error":"boom"}`)).Route("/info", `{"model_id":"gpt2"}`)
	core, logs := observer.New(zapcore.InfoLevel)
	ed := startFakeEditor(t, editorOptions{settings: tgiSettings(srv.URL)}, zap.New(core), nil)
	ed.open(uri, "x = ")
	for i := range 3 {
		res, err := ed.askInline(uri, 4, false).wait(t)
		if err != nil || len(res.Items) != 0 {
			t.Fatalf("request %d: %v, %v; want no item and no error", i, res, err)
		}
	}
	if n := logs.FilterMessageSnippet("inline completion failed").Len(); n != 1 {
		t.Errorf("logged %d times, want once", n)
	}
	for _, m := range ed.shownMessages() {
		t.Errorf("shown to the user: %q", m)
	}
	// It works again, then fails again: logged again.
	srv.Push(streamtest.TGI(0, "eos_token", "1"))
	if got := ed.inline(uri, 4); got != "1" {
		t.Errorf("completion %q", got)
	}
	ed.inline(uri, 3)
	if n := logs.FilterMessageSnippet("inline completion failed").Len(); n != 2 {
		t.Errorf("logged %d times after a success and a failure, want 2", n)
	}
}

// Automatic requests wait for typing to pause (debounce_ms) unless the
// client debounces itself; a request superseded while it waits never goes
// upstream. Invoked requests never wait.
func TestInlineCompletionDebounce(t *testing.T) {
	t.Parallel()
	srv := completionEndpoint(t, "1")
	ed := newFakeEditor(t, editorOptions{settings: tgiSettings(srv.URL, withCompletion(map[string]any{"debounce_ms": 5000}))})
	ed.open(uri, "x = ")
	automatic := ed.askInline(uri, 4, true)
	time.Sleep(200 * time.Millisecond) // well within the debounce
	if n := generations(srv); n != 0 {
		t.Fatalf("%d upstream requests while the automatic request waits", n)
	}
	ed.typeAt(uri, 4, " ")
	invoked := ed.askInline(uri, 5, false)
	if res, err := invoked.wait(t); err != nil || len(res.Items) != 1 {
		t.Errorf("invoked: %v %v", res, err)
	}
	if res, err := automatic.wait(t); err != nil || len(res.Items) != 0 {
		t.Errorf("automatic, superseded while it waited: %v %v", res, err)
	}
	if n := generations(srv); n != 1 {
		t.Errorf("%d upstream requests, want the invoked one only", n)
	}
	for name, want := range map[string]time.Duration{"Visual Studio Code": 0, "code-server": 0, "Neovim": 0, "emacs": 0, "Kate": defaultCompletionDebounce} {
		if got := debounceFor(name); got != want {
			t.Errorf("debounce for %s: %v, want %v", name, got, want)
		}
	}
}

// The capability follows completion.enabled: registered dynamically with
// clients that can, advertised at initialize to the others.
func TestInlineCompletionCapability(t *testing.T) {
	t.Parallel()
	srv := completionEndpoint(t, "1")
	chat := streamtest.NewServer(t, streamtest.OpenAIChat(0, "stop", "1"))
	registered := func(ed *fakeEditor) bool {
		ed.mu.Lock()
		defer ed.mu.Unlock()
		return ed.registered[completionRegistrationID] == methodInlineCompletion
	}
	t.Run("dynamic", func(t *testing.T) {
		ed := newFakeEditor(t, editorOptions{inline: true, inlineDynamic: true, config: tgiSettings(srv.URL)})
		ed.await("registration", func() bool { return registered(ed) })
		if _, static := ed.capabilities["inlineCompletionProvider"]; static {
			t.Error("advertised statically to a client that registers dynamically")
		}
		ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": tgiSettings(srv.URL, withCompletion(map[string]any{"enabled": false}))})
		ed.await("unregistration", func() bool { return !registered(ed) })
		ed.open(uri, "x = ")
		if got := ed.inline(uri, 4); got != "" {
			t.Errorf("completion %q while disabled", got)
		}
		ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": tgiSettings(srv.URL)})
		ed.await("registration again", func() bool { return registered(ed) })
	})
	t.Run("chat model without fim", func(t *testing.T) {
		settings := map[string]any{"endpoint": map[string]any{"url": chat.URL + "/v1", "backend": "openai", "model": "gpt-4o"}}
		ed := newFakeEditor(t, editorOptions{inline: true, inlineDynamic: true, config: settings})
		ed.await("settings", func() bool { return ed.configRequests() > 0 })
		time.Sleep(100 * time.Millisecond)
		if registered(ed) {
			t.Error("registered for a chat model without fill-in-the-middle")
		}
		settings["completion"] = map[string]any{"enabled": true}
		ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": settings})
		ed.await("registration when turned on", func() bool { return registered(ed) })
	})
	t.Run("static", func(t *testing.T) {
		// As Neovim 0.12 declares it: inlineCompletion with
		// dynamicRegistration false (seen in a 0.12.0-dev client's
		// initialize request).
		ed := newFakeEditor(t, editorOptions{inline: true, clientName: "Neovim", settings: tgiSettings(srv.URL)})
		if _, ok := ed.capabilities["inlineCompletionProvider"]; !ok {
			t.Error("not advertised")
		}
		ed.open(uri, "x = ")
		if got := ed.inline(uri, 4); got != "1" {
			t.Errorf("completion %q, want %q", got, "1")
		}
		off := newFakeEditor(t, editorOptions{inline: true, settings: tgiSettings(srv.URL, withCompletion(map[string]any{"enabled": false}))})
		if _, ok := off.capabilities["inlineCompletionProvider"]; ok {
			t.Error("advertised although initializationOptions turn it off")
		}
	})
}

func TestCompletionSettingsRejected(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		`{"completion": {"max_lines": 0}}`,
		`{"completion": {"max_new_tokens": -1}}`,
		`{"completion": {"debounce_ms": -5}}`,
		`{"completion": {"enabled": "yes"}}`,
		`{"prompt": {"fim": {"preset": "gpt"}}}`,
	} {
		if err := CheckSettings(json.RawMessage(raw)); err == nil {
			t.Errorf("%s accepted", raw)
		}
	}
	if err := CheckSettings(json.RawMessage(`{"completion": {"enabled": true, "max_lines": 1, "max_new_tokens": 64, "debounce_ms": 0}, "prompt": {"fim": {"preset": "starcoder"}}}`)); err != nil {
		t.Error(err)
	}
}

// Closing a document ends its completion request, upstream too, and
// forgets its last completion.
func TestInlineCompletionDocumentClosed(t *testing.T) {
	t.Parallel()
	hang := hanging()
	srv := completionEndpoint(t, "1")
	ed := newFakeEditor(t, editorOptions{settings: tgiSettings(srv.URL)})
	ed.open(uri, "x = ")
	if got := ed.inline(uri, 4); got != "1" {
		t.Fatalf("completion %q", got)
	}
	srv.Push(hang)
	ed.typeAt(uri, 4, "y")
	r := ed.askInline(uri, 5, false)
	if !srv.WaitRequests(2, 5*time.Second) {
		t.Fatal("no upstream request")
	}
	ed.notify("textDocument/didClose", map[string]any{"textDocument": map[string]any{"uri": uri}})
	if !srv.WaitDisconnect(2 * time.Second) {
		t.Error("the upstream request stayed open after the document was closed")
	}
	if res, err := r.wait(t); err != nil || len(res.Items) != 0 {
		t.Errorf("answer %v, %v; want no item", res, err)
	}
	// Reopened as it was when the first completion was given: asked again.
	ed.open(uri, "x = ")
	srv.Push(streamtest.TGI(0, "eos_token", "2"))
	if got := ed.inline(uri, 4); got != "2" {
		t.Errorf("completion after reopening %q, want a new one", got)
	}
}

// acceptInline accepts a completion at off as the editor of e's mode does.
// VS Code inserts it through its text model, which spells every line break
// as the document's. Neovim sets the buffer's text to insertText split at
// "\n" (vim.lsp.inline_completion's accept, nvim_buf_set_text): a "\r"
// stays in its line as a character, and a dos buffer then reports each
// line's end as "\r\n". The verbatim editor inserts it as it is.
func (e *fakeEditor) acceptInline(uri string, off int, text string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.docs[uri]
	switch e.opts.mode {
	case modeVSCode:
		text = e.lineBreaksApplied(uri, text)
	case modeNeovim:
		text = strings.ReplaceAll(text, "\n", d.eol)
	}
	pos := fakePosition(d.text, off, e.enc())
	e.applyLocked(uri, protocol.Range{Start: pos, End: pos}, text, false)
}

// An accepted multi-line completion leaves the document with its own line
// breaks only, whatever the model wrote and however the editor inserts it;
// typing its start first, then accepting the rest, gives the same text. The
// editors that ask for inline completions (VS Code, Neovim, Emacs's
// lsp-mode, whose buffers hold "\n" whatever the file's line breaks) all
// take "\n" as the document's line break; none inserts text verbatim into
// a CRLF document, so the verbatim mode has no part here.
func TestInlineCompletionAccepted(t *testing.T) {
	t.Parallel()
	for _, mode := range []editorMode{modeVSCode, modeNeovim} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			testInlineCompletionAccepted(t, mode)
		})
	}
}

func testInlineCompletionAccepted(t *testing.T, mode editorMode) {
	for _, eol := range []string{"\n", "\r\n"} {
		for _, tokens := range [][]string{{"if x:", "\n", "    y()", "\n", "z"}, {"if x:\r", "\n    y()\r\n", "z"}} {
			before, after := "def f(x):"+eol+"    ", eol+"print(1)"+eol
			want := before + "if x:" + eol + "    y()" + eol + "z" + after
			for _, typeFirst := range []int{0, 3} {
				srv := completionEndpoint(t, tokens...)
				ed := newFakeEditor(t, editorOptions{mode: mode, settings: tgiSettings(srv.URL)})
				ed.open(uri, before+after)
				at := len(before)
				got := ed.inline(uri, at)
				if typeFirst > 0 {
					ed.typeAt(uri, at, got[:typeFirst])
					at += typeFirst
					if got = ed.inline(uri, at); len(srv.Requests()) != 2 { // /info and one generation
						t.Errorf("eol %q: typing the completion's start asked the endpoint again", eol)
					}
				}
				ed.acceptInline(uri, at, got)
				if text := ed.text(uri); text != want {
					t.Errorf("eol %q, tokens %q, typed %d first: document %q, want %q", eol, tokens, typeFirst, text, want)
				}
			}
		}
	}
}

// generations counts the generation requests srv received (not
// /tokenize, which a generation's prompt may be counted with).
func generations(srv *streamtest.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Method == "POST" && r.Path != "/tokenize" {
			n++
		}
	}
	return n
}

// While a generation writes into a document, its inline completion
// requests get nothing and ask the endpoint nothing.
func TestInlineCompletionDuringGeneration(t *testing.T) {
	t.Parallel()
	hang := hanging()
	srv := streamtest.NewServer(t, hang).Route("/info", `{"model_id":"gpt2"}`)
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)})
	ed.open(uri, "x = 1\n")
	ed.run(uri, rangeOf(encUTF16, "x = 1\n", 0, 5), "Generate")
	ed.await("the generation's first token", func() bool { return strings.Contains(ed.text(uri), "a") })
	if got := ed.inline(uri, len(ed.text(uri))); got != "" {
		t.Errorf("completion %q during a generation", got)
	}
	if n := generations(srv); n != 1 {
		t.Errorf("%d generation requests, want the generation's only", n)
	}
}

// Back at the point of the last completion, the answer comes from memory,
// and the request still running for text since deleted is closed.
func TestInlineCompletionCacheSupersedes(t *testing.T) {
	t.Parallel()
	hang := hanging()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "eos_token", "print(x)")).Route("/info", `{"model_id":"gpt2"}`)
	ed := newFakeEditor(t, editorOptions{settings: tgiSettings(srv.URL)})
	ed.open(uri, "x = 1\n")
	end := len("x = 1\n")
	if got := ed.inline(uri, end); got != "print(x)" {
		t.Fatalf("completion %q", got)
	}
	srv.Push(hang)
	ed.typeAt(uri, end, "z")
	stale := ed.askInline(uri, end+1, false)
	if !srv.WaitRequests(2, 5*time.Second) {
		t.Fatal("no upstream request for the typed z")
	}
	ed.replace(uri, end, end+1, "")
	if got := ed.inline(uri, end); got != "print(x)" {
		t.Errorf("back at the completion's point: %q", got)
	}
	if !srv.WaitDisconnect(2 * time.Second) {
		t.Error("the request for the deleted z stayed open")
	}
	if res, err := stale.wait(t); err != nil || len(res.Items) != 0 {
		t.Errorf("stale request answered %v, %v", res, err)
	}
}

// hanging answers with one token and keeps the stream open.
func hanging() streamtest.Script {
	return streamtest.Script{Chunks: streamtest.TGI(0, "", "a", "b").Chunks[:1], Hang: true}
}

// completionEndpoint is a fake TGI endpoint serving a model with no known
// fill-in-the-middle format, answering every generation with tokens.
func completionEndpoint(t testing.TB, tokens ...string) *streamtest.Server {
	return streamtest.NewServer(t, streamtest.TGI(0, "eos_token", tokens...)).Route("/info", `{"model_id":"gpt2"}`)
}
