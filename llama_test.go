//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/llamatest"
)

// TestLlamaServer runs genls generate and genls doctor against a real
// llama-server (a tiny random model with Qwen2's tokenizer) through a
// recording proxy, and holds genls's output to what the server itself says:
// the raw stream it sent, and its answer to the same request without
// streaming. The proxy adds "ignore_eos", so each generation runs to its
// token limit.
func TestLlamaServer(t *testing.T) {
	// Greedy by default, so that the doctor's test generation, which sets
	// no sampling parameters, is the same every time.
	srv := llamatest.Start(t, llamatest.Qwen2, "--temp", "0")
	proxy := srv.Proxy(t, llamatest.IgnoreEOS)
	// No token from the environment or a token file.
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HUGGING_FACE_HUB_TOKEN", "")
	t.Setenv("HF_TOKEN_PATH", "")
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("GENLS_ENDPOINT", "")
	t.Setenv("GENLS_MODEL", "")

	const prompt = "def fibonacci(n):\n"
	const maxTokens = 200
	sampling := []string{"--max-new-tokens", fmt.Sprint(maxTokens), "--temperature", "0", "--seed", "7"}

	// generated is one run of genls generate and the one request it made.
	type generated struct {
		name, out, stderr string
		ex                llamatest.Exchange
		streamed          llamatest.Streamed // what the server streamed
	}
	var runs []generated

	// generate runs genls generate through proxy and checks that it
	// printed exactly what the server streamed.
	generate := func(t *testing.T, proxy *llamatest.Proxy, args ...string) generated {
		t.Helper()
		proxy.Reset()
		code, out, errOut := runCLI(t, "", append([]string{"generate"}, args...)...)
		if code != 0 {
			t.Fatalf("genls generate: exit %d\n%s", code, errOut)
		}
		gens := proxy.Wait(t, 1)
		if len(gens) != 1 {
			t.Fatalf("%d generation requests, want 1", len(gens))
		}
		g := generated{name: t.Name(), out: out, stderr: errOut, ex: gens[0]}
		var err error
		if g.streamed, err = llamatest.StreamText(g.ex.Response); err != nil {
			t.Fatal(err)
		}
		if out != g.streamed.Text && !strings.Contains(errOut, "finish: stop_sequence") {
			t.Errorf("genls printed %q\nthe server streamed %q", out, g.streamed.Text)
		}
		if !utf8.ValidString(out) {
			t.Errorf("genls printed invalid UTF-8: %q", out)
		}
		runs = append(runs, g)
		return g
	}
	checkBody := func(t *testing.T, body map[string]any) {
		t.Helper()
		if body["max_tokens"] != float64(maxTokens) || body["temperature"] != 0.0 || body["seed"] != 7.0 || body["stream"] != true {
			t.Errorf("request body %v", body)
		}
	}

	var completion, chat string
	t.Run("completions", func(t *testing.T) {
		g := generate(t, proxy, append([]string{"--endpoint", proxy.URL + "/v1", "--backend", "openai-completions"}, append(sampling, prompt)...)...)
		body := g.ex.Body()
		checkBody(t, body)
		if g.ex.Path != "/v1/completions" || body["prompt"] != prompt {
			t.Errorf("%s %v", g.ex.Path, body)
		}
		if g.streamed.Tokens != maxTokens || g.streamed.FinishReason != "length" {
			t.Errorf("the server generated %d tokens (finish %q), want %d: ignore_eos had no effect", g.streamed.Tokens, g.streamed.FinishReason, maxTokens)
		}
		if want := srv.Complete(t, "/v1/completions", body); g.out != want {
			t.Errorf("genls printed %q\nnon-streaming /v1/completions says %q", g.out, want)
		}
		// The native API, asked the same, says the same.
		native := srv.Complete(t, "/completion", map[string]any{
			"prompt": prompt, "n_predict": maxTokens, "temperature": 0, "seed": 7, "ignore_eos": true,
		})
		if g.out != native {
			t.Errorf("genls printed %q\nnative /completion says %q", g.out, native)
		}
		completion = g.out
	})

	t.Run("chat", func(t *testing.T) {
		g := generate(t, proxy, append([]string{"--endpoint", proxy.URL + "/v1", "--backend", "openai"}, append(sampling, prompt)...)...)
		body := g.ex.Body()
		checkBody(t, body)
		if g.ex.Path != "/v1/chat/completions" || !llamatest.SameJSON(body["messages"], []any{map[string]any{"role": "user", "content": prompt}}) {
			t.Errorf("%s %v", g.ex.Path, body)
		}
		if want := srv.Complete(t, "/v1/chat/completions", body); g.out != want {
			t.Errorf("genls printed %q\nnon-streaming /v1/chat/completions says %q", g.out, want)
		}
		chat = g.out
	})

	t.Run("auto", func(t *testing.T) {
		// The base URL, as a user would give it: genls finds the
		// OpenAI-compatible API under /v1 and uses chat.
		g := generate(t, proxy, append([]string{"--endpoint", proxy.URL}, append(sampling, prompt)...)...)
		if g.ex.Path != "/v1/chat/completions" {
			t.Fatalf("auto-detected backend posted to %s, want /v1/chat/completions", g.ex.Path)
		}
		if chat != "" && g.out != chat {
			t.Errorf("auto printed %q, chat printed %q", g.out, chat)
		}
	})

	t.Run("no endpoint", func(t *testing.T) {
		// Nothing configured: genls finds the server on its port (the
		// list of ports is the test's, so no real service is probed).
		_, port, err := net.SplitHostPort(strings.TrimPrefix(proxy.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("GENLS_LOCAL_PORTS", port)
		g := generate(t, proxy, append(sampling, prompt)...)
		if !strings.Contains(g.stderr, "no endpoint configured; using llama.cpp at http://127.0.0.1:"+port) {
			t.Errorf("stderr %q does not say which server genls found", g.stderr)
		}
		if g.ex.Path != "/v1/chat/completions" {
			t.Fatalf("posted to %s, want /v1/chat/completions", g.ex.Path)
		}
		if chat != "" && g.out != chat {
			t.Errorf("printed %q, chat printed %q", g.out, chat)
		}
	})

	t.Run("stop", func(t *testing.T) {
		if completion == "" {
			t.Skip("needs the completions text")
		}
		// A stop sequence taken from the middle of the text the server
		// generates: genls must print exactly what comes before its first
		// occurrence, and say why it stopped.
		stop := middle(completion)
		g := generate(t, proxy, append([]string{"--endpoint", proxy.URL + "/v1", "--backend", "openai-completions", "--stop", stop},
			append(sampling, prompt)...)...)
		if want := completion[:strings.Index(completion, stop)]; g.out != want {
			t.Errorf("with --stop %q genls printed %q, want %q", stop, g.out, want)
		}
		if !strings.Contains(g.stderr, "finish: stop_sequence") {
			t.Errorf("stderr %q does not say the generation ended at the stop sequence", g.stderr)
		}
	})

	t.Run("line breaks", func(t *testing.T) {
		// Text with every kind of line break, from real tokens: genls
		// generate prints it as the model wrote it, converting nothing.
		breaks := srv.Proxy(t, llamatest.LineBreaks)
		g := generate(t, breaks, "--endpoint", breaks.URL+"/v1", "--backend", "openai-completions",
			"--max-new-tokens", "100", "--temperature", "0", "--seed", "7", prompt)
		b := llamatest.CountBreaks(g.out)
		if b.CRLF == 0 || b.LoneCR == 0 || b.LF == 0 || b.LS == 0 || b.PS == 0 || b.NEL == 0 {
			t.Errorf("genls printed %q (%v), want every kind of line break, as the grammar makes the server write", g.out, b)
		}
		if want := srv.Complete(t, "/v1/completions", g.ex.Body()); g.out != want {
			t.Errorf("genls printed %q\nnon-streaming /v1/completions says %q", g.out, want)
		}
	})

	// Each generation that ran to its limit: genls's summary counts the
	// tokens the server generated, not the chunks that carried them
	// (llama-server sends a token that ends inside a UTF-8 character with
	// the next one).
	checkCount := func(t *testing.T, path string) {
		for _, g := range runs {
			if g.ex.Path != path || !strings.Contains(g.stderr, "finish: length") {
				continue
			}
			if want := fmt.Sprintf("genls: %d tokens in ", g.streamed.Tokens); !strings.Contains(g.stderr, want) {
				t.Errorf("%s: stderr %q lacks %q (the server generated %d tokens in %d chunks)", g.name, g.stderr, want, g.streamed.Tokens, g.streamed.Chunks)
			}
		}
	}
	t.Run("token count/completions", func(t *testing.T) { checkCount(t, "/v1/completions") })
	t.Run("token count/chat", func(t *testing.T) {
		// llama-server's chat stream carries its count only in
		// timings.predicted_n; counting chunks gives 199 for 200 tokens.
		checkCount(t, "/v1/chat/completions")
	})

	t.Run("doctor", func(t *testing.T) {
		proxy.Reset()
		var out bytes.Buffer
		code := doctor(context.Background(), stream.Endpoint{URL: proxy.URL, Backend: stream.BackendAuto, Model: srv.Model},
			func(string) string { return "" }, &out)
		report := out.String()
		t.Logf("genls doctor:\n%s", report)
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, report)
		}
		gens := proxy.Wait(t, 1)
		streamed, err := llamatest.StreamText(gens[len(gens)-1].Response)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"backend detected: openai\n",
			"model " + srv.Model + " is listed by the server",
			fmt.Sprintf("test generation: %q, %d tokens in ", streamed.Text, streamed.Tokens),
			"Everything works.",
		} {
			if !strings.Contains(report, want) {
				t.Errorf("report lacks %q:\n%s", want, report)
			}
		}

		// A model the server does not serve: llama-server answers anyway,
		// and the doctor says the name is not the one it lists.
		out.Reset()
		doctor(context.Background(), stream.Endpoint{URL: proxy.URL + "/v1", Backend: stream.BackendOpenAI, Model: "no-such-model"},
			func(string) string { return "" }, &out)
		if want := `model "no-such-model" is not among the 1 models the server lists`; !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}

		// No model: the doctor names the one the server lists.
		out.Reset()
		doctor(context.Background(), stream.Endpoint{URL: proxy.URL + "/v1", Backend: stream.BackendOpenAICompletions},
			func(string) string { return "" }, &out)
		if want := "the server's only model, " + srv.Model + ", will be used"; !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}

		// A path the server does not serve: the doctor fails, says what
		// the server answered, and how to fix it.
		out.Reset()
		code = doctor(context.Background(), stream.Endpoint{URL: proxy.URL + "/v2", Backend: stream.BackendOpenAI},
			func(string) string { return "" }, &out)
		if want := "FAIL  test generation: " + proxy.URL + "/v2/chat/completions answered 404"; code != 1 || !strings.Contains(out.String(), want) ||
			!strings.Contains(out.String(), "fix: check the endpoint URL") {
			t.Errorf("exit %d, report lacks %q or its fix:\n%s", code, want, out.String())
		}
	})
}

// middle returns a short piece of s from about its middle, cut at character
// boundaries, that does not occur earlier in s.
func middle(s string) string {
	for i := len(s) / 2; i < len(s); i++ {
		if !utf8.RuneStart(s[i]) {
			continue
		}
		for j := i + 4; j <= len(s) && j <= i+12; j++ {
			if j < len(s) && !utf8.RuneStart(s[j]) {
				continue
			}
			piece := s[i:j]
			if strings.TrimSpace(piece) == piece && strings.Index(s, piece) == i {
				return piece
			}
		}
	}
	return s[len(s)/2:]
}
