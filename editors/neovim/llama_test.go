//go:build unix

package neovim_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/genls/genls/commands"
	"github.com/genls/genls/editors/e2etest"
	"github.com/genls/genls/stream/llamatest"
)

// llamaDocs are the documents the real-server tests generate into: the
// same lines with either line ending.
var llamaDocs = []struct {
	name, eol string
}{{"lf", "\n"}, {"crlf", "\r\n"}}

// TestLlamaServer generates from a real llama-server (a tiny random model
// with Qwen2's tokenizer) into LF and CRLF files: 1,000 tokens through the
// completions and the chat APIs ("ignore_eos" added by the proxy), and 100
// tokens constrained by a grammar to hold every kind of line break. The
// server is asked for its answer first; the written file must be the
// original with exactly that text inserted once, its line breaks written as
// the file's.
func TestLlamaServer(t *testing.T) {
	srv := llamatest.Start(t, llamatest.Qwen2)
	for _, c := range llamatest.EditorCases(srv.Model, commands.DefaultSystemPrompt) {
		proxy := srv.Proxy(t, c.Gen.Rewrite)
		text := srv.Reference(t, c.Gen)
		for _, doc := range llamaDocs {
			t.Run(c.Name+"/"+doc.name, func(t *testing.T) {
				got, want, _ := llamaSession(t, proxy, c.Gen, text, doc.eol)
				if got != want {
					t.Errorf("file (%d bytes) = %q\nwant (%d bytes) %q\nfirst difference at byte %d", len(got), e2etest.Clip(got), len(want), e2etest.Clip(want), firstDiff(got, want))
				}
			})
		}
	}
}

// llamaSession runs one Neovim session generating g into a two-line file
// with line ending eol, and returns the written file, the file the server's
// text makes, and Neovim's report. It fails the test unless genls made
// exactly the request g describes, once, and the server streamed text.
func llamaSession(t testing.TB, proxy *llamatest.Proxy, g llamatest.Generation, text, eol string) (got, want string, rep report) {
	t.Helper()
	path, body := g.Request()
	want = g.Prompt + llamatest.ToDocument(text, eol) + eol + "    pass" + eol

	proxy.Reset()
	got, rep = run(t, nil, scenario{
		text:     g.Prompt + eol + "    pass" + eol,
		name:     "range",
		lines:    "1,1",
		settings: g.Settings(proxy.URL),
		timeout:  90 * time.Second,
		maxEdits: 2*g.MaxTokens + 10,
		maxBytes: 2*len(want) + 100,
	})
	if rep.Runaway != "" {
		t.Fatalf("runaway: %s", rep.Runaway)
	}
	if wantFF := map[string]string{"\n": "unix", "\r\n": "dos"}[eol]; rep.FileFormat != wantFF {
		t.Fatalf("Neovim read the file as fileformat=%s, want %s", rep.FileFormat, wantFF)
	}
	checkProgress(t, rep)
	proxy.CheckOnlyRequest(t, path, body, g.MaxTokens, text)
	return got, want, rep
}

