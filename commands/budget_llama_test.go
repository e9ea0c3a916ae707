//go:build unix

package commands_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/genls/genls/commands"
	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/llamatest"
)

// Against a real llama-server (StarCoder's tokenizer and fill-in-the-middle
// tokens, a 2,048-token context): a 5,000-line document around the cursor
// is refused as it is, and once FitPrompt has cut it to the budget of the
// server's own limits, the server counts it within the budget and
// generates from it.
func TestFitPromptToLlamaServer(t *testing.T) {
	srv := llamatest.Start(t, llamatest.StarCoder)
	hc := stream.NewHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	c, err := stream.NewClient(stream.Config{
		Endpoint:   stream.Endpoint{URL: srv.URL + "/v1", Backend: stream.BackendOpenAICompletions, Model: srv.Model},
		HTTPClient: hc, MaxLoadingWait: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	const maxNew = 16
	var doc strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&doc, "def handler_%d(request):\n    return respond(request, code=%d)  # route %d\n", i, 200+i%7, i)
	}
	text := doc.String()
	cursor := strings.Index(text, "def handler_2500(")
	in := commands.PromptInput{Prefix: text[:cursor+8], Suffix: text[cursor+8:], Language: "python", Mode: commands.ModeHere}
	fim := commands.FIM{Prefix: "<fim_prefix>", Suffix: "<fim_suffix>", Middle: "<fim_middle>"}
	build := func(in commands.PromptInput) (string, error) { return commands.BuildPrompt(nil, fim, in) }
	generate := func(prompt string) error {
		s, err := c.Generate(context.Background(), stream.Request{Prompt: prompt, Params: stream.Parameters{MaxNewTokens: maxNew}})
		if err != nil {
			return err
		}
		defer s.Close()
		for s.Next() {
		}
		return s.Err()
	}

	whole, _ := build(in)
	if err := generate(whole); err == nil || !strings.Contains(err.Error(), "exceeds the available context size") {
		t.Fatalf("the whole document: %v; want the server's refusal", err)
	}
	l, err := c.Limits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	budget := commands.InputBudget(l, maxNew, 0)
	if budget != 2048-maxNew {
		t.Fatalf("budget %d from %+v", budget, l)
	}
	fitted, err := commands.FitPrompt(context.Background(), c, budget, in, build)
	if err != nil {
		t.Fatal(err)
	}
	prompt, _ := build(fitted)
	var resp struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(srv.Post(t, "/v1/completions", map[string]any{"prompt": prompt, "max_tokens": 1}), &resp); err != nil {
		t.Fatal(err)
	}
	if n := resp.Usage.PromptTokens; n > budget || n < budget*9/10 {
		t.Errorf("the server counts %d prompt tokens; want at most the budget %d, and most of it", n, budget)
	}
	if !strings.HasPrefix(fitted.Suffix, "ler_2500(request):") || !strings.HasSuffix(fitted.Prefix, "\ndef hand") {
		t.Errorf("the text nearest the cursor was not kept: …%q | %q…", fitted.Prefix[max(len(fitted.Prefix)-20, 0):], fitted.Suffix[:min(20, len(fitted.Suffix))])
	}
	if err := generate(prompt); err != nil {
		t.Fatalf("the fitted prompt: %v", err)
	}
}
