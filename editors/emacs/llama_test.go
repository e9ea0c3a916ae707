//go:build unix

package emacs_test

import (
	"testing"
	"time"

	"github.com/genls/genls/commands"
	"github.com/genls/genls/editors/e2etest"
	"github.com/genls/genls/stream/llamatest"
)

// TestLlamaServer generates from a real llama-server (a tiny random model
// with Qwen2's tokenizer) into LF and CRLF files: 1,000 tokens through the
// completions and the chat APIs ("ignore_eos" added by the proxy), and 100
// tokens constrained by a grammar to hold every kind of line break. The
// server is asked for its answer first; the saved file must be the original
// with exactly that text inserted once, its line breaks written as the
// file's.
func TestLlamaServer(t *testing.T) {
	srv := llamatest.Start(t, llamatest.Qwen2)
	docs := []struct {
		name, eol string
	}{{"lf", "\n"}, {"crlf", "\r\n"}}
	for _, c := range llamatest.EditorCases(srv.Model, commands.DefaultSystemPrompt) {
		proxy := srv.Proxy(t, c.Gen.Rewrite)
		text := srv.Reference(t, c.Gen)
		g := c.Gen
		path, body := g.Request()
		for _, doc := range docs {
			t.Run(c.Name+"/"+doc.name, func(t *testing.T) {
				want := g.Prompt + llamatest.ToDocument(text, doc.eol) + doc.eol + "    pass" + doc.eol

				proxy.Reset()
				got, rep := run(t, nil, scenario{
					text:     g.Prompt + doc.eol + "    pass" + doc.eol,
					name:     "range",
					lines:    "1,1",
					want:     want,
					settings: g.Settings(proxy.URL),
					timeout:  90 * time.Second,
					maxEdits: 2*g.MaxTokens + 10,
					maxChars: 2*len(want) + 100,
				})
				if rep.Runaway != "" {
					t.Fatalf("runaway: %s", rep.Runaway)
				}
				if wantEOL := map[string]string{"\n": "unix", "\r\n": "dos"}[doc.eol]; rep.EOL != wantEOL {
					t.Fatalf("Emacs visited the file with %s line ends, want %s", rep.EOL, wantEOL)
				}
				if got != want {
					t.Errorf("file (%d bytes) = %q\nwant (%d bytes) %q", len(got), e2etest.Clip(got), len(want), e2etest.Clip(want))
				}
				if !rep.ReachedExpected {
					t.Errorf("the buffer did not reach the expected text while the harness waited")
				}
				proxy.CheckOnlyRequest(t, path, body, g.MaxTokens, text)
			})
		}
	}
}
