//go:build unix

package lsp

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/genls/genls/stream/llamatest"
)

// TestLlamaInlineCompletion asks for inline completions from a real
// llama-server serving a tiny random model with StarCoder's tokenizer, with
// nothing configured but its URL: genls must find the model's name, know
// its fill-in-the-middle format from it, send the raw prompt to the
// completions route so that the markers are the tokenizer's own special
// tokens, and answer with the server's streamed text cut as the rules say
// (one line when the cursor has text after it; else at most max_lines
// lines), its line breaks "\n" in LF and CRLF documents alike. Typing the
// start of the completion then answers with the rest with no new request.
func TestLlamaInlineCompletion(t *testing.T) {
	srv := llamatest.Start(t, llamatest.StarCoder)
	plain := srv.Proxy(t, llamatest.IgnoreEOS)
	// The random model seldom writes a line break of its own; this one
	// writes every kind, many.
	breaks := srv.Proxy(t, llamatest.LineBreaks)
	const maxLines = 3
	cases := []struct {
		name, before, after string
		proxy               *llamatest.Proxy
	}{
		{"end of line", "def fib(n):\n    ", "\n\nprint(fib(3))\n", plain},
		{"end of line crlf", "def fib(n):\r\n    ", "\r\n\r\nprint(fib(3))\r\n", plain},
		{"middle of line", "x = compute(", ", 2)\n", plain},
		{"line breaks, end of line", "def fib(n):\n    ", "\n\nprint(fib(3))\n", breaks},
		{"line breaks, end of line crlf", "def fib(n):\r\n    ", "\r\n", breaks},
		{"line breaks, middle of line", "x = compute(", ", 2)\r\n", breaks},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			proxy := c.proxy
			proxy.Reset()
			ed := newFakeEditor(t, editorOptions{settings: map[string]any{
				"endpoint":   map[string]any{"url": proxy.URL},
				"parameters": map[string]any{"temperature": 0, "seed": 5},
				"completion": map[string]any{"max_lines": maxLines, "max_new_tokens": 40},
			}})
			ed.open(uri, c.before+c.after)
			got := ed.inline(uri, len(c.before))

			gens := proxy.Wait(t, 1)
			if len(gens) != 1 {
				t.Fatalf("%d generation requests, want 1", len(gens))
			}
			ex := gens[0]
			prompt, _ := ex.Body()["prompt"].(string)
			if ex.Path != "/v1/completions" || prompt != "<fim_prefix>"+c.before+"<fim_suffix>"+c.after+"<fim_middle>" {
				t.Fatalf("genls sent %s %s", ex.Path, ex.Sent)
			}
			var tokens struct {
				Tokens []struct {
					ID    int `json:"id"`
					Piece any `json:"piece"`
				} `json:"tokens"`
			}
			if err := json.Unmarshal(srv.Post(t, "/tokenize", map[string]any{"content": prompt, "with_pieces": true}), &tokens); err != nil {
				t.Fatal(err)
			}
			var specials []any
			for _, tok := range tokens.Tokens {
				if tok.ID <= 3 { // <|endoftext|>, <fim_prefix>, <fim_middle>, <fim_suffix>
					specials = append(specials, tok.Piece)
				}
			}
			if !llamatest.SameJSON(specials, []string{"<fim_prefix>", "<fim_suffix>", "<fim_middle>"}) {
				t.Fatalf("the prompt's special tokens are %v, want the three FIM tokens", specials)
			}
			streamed, err := llamatest.StreamText(ex.Response)
			if err != nil {
				t.Fatal(err)
			}
			lineRest := strings.TrimSpace(strings.SplitN(c.after, "\n", 2)[0])
			single := lineRest != ""
			want := expectedCompletion(streamed.Text, streamed.FinishReason, single, maxLines, lineRest)
			t.Logf("server streamed %q (%s); completion %q", streamed.Text, streamed.FinishReason, got)
			if got != want {
				t.Fatalf("completion %q, want %q", got, want)
			}
			if c.proxy == breaks && !single && strings.Count(got, "\n") != maxLines-1 {
				t.Errorf("%d line breaks in the completion, want %d", strings.Count(got, "\n"), maxLines-1)
			}
			if strings.Contains(got, "\r") {
				t.Errorf("a CR in the completion %q: Neovim would keep it in the line", got)
			}
			if len(got) < 2 {
				return
			}
			// Type its first two characters: the rest, from memory.
			ed.typeAt(uri, len(c.before), got[:2])
			if rest := ed.inline(uri, len(c.before)+2); rest != got[2:] {
				t.Errorf("after typing %q: %q, want %q", got[:2], rest, got[2:])
			}
			if n := len(proxy.Generations()); n != 1 {
				t.Errorf("%d generation requests after typing the completion's start, want 1", n)
			}
		})
	}
}

