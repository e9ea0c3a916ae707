//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
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

	// What genls said of each generation's length, checked last.
	type count struct {
		name     string
		stderr   string
		streamed llamatest.Streamed
	}
	var counts []count

	// generate runs genls generate and returns its stdout and the one
	// request it made through proxy, checked against the server's raw
	// stream.
	generate := func(t *testing.T, proxy *llamatest.Proxy, args ...string) (string, llamatest.Exchange, llamatest.Streamed) {
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
		ex := gens[0]
		streamed, err := llamatest.StreamText(ex.Response)
		if err != nil {
			t.Fatal(err)
		}
		if out != streamed.Text {
			t.Errorf("genls printed %q\nthe server streamed %q", out, streamed.Text)
		}
		if !utf8.ValidString(out) {
			t.Errorf("genls printed invalid UTF-8: %q", out)
		}
		counts = append(counts, count{t.Name(), errOut, streamed})
		return out, ex, streamed
	}
	checkBody := func(t *testing.T, body map[string]any) {
		t.Helper()
		if body["max_tokens"] != float64(maxTokens) || body["temperature"] != 0.0 || body["seed"] != 7.0 || body["stream"] != true {
			t.Errorf("request body %v", body)
		}
	}

	var completion, chat string
	t.Run("completions", func(t *testing.T) {
		out, ex, streamed := generate(t, proxy, append([]string{"--endpoint", proxy.URL + "/v1", "--backend", "openai-completions"}, append(sampling, prompt)...)...)
		body := ex.Body()
		checkBody(t, body)
		if ex.Path != "/v1/completions" || body["prompt"] != prompt {
			t.Errorf("%s %v", ex.Path, body)
		}
		if streamed.Tokens != maxTokens || streamed.FinishReason != "length" {
			t.Errorf("the server generated %d tokens (finish %q), want %d: ignore_eos had no effect", streamed.Tokens, streamed.FinishReason, maxTokens)
		}
		if want := srv.Complete(t, "/v1/completions", body); out != want {
			t.Errorf("genls printed %q\nnon-streaming /v1/completions says %q", out, want)
		}
		// The native API, asked the same, says the same.
		native := srv.Complete(t, "/completion", map[string]any{
			"prompt": prompt, "n_predict": maxTokens, "temperature": 0, "seed": 7, "ignore_eos": true,
		})
		if out != native {
			t.Errorf("genls printed %q\nnative /completion says %q", out, native)
		}
		completion = out
	})

	t.Run("chat", func(t *testing.T) {
		out, ex, _ := generate(t, proxy, append([]string{"--endpoint", proxy.URL + "/v1", "--backend", "openai"}, append(sampling, prompt)...)...)
		body := ex.Body()
		checkBody(t, body)
		if ex.Path != "/v1/chat/completions" || fmt.Sprint(body["messages"]) != fmt.Sprint([]any{map[string]any{"role": "user", "content": prompt}}) {
			t.Errorf("%s %v", ex.Path, body)
		}
		if want := srv.Complete(t, "/v1/chat/completions", body); out != want {
			t.Errorf("genls printed %q\nnon-streaming /v1/chat/completions says %q", out, want)
		}
		chat = out
	})

	t.Run("auto", func(t *testing.T) {
		// The base URL, as a user would give it: genls finds the
		// OpenAI-compatible API under /v1 and uses chat.
		out, ex, _ := generate(t, proxy, append([]string{"--endpoint", proxy.URL}, append(sampling, prompt)...)...)
		if ex.Path != "/v1/chat/completions" {
			t.Fatalf("auto-detected backend posted to %s, want /v1/chat/completions", ex.Path)
		}
		if chat != "" && out != chat {
			t.Errorf("auto printed %q, chat printed %q", out, chat)
		}
	})

	t.Run("stop", func(t *testing.T) {
		if completion == "" {
			t.Skip("needs the completions text")
		}
		// A stop sequence taken from the middle of the text the server
		// generates: genls must print exactly what comes before its first
		// occurrence.
		stop := middle(completion)
		out, ex, _ := generate(t, proxy, append([]string{"--endpoint", proxy.URL + "/v1", "--backend", "openai-completions", "--stop", stop},
			append(sampling, prompt)...)...)
		if want := completion[:strings.Index(completion, stop)]; out != want {
			t.Errorf("with --stop %q genls printed %q, want %q", stop, out, want)
		}
		if fmt.Sprint(ex.Body()["stop"]) != fmt.Sprint([]any{stop}) {
			t.Errorf("stop not sent to the server: %v", ex.Body())
		}
	})

	t.Run("line breaks", func(t *testing.T) {
		// Text with every kind of line break, from real tokens: genls
		// generate prints it as the model wrote it, converting nothing.
		breaks := srv.Proxy(t, llamatest.LineBreaks)
		out, ex, _ := generate(t, breaks, "--endpoint", breaks.URL+"/v1", "--backend", "openai-completions",
			"--max-new-tokens", "100", "--temperature", "0", "--seed", "7", prompt)
		b := llamatest.CountBreaks(out)
		if b.CRLF == 0 || b.LoneCR == 0 || b.LF == 0 || b.LS == 0 || b.PS == 0 || b.NEL == 0 {
			t.Errorf("genls printed %q (%v), want every kind of line break, as the grammar makes the server write", out, b)
		}
		if want := srv.Complete(t, "/v1/completions", ex.Body()); out != want {
			t.Errorf("genls printed %q\nnon-streaming /v1/completions says %q", out, want)
		}
	})

	t.Run("token count", func(t *testing.T) {
		for _, c := range counts {
			if want := fmt.Sprintf("%d tokens, finish: ", c.streamed.Tokens); !strings.Contains(c.stderr, want) {
				t.Errorf("%s: stderr %q lacks %q (the server generated %d tokens in %d chunks)", c.name, c.stderr, want, c.streamed.Tokens, c.streamed.Chunks)
			}
		}
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
			"backend detected: openai",
			"model " + srv.Model + " is listed by the server",
			fmt.Sprintf("test generation: %d tokens %q", streamed.Tokens, streamed.Text),
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
