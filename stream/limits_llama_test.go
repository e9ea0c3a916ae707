//go:build unix

package stream_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/llamatest"
)

// Against a real llama-server started with a 2,048-token context: Limits
// reads the context, and CountTokens counts a prompt as the server itself
// does when it generates from it (usage.prompt_tokens of a completion),
// special-token text and a beginning-of-sequence token included.
func TestLlamaServerLimitsAndTokenCounts(t *testing.T) {
	texts := []string{
		"def fib(n):",
		"<fim_prefix>def f(x):\n    <fim_suffix>\n    return y\n<fim_middle>",
		"<|im_start|>user\nhello<|im_end|>\n",
		"日本語のコメント // café\r\n\tx := 0x1F\n",
		strings.Repeat("func (c *Client) Limits(ctx context.Context) (Limits, error) {\n", 20),
	}
	for _, model := range []string{llamatest.Qwen2, llamatest.StarCoder} {
		t.Run(model, func(t *testing.T) {
			srv := llamatest.Start(t, model)
			for _, backend := range []stream.Backend{stream.BackendOpenAICompletions, stream.BackendAuto} {
				c := newClient(t, srv.URL+"/v1", backend, func(cfg *stream.Config) { cfg.Endpoint.Model = srv.Model })
				l, err := c.Limits(context.Background())
				if err != nil || l != (stream.Limits{MaxTotalTokens: 2048}) {
					t.Fatalf("%s: Limits = %+v, %v; want the server's -c 2048", backend, l, err)
				}
				for _, text := range texts {
					n, exact, err := c.CountTokens(context.Background(), text)
					if err != nil || !exact {
						t.Fatalf("%s: CountTokens(%q) = %d, %v, %v", backend, text, n, exact, err)
					}
					if want := promptTokens(t, srv, text); n != want {
						t.Errorf("%s: CountTokens(%q) = %d; the server counts %d when it generates from it", backend, text, n, want)
					}
				}
			}
		})
	}
}

// promptTokens is how many tokens the server reports a completion's prompt
// made.
func promptTokens(t *testing.T, srv *llamatest.Server, prompt string) int {
	t.Helper()
	var resp struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	body := srv.Post(t, "/v1/completions", map[string]any{"model": srv.Model, "prompt": prompt, "max_tokens": 1, "temperature": 0})
	if err := json.Unmarshal(body, &resp); err != nil || resp.Usage.PromptTokens == 0 {
		t.Fatalf("completion: %v %s", err, body)
	}
	return resp.Usage.PromptTokens
}

// EstimateTokens never counts fewer tokens than Qwen2's and StarCoder's
// tokenizers do, on this repository's own source and documentation: whole
// files, and windows of 1 and 30 lines of them.
func TestEstimateTokensCoversRealTokenizers(t *testing.T) {
	var files []string
	for _, pattern := range []string{"*.go", "../commands/*.go", "../lsp/*.go", "../*.md", "../editors/*/*.lua", "../editors/*/*.el", "../editors/vscode/src/*.ts", "llamatest/*.sh"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("found only %d files to measure", len(files))
	}
	for _, model := range []string{llamatest.Qwen2, llamatest.StarCoder} {
		t.Run(model, func(t *testing.T) {
			srv := llamatest.Start(t, model)
			c := newClient(t, srv.URL+"/v1", stream.BackendOpenAICompletions, func(cfg *stream.Config) { cfg.Endpoint.Model = srv.Model })
			var estimated, counted, pieces int
			check := func(name, text string) {
				t.Helper()
				if strings.TrimSpace(text) == "" {
					return
				}
				n, exact, err := c.CountTokens(context.Background(), text)
				if err != nil || !exact {
					t.Fatalf("CountTokens: %d, %v, %v", n, exact, err)
				}
				pieces++
				if e := stream.EstimateTokens(text); e < n {
					t.Errorf("%s: EstimateTokens = %d < %d tokens of %s in %q", name, e, n, model, clip(text))
				}
			}
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				text := string(data)
				check(f, text)
				n, _, _ := c.CountTokens(context.Background(), text)
				estimated, counted = estimated+stream.EstimateTokens(text), counted+n
				lines := strings.SplitAfter(text, "\n")
				for i := 0; i < len(lines); i += 30 {
					check(f, strings.Join(lines[i:min(i+30, len(lines))], ""))
					check(f, lines[i])
				}
			}
			t.Logf("%s: %d files, %d pieces; the estimate is %.2f times the tokens", model, len(files), pieces, float64(estimated)/float64(counted))
		})
	}
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