var anyLineBreak = regexp.MustCompile("\r\n|\r|\n|\u0085|\u2028|\u2029")

// expectedCompletion is what the README says a completion is, from the
// text the server streamed, computed without genls's code: line breaks as
// "\n", NUL dropped, cut at StarCoder's end tokens; one line, without the
// rest of the line at its end, when single; else at most maxLines lines, a
// last line the token limit cut short left out; no line break at the end.
func expectedCompletion(streamed, finish string, single bool, maxLines int, lineRest string) string {
	text := anyLineBreak.ReplaceAllString(strings.ReplaceAll(streamed, "\x00", ""), "\n")
	for _, stop := range []string{"<|endoftext|>", "<file_sep>"} {
		text, _, _ = strings.Cut(text, stop)
	}
	lines := strings.Split(text, "\n")
	switch {
	case single:
		return strings.TrimSuffix(strings.TrimRight(lines[0], " \t"), lineRest)
	case len(lines) > maxLines:
		lines = lines[:maxLines]
	case finish == "length" && len(lines) > 1:
		lines = lines[:len(lines)-1]
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

// TestLlamaInlineCompletionCancelled: a completion that would take the
// server several seconds (400 grammar-constrained tokens) is cancelled by
// $/cancelRequest, then another is replaced by a newer request for its
// document: each time the server stops generating at once — its response
// holds far fewer than 400 tokens, and its only slot is free again for the
// next request.
func TestLlamaInlineCompletionCancelled(t *testing.T) {
	srv := llamatest.Start(t, llamatest.StarCoder)
	proxy := srv.Proxy(t, llamatest.LineBreaks)
	proxy.Propagate = true
	ed := newFakeEditor(t, editorOptions{settings: map[string]any{
		"endpoint":   map[string]any{"url": proxy.URL},
		"completion": map[string]any{"max_lines": 1000, "max_new_tokens": 400},
	}})
	ed.open(uri, "def fib(n):\n    ")
	at := len("def fib(n):\n    ")
	const maxTokens = 400
	// cut waits for the n-th generation request to end and checks that the
	// server stopped early.
	cut := func(n int, what string) {
		t.Helper()
		gens := proxy.Wait(t, n)
		streamed, err := llamatest.StreamText(gens[n-1].Response)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: the server streamed %d chunks in %v", what, streamed.Chunks, gens[n-1].End.Sub(gens[n-1].Start))
		if streamed.Chunks >= maxTokens/2 {
			t.Errorf("%s: the server streamed %d of %d tokens: it was not stopped", what, streamed.Chunks, maxTokens)
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if !strings.Contains(string(srv.Get(t, "/slots")), `"is_processing":true`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the server's slot is still busy", what)
			}
		}
	}
	// waitStreaming waits until the server has sent some of the answer.
	waitStreaming := func(n int) {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if strings.Contains(string(srv.Get(t, "/slots")), `"is_processing":true`) {
				time.Sleep(200 * time.Millisecond) // a few tokens
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("request %d: the server never started", n)
			}
		}
	}

	first := ed.askInline(uri, at, false)
	waitStreaming(1)
	ed.notify("$/cancelRequest", map[string]any{"id": first.id})
	if _, err := first.wait(t); err == nil {
		t.Error("a cancelled request answered without an error")
	}
	cut(1, "cancelled")

	second := ed.askInline(uri, at, false)
	waitStreaming(2)
	ed.typeAt(uri, at, "x")
	third := ed.askInline(uri, at+1, false)
	if res, err := second.wait(t); err != nil || len(res.Items) != 0 {
		t.Errorf("replaced request answered %v, %v", res, err)
	}
	cut(2, "replaced")
	ed.notify("$/cancelRequest", map[string]any{"id": third.id})
	third.wait(t)
}