func firstDiff(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// BenchmarkLlamaEndToEnd measures real server → genls → real Neovim, 1,000
// tokens into an LF file: the time from :GenlsGenerate to the last change of
// the buffer against the raw stream time of the same request (from its
// arrival at the proxy in front of the server to the response's last byte),
// and against the same request sent straight to the server alone; and the
// edits Neovim applied per generated token.
//
//	go test ./editors/neovim -run '^$' -bench LlamaEndToEnd -benchtime 10x
func BenchmarkLlamaEndToEnd(b *testing.B) {
	srv := llamatest.Start(b, llamatest.Qwen2)
	proxy := srv.Proxy(b, llamatest.IgnoreEOS)
	g := llamatest.EditorCases(srv.Model, "")[0].Gen
	path, body := g.Request()
	var sameRatio, directRatio, editsPerToken, stream, direct, e2e float64
	for i := 0; i < b.N; i++ {
		rawBody, directTime := srv.Raw(b, path, body)
		streamed, err := llamatest.StreamText(rawBody)
		if err != nil {
			b.Fatal(err)
		}
		got, want, rep := llamaSession(b, proxy, g, streamed.Text, "\n")
		if got != want {
			b.Fatalf("file differs from the server's text at byte %d", firstDiff(got, want))
		}
		ex := proxy.Generations()[0]
		streamTime := ex.End.Sub(ex.Start)
		took := time.Duration((rep.LastChangeMS - rep.GenerateMS) * float64(time.Millisecond))
		b.Logf(":GenlsGenerate to last edit %v; its request's stream %v; alone %v; %d edits for %d tokens",
			took.Round(time.Millisecond), streamTime.Round(time.Millisecond), directTime.Round(time.Millisecond), rep.ApplyEdits, streamed.Tokens)
		sameRatio += took.Seconds() / streamTime.Seconds()
		directRatio += took.Seconds() / directTime.Seconds()
		editsPerToken += float64(rep.ApplyEdits) / float64(streamed.Tokens)
		stream += streamTime.Seconds()
		direct += directTime.Seconds()
		e2e += took.Seconds()
	}
	n := float64(b.N)
	b.ReportMetric(sameRatio/n, "x-stream")
	b.ReportMetric(directRatio/n, "x-alone")
	b.ReportMetric(editsPerToken/n, "edits/token")
	b.ReportMetric(e2e/n*1000, "e2e-ms")
	b.ReportMetric(stream/n*1000, "stream-ms")
	b.ReportMetric(direct/n*1000, "alone-ms")
	b.ReportMetric(0, "ns/op")
}

// TestLlamaFIM runs "Generate here" with StarCoder's fill-in-the-middle
// tokens set, against a real llama-server with a tiny random model that has
// StarCoder's tokenizer: the prompt genls sends must tokenize into the
// model's own <fim_prefix>, <fim_suffix> and <fim_middle> tokens around the
// text before and after the cursor, and the file must hold the server's
// text between the two, once, in LF and CRLF files.
func TestLlamaFIM(t *testing.T) {
	srv := llamatest.Start(t, llamatest.StarCoder)
	proxy := srv.Proxy(t, llamatest.IgnoreEOS)
	fim := map[string]any{"prefix": "<fim_prefix>", "suffix": "<fim_suffix>", "middle": "<fim_middle>"}
	for _, doc := range llamaDocs {
		t.Run(doc.name, func(t *testing.T) {
			eol := doc.eol
			before, after := "def fib(n):"+eol+"    ", eol+"    return a"+eol
			g := llamatest.Generation{Backend: "openai-completions", Model: srv.Model,
				Prompt: "<fim_prefix>" + before + "<fim_suffix>" + after + "<fim_middle>", MaxTokens: 300, Seed: 11}
			path, body := g.Request()
			text := srv.Reference(t, g)

			var tokens struct {
				Tokens []struct {
					ID    int `json:"id"`
					Piece any `json:"piece"`
				} `json:"tokens"`
			}
			if err := json.Unmarshal(srv.Post(t, "/tokenize", map[string]any{"content": g.Prompt, "with_pieces": true}), &tokens); err != nil {
				t.Fatal(err)
			}
			var specials []any
			for _, tok := range tokens.Tokens {
				if tok.ID <= 3 {
					specials = append(specials, tok.Piece)
				}
			}
			if !llamatest.SameJSON(specials, []string{"<fim_prefix>", "<fim_suffix>", "<fim_middle>"}) {
				t.Fatalf("the prompt's special tokens are %v, want the three FIM tokens", specials)
			}

			settings := g.Settings(proxy.URL)
			settings["prompt"] = map[string]any{"fim": fim}
			proxy.Reset()
			// Normal-mode cursor on the last space of the indented line:
			// "Generate here" writes after it.
			got, rep := run(t, nil, scenario{
				text:     before + after,
				name:     "here",
				cursor:   "2,3",
				settings: settings,
				timeout:  60 * time.Second,
				maxEdits: 2*g.MaxTokens + 10,
				maxBytes: 4*len(text) + 100,
			})
			if rep.Runaway != "" {
				t.Fatalf("runaway: %s", rep.Runaway)
			}
			checkProgress(t, rep)
			gens := proxy.Wait(t, 1)
			if len(gens) != 1 || gens[0].Path != path || !llamatest.SameJSON(gens[0].Body(), body) {
				t.Fatalf("genls sent %d requests, the last %s %s\nwant one, %s %v", len(gens), gens[len(gens)-1].Path, gens[len(gens)-1].Sent, path, body)
			}
			if want := before + llamatest.ToDocument(text, eol) + after; got != want {
				t.Errorf("file (%d bytes) = %q\nwant (%d bytes) %q\nfirst difference at byte %d", len(got), e2etest.Clip(got), len(want), e2etest.Clip(want), firstDiff(got, want))
			}
		})
	}
}
