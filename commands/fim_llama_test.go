//go:build unix

package commands_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/genls/genls/commands"
	"github.com/genls/genls/stream/llamatest"
)

// llamaToken is one token of llama-server's /tokenize answer with
// "with_pieces" (tools/server/README.md, "POST /tokenize": content,
// add_special, parse_special, with_pieces; the answer is {"tokens": [{"id",
// "piece"}]}, a piece being a string, or its bytes when they are not valid
// UTF-8).
type llamaToken struct {
	ID    int             `json:"id"`
	Piece json.RawMessage `json:"piece"`
}

func (tok llamaToken) String() string { return fmt.Sprintf("%d:%s", tok.ID, tok.Piece) }

// tokenize asks srv how its tokenizer reads text as part of a prompt:
// special tokens parsed, no BOS added.
func tokenize(t *testing.T, srv *llamatest.Server, text string) []llamaToken {
	t.Helper()
	var resp struct {
		Tokens []llamaToken `json:"tokens"`
	}
	body := srv.Post(t, "/tokenize", map[string]any{"content": text, "add_special": false, "parse_special": true, "with_pieces": true})
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("/tokenize %q: %v in %s", text, err, body)
	}
	return resp.Tokens
}

// oneToken checks that the tokenizer reads marker as exactly one token
// whose piece is marker itself, which is what makes it one of the
// vocabulary's special tokens rather than text, and returns its id.
func oneToken(t *testing.T, srv *llamatest.Server, marker string) int {
	t.Helper()
	toks := tokenize(t, srv, marker)
	var piece string
	if len(toks) != 1 || json.Unmarshal(toks[0].Piece, &piece) != nil || piece != marker {
		t.Errorf("%q is %d tokens %v, want one token %q", marker, len(toks), toks, marker)
		return -1
	}
	return toks[0].ID
}

// Against real tokenizers (llama.cpp's vocabularies in tiny models, run by
// llama-server): each marker and stop of a preset is one special token of
// its family's vocabulary, and a whole prompt holds each marker's token
// once, in the preset's order.
func TestFIMPresetTokensInLlamaServer(t *testing.T) {
	const prefix, suffix = "def f(x):\n    ", "\n    return y\n"

	t.Run("starcoder", func(t *testing.T) {
		// llama.cpp's StarCoder vocabulary is StarCoder2's: <|endoftext|>
		// 0, <fim_prefix> 1, <fim_middle> 2, <fim_suffix> 3, <file_sep> 6.
		srv := llamatest.Start(t, llamatest.StarCoder)
		if p, ok := commands.FIMPresetForModel(srv.Model); !ok || p.Name != "starcoder" {
			t.Errorf("the server's model %q is recognised as %q, %v; want starcoder", srv.Model, p.Name, ok)
		}
		p, _ := commands.FIMPresetNamed("starcoder")
		checkPreset(t, srv, p, prefix, suffix)
	})

	t.Run("qwen2.5-coder", func(t *testing.T) {
		srv := llamatest.Start(t, llamatest.Qwen2)
		if p, ok := commands.FIMPresetForModel(srv.Model); ok {
			t.Errorf("the server's model %q (plain Qwen2) is recognised as %q", srv.Model, p.Name)
		}
		p, _ := commands.FIMPresetNamed("qwen2.5-coder")
		// The stops Qwen2.5 shares with Qwen2 are in either vocabulary.
		for _, stop := range []string{"<|endoftext|>", "<|im_end|>"} {
			oneToken(t, srv, stop)
		}
		// Qwen2.5 added its FIM tokens at ids 151659-151664, which
		// earlier Qwen2 vocabularies (llama.cpp's ggml-vocab-qwen2, from
		// Qwen1.5) fill with padding tokens [PAD151659]… Which of the two
		// this vocabulary is, is read from id 151659, not from the
		// markers under test.
		if toks := tokenize(t, srv, "[PAD151659]"); len(toks) == 1 && toks[0].ID == 151659 {
			t.Skipf("this Qwen2 vocabulary predates Qwen2.5's FIM tokens (id 151659 is %s); "+
				"the qwen2.5-coder markers cannot be checked against it", toks[0].Piece)
		}
		checkPreset(t, srv, p, prefix, suffix)
	})
}

func checkPreset(t *testing.T, srv *llamatest.Server, p commands.FIMPreset, prefix, suffix string) {
	t.Helper()
	markers := []string{p.FIM.Prefix, p.FIM.Suffix, p.FIM.Middle}
	ids := map[int]string{}
	var order []int
	for _, m := range markers {
		id := oneToken(t, srv, m)
		ids[id] = m
		order = append(order, id)
	}
	for _, stop := range p.Stops {
		oneToken(t, srv, stop)
	}
	if t.Failed() {
		return
	}
	var seen []int
	for _, tok := range tokenize(t, srv, p.FIM.Wrap(prefix, suffix)) {
		if _, ok := ids[tok.ID]; ok {
			seen = append(seen, tok.ID)
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint(order) {
		t.Errorf("the prompt %q holds the marker tokens %v, want %v", p.FIM.Wrap(prefix, suffix), seen, order)
	}
}
