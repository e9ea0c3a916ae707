package lsp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/streamtest"
)

// env is a server environment of vars alone.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// With no endpoint.url, the server looks for a local server at the first
// generation, not before, uses the first found in the order of the ports,
// tells the user once, and never sends it the token.
func TestFindsLocalServerAtFirstGeneration(t *testing.T) {
	t.Parallel()
	ollama := streamtest.NewOllama(t, streamtest.Ollama(0, "stop", "from", " ollama"),
		"llama3.2:latest", "nomic-embed-text:latest", "qwen2.5-coder:7b", "codellama:13b")
	tgi := streamtest.NewTGI(t, streamtest.TGI(0, "length", "from tgi"), "m")
	ed := newFakeEditor(t, editorOptions{versioned: true,
		settings: map[string]any{"endpoint": map[string]any{"token": "hf_secret"}},
		getenv:   env(map[string]string{stream.LocalPortsVar: streamtest.Ports(streamtest.ClosedPort(t), ollama.Port(), tgi.Port())})})
	ed.open(uri, "x")
	ed.await("the configuration to be asked for", func() bool { return ed.configRequests() > 0 })
	if n := len(ollama.Requests()) + len(tgi.Requests()); n != 0 {
		t.Errorf("%d requests to local servers before any generation", n)
	}

	ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
	ed.awaitEnded(1)
	if got := ed.text(uri); got != "xfrom ollama" {
		t.Fatalf("text %q", got)
	}
	want := fmt.Sprintf("genls: no endpoint.url set; using Ollama at %s, model qwen2.5-coder:7b (the first code model of the 3 it lists)", ollama.URL)
	ed.await("the choice to be told", func() bool { return contains(ed.shownMessages(), want) })
	if req, _ := ollama.LastRequest(); req.JSON()["model"] != "qwen2.5-coder:7b" {
		t.Errorf("model %v", req.JSON()["model"])
	}

	// Told once: neither the next generation nor a client made for new
	// settings, choosing the same server, says it again.
	ed.run(uri, rangeOf(encUTF16, ed.text(uri), 0, 1), "Generate")
	ed.awaitEnded(2)
	ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{
		"endpoint": map[string]any{"token": "hf_secret"}, "parameters": map[string]any{"max_new_tokens": 9}}})
	ed.run(uri, rangeOf(encUTF16, ed.text(uri), 0, 1), "Generate")
	ed.awaitEnded(3)
	if got := ed.text(uri); got != "xfrom ollamafrom ollamafrom ollama" {
		t.Fatalf("text %q", got)
	}
	if req, _ := ollama.LastRequest(); req.JSON()["options"].(map[string]any)["num_predict"] != 9.0 {
		t.Errorf("the new settings were not applied: %v", req.JSON())
	}
	told := 0
	for _, m := range ed.shownMessages() {
		if strings.Contains(m, "no endpoint.url set") {
			told++
		}
	}
	if told != 1 {
		t.Errorf("told %d times: %q", told, ed.shownMessages())
	}
	for _, r := range append(ollama.Requests(), tgi.Requests()...) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("%s %s carried the token", r.Method, r.Path)
		}
	}
	if n := posts(tgi); n != 0 {
		t.Errorf("TGI, after Ollama in the ports' order, received %d generations", n)
	}
}

// Nothing found and no token: the generation fails with one message that
// says what was looked at and the ways forward, in the editor's terms.
func TestNoLocalServerMessage(t *testing.T) {
	t.Parallel()
	closed := streamtest.ClosedPort(t)
	ed := newFakeEditor(t, editorOptions{versioned: true, getenv: env(map[string]string{stream.LocalPortsVar: streamtest.Ports(closed)})})
	ed.open(uri, "x")
	ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
	ed.awaitEnded(1)
	want := fmt.Sprintf("genls: no model server found on this machine (looked at ports %d on 127.0.0.1 and ::1) and no Hugging Face token: "+
		"start one (such as `ollama serve` or `llama-server`), set HF_TOKEN to use Hugging Face's router, or set endpoint.url to your server's URL", closed)
	ed.await("the error", func() bool { return len(ed.shownMessages()) > 0 })
	if got := ed.shownMessages(); len(got) != 1 || got[0] != want {
		t.Errorf("messages %q\nwant [%q]", got, want)
	}

}

// With no endpoint.url the token may go only to the router: settings that
// then move the endpoint elsewhere with the token ask the user first.
func TestTokenConsentWithNoEndpointURL(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "ok"))
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: map[string]any{"endpoint": map[string]any{"token": "hf_secret"}},
		getenv: env(map[string]string{stream.LocalPortsVar: streamtest.Ports(streamtest.ClosedPort(t))})})
	ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": tgiSettings(srv.URL, func(s map[string]any) {
		s["endpoint"].(map[string]any)["token"] = "hf_secret"
	})})
	ed.await("the question", func() bool {
		return contains(ed.shownMessages(), "move the endpoint from router.huggingface.co to "+strings.TrimPrefix(srv.URL, "http://"))
	})
	ed.await("the refusal", func() bool { return contains(ed.shownMessages(), "the token was not sent") })
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests", n)
	}
}

// posts counts the generations srv received.
func posts(srv *streamtest.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Method == "POST" {
			n++
		}
	}
	return n
}
