package lsp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/genls/genls/stream/streamtest"
)

// A 5,000-line document never makes a prompt the endpoint refuses for
// length: the text around the cursor is cut to what the endpoint publishes
// (TGI's max_input_tokens, counted by its /tokenize) or to the
// context.max_input_tokens setting, keeping the lines nearest the cursor.
func TestPromptFitsTheEndpoint(t *testing.T) {
	t.Parallel()
	var doc strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&doc, "line %04d: some words of code here\n", i)
	}
	text := doc.String()
	cursor := strings.Index(text, "line 2500:")
	fim := map[string]any{"prefix": "<P>", "suffix": "<S>", "middle": "<M>"}
	tests := []struct {
		name       string
		limit      int // the endpoint's max_input_tokens
		setting    int // context.max_input_tokens
		fim        bool
		title      string
		rng        [2]int
		want       int // the budget the prompt must fit
		nearCursor string
	}{
		{"here", 500, 0, false, "Generate here", [2]int{cursor, cursor}, 500, "line 2499"},
		{"here with FIM", 500, 0, true, "Generate here", [2]int{cursor, cursor}, 500, "line 2500"},
		{"setting below the endpoint's limit", 2000, 300, false, "Generate here", [2]int{cursor, cursor}, 300, "line 2499"},
		{"selection", 500, 0, false, "Generate", [2]int{cursor, cursor + 10}, 500, "line 2500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "ok")).Tokenizer(tt.limit)
			ed := newFakeEditor(t, editorOptions{mode: modeVSCode, versioned: true, settings: tgiSettings(srv.URL, func(s map[string]any) {
				if tt.setting > 0 {
					s["context"] = map[string]any{"max_input_tokens": tt.setting}
				}
				if tt.fim {
					s["prompt"] = map[string]any{"fim": fim}
				}
			})})
			ed.open(uri, text)
			if err := ed.run(uri, rangeOf(encUTF16, text, tt.rng[0], tt.rng[1]), tt.title); err != nil {
				t.Fatal(err)
			}
			if msgs := ed.awaitEnded(1); !strings.HasPrefix(msgs[0], "length") {
				t.Fatalf("ended %q", msgs[0])
			}
			tokens := srv.PromptTokens()
			// Generate on a selection sends the selection alone.
			least := tt.want / 2
			if tt.title == "Generate" {
				least = 1
			}
			if len(tokens) != 1 || tokens[0] > tt.want || tokens[0] < least {
				t.Fatalf("prompt tokens %v, want at most %d (and not far below)", tokens, tt.want)
			}
			req, _ := srv.LastRequest()
			prompt := fmt.Sprint(req.JSON()["inputs"])
			if !strings.Contains(prompt, tt.nearCursor) {
				t.Errorf("the lines nearest the cursor were cut: no %q in %q…", tt.nearCursor, prompt[:min(80, len(prompt))])
			}
			if tt.fim && !strings.Contains(prompt, "<S>line 2500") {
				t.Errorf("the FIM prompt lost the text after the cursor")
			}
			if errs := ed.shownErrors(); len(errs) > 0 {
				t.Errorf("errors: %v", errs)
			}
		})
	}
}

// A selection too long for the endpoint is refused before any request,
// with the numbers, and the server goes on serving.
func TestSelectionTooLongForTheEndpoint(t *testing.T) {
	t.Parallel()
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "ok")).Tokenizer(100)
	ed := newFakeEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)})
	text := strings.Repeat("words and more words\n", 200)
	ed.open(uri, text)
	ed.run(uri, rangeOf(encUTF16, text, 0, len(text)), "Generate")
	ed.awaitEnded(1)
	ed.await("the error", func() bool { return contains(ed.shownErrors(), "the prompt is too long") })
	if n := len(srv.PromptTokens()); n != 0 {
		t.Errorf("%d generation requests sent", n)
	}
	if got := ed.text(uri); got != text {
		t.Errorf("the document changed")
	}
}
