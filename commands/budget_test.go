package commands

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/streamtest"
)

func TestInputBudget(t *testing.T) {
	cases := []struct {
		name       string
		limits     stream.Limits
		maxNew     int
		configured int
		want       int
	}{
		{"nothing known: the default context", stream.Limits{}, 256, 0, DefaultContextTokens - 256},
		{"max_new_tokens unset is the request's default", stream.Limits{}, 0, 0, DefaultContextTokens - stream.DefaultMaxNewTokens},
		{"tgi: the input limit binds", stream.Limits{MaxInputTokens: 4095, MaxTotalTokens: 8192}, 256, 0, 4095},
		{"tgi: the total limit binds", stream.Limits{MaxInputTokens: 4095, MaxTotalTokens: 4096}, 256, 0, 4096 - 256},
		{"llama.cpp: the context", stream.Limits{MaxTotalTokens: 2048}, 100, 0, 1948},
		{"configured below the server's", stream.Limits{MaxInputTokens: 4095, MaxTotalTokens: 8192}, 256, 1000, 1000},
		{"configured above the server's", stream.Limits{MaxInputTokens: 4095, MaxTotalTokens: 8192}, 256, 100000, 4095},
		{"configured, nothing published", stream.Limits{}, 256, 20000, 20000},
		{"max_new_tokens over the context: the floor", stream.Limits{MaxTotalTokens: 2048}, 4000, 0, MinInputBudget},
		{"a server's input limit below the floor", stream.Limits{MaxInputTokens: 10, MaxTotalTokens: 2048}, 256, 0, 10},
		{"configured below the floor", stream.Limits{}, 256, 5, MinInputBudget},
	}
	for _, tc := range cases {
		if got := InputBudget(tc.limits, tc.maxNew, tc.configured); got != tc.want {
			t.Errorf("%s: InputBudget(%+v, %d, %d) = %d, want %d", tc.name, tc.limits, tc.maxNew, tc.configured, got, tc.want)
		}
	}
}

// document is n lines of code-like text, each different, and the input of
// a generation at the middle of line cursor (0-based).
func document(n, cursor int) (lines []string, in PromptInput) {
	for i := range n {
		lines = append(lines, fmt.Sprintf("\tresult%04d := compute(%d, \"row %d of the table\") // keep %d\n", i, i*7, i, i%13))
	}
	before := strings.Join(lines[:cursor], "")
	line := lines[cursor]
	after := strings.Join(lines[cursor+1:], "")
	return lines, PromptInput{Prefix: before + line[:12], Suffix: line[12:] + after, Language: "go", FileName: "table.go"}
}

var testFIM = FIM{Prefix: "<fim_prefix>", Suffix: "<fim_suffix>", Middle: "<fim_middle>"}

func fimBuild(in PromptInput) (string, error) {
	in.Mode = ModeHere
	return BuildPrompt(nil, testFIM, in)
}
func prefixBuild(in PromptInput) (string, error) {
	in.Mode = ModeHere
	return BuildPrompt(nil, FIM{}, in)
}

// checkCut fails unless got is orig with only Prefix and Suffix cut, each
// at a line boundary, keeping the text nearest the cursor.
func checkCut(t *testing.T, orig, got PromptInput) {
	t.Helper()
	if got.Selection != orig.Selection || got.Language != orig.Language || got.FileName != orig.FileName {
		t.Fatalf("more than Prefix and Suffix changed: %+v", got)
	}
	if !strings.HasSuffix(orig.Prefix, got.Prefix) {
		t.Fatalf("the kept Prefix is not the end of the Prefix: %q", clip(got.Prefix))
	}
	if at := len(orig.Prefix) - len(got.Prefix); at > 0 && orig.Prefix[at-1] != '\n' {
		t.Fatalf("Prefix was cut inside a line: %q", clip(got.Prefix))
	}
	if !strings.HasPrefix(orig.Suffix, got.Suffix) {
		t.Fatalf("the kept Suffix is not the beginning of the Suffix: %q", clip(got.Suffix))
	}
	if end := len(got.Suffix); end < len(orig.Suffix) && (end == 0 || orig.Suffix[end-1] != '\n') {
		t.Fatalf("Suffix was cut inside a line: …%q", clipEnd(got.Suffix))
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func clipEnd(s string) string { return s[max(len(s)-80, 0):] }

func newBudgetClient(t *testing.T, url string, backend stream.Backend) *stream.Client {
	t.Helper()
	hc := stream.NewHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	c, err := stream.NewClient(stream.Config{Endpoint: stream.Endpoint{URL: url, Backend: backend, Model: "m"}, MaxLoadingWait: -1, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A 5,000-line document cut to fit a fake TGI's small max_input_tokens,
// counted by its /tokenize: the prompt fits and uses most of the budget,
// keeps whole lines nearest the cursor, and when the prompt uses both
// sides, keeps them about 3 to 1.
func TestFitPromptToTGI(t *testing.T) {
	const maxInput = 600
	cases := []struct {
		name   string
		cursor int
		build  func(PromptInput) (string, error)
		// The tokens (FakeTokens) kept before and after the cursor must
		// be in this ratio, or a side kept whole.
		ratioMin, ratioMax float64
		wholePrefix        bool
		wholeSuffix        bool
		suffixUntouched    bool
	}{
		{name: "fim, cursor in the middle", cursor: 2500, build: fimBuild, ratioMin: 2.5, ratioMax: 3.5},
		{name: "fim, cursor near the end", cursor: 4995, build: fimBuild, wholeSuffix: true},
		{name: "fim, cursor near the start", cursor: 3, build: fimBuild, wholePrefix: true},
		{name: "prefix only", cursor: 2500, build: prefixBuild, suffixUntouched: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := streamtest.NewTGI(t, streamtest.Script{}, "m").Tokenizer(maxInput)
			c := newBudgetClient(t, srv.URL, stream.BackendTGI)
			l, err := c.Limits(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			budget := InputBudget(l, 64, 0)
			if budget != maxInput {
				t.Fatalf("budget %d, want the server's max_input_tokens %d", budget, maxInput)
			}
			_, in := document(5000, tc.cursor)
			got, err := FitPrompt(context.Background(), c, budget, in, tc.build)
			if err != nil {
				t.Fatal(err)
			}
			checkCut(t, in, got)
			prompt, _ := tc.build(got)
			n := streamtest.FakeTokens(prompt)
			if n > budget || n < budget*9/10 {
				t.Errorf("the prompt is %d tokens; want at most the budget %d, and most of it", n, budget)
			}
			if calls := srv.TokenizeCalls(); calls > 5 {
				t.Errorf("%d calls to /tokenize", calls)
			}
			before, after := streamtest.FakeTokens(got.Prefix), streamtest.FakeTokens(got.Suffix)
			switch {
			case tc.suffixUntouched:
				if got.Suffix != in.Suffix {
					t.Errorf("a Suffix the prompt does not use was cut")
				}
			case tc.wholePrefix:
				if got.Prefix != in.Prefix || got.Suffix == in.Suffix {
					t.Errorf("a short Prefix must be kept whole and Suffix get the rest: kept %d and %d tokens", before, after)
				}
			case tc.wholeSuffix:
				if got.Suffix != in.Suffix || got.Prefix == in.Prefix {
					t.Errorf("a short Suffix must be kept whole and Prefix get the rest: kept %d and %d tokens", before, after)
				}
			default:
				if r := float64(before) / float64(after); r < tc.ratioMin || r > tc.ratioMax {
					t.Errorf("kept %d tokens before the cursor and %d after: %.2f to 1, want about 3", before, after, r)
				}
			}
			t.Logf("kept %d+%d tokens, %d /tokenize calls", before, after, srv.TokenizeCalls())
		})
	}
}

// A prompt that fits is left as it is, after one count.
func TestFitPromptLeavesAPromptThatFits(t *testing.T) {
	srv := streamtest.NewTGI(t, streamtest.Script{}, "m").Tokenizer(4000)
	c := newBudgetClient(t, srv.URL, stream.BackendTGI)
	_, in := document(100, 50)
	got, err := FitPrompt(context.Background(), c, 4000, in, fimBuild)
	if err != nil || got != in {
		t.Fatalf("FitPrompt changed a prompt that fits: %v", err)
	}
	if srv.TokenizeCalls() != 1 {
		t.Errorf("%d calls to /tokenize, want 1", srv.TokenizeCalls())
	}
}

// The selection is never cut, and a selection too long on its own is an
// error that names the numbers.
func TestFitPromptSelection(t *testing.T) {
	tmpl, err := ParseTemplate("Language: {{.Language}}\n{{.Prefix}}<selection>{{.Selection}}</selection>{{.Suffix}}")
	if err != nil {
		t.Fatal(err)
	}
	build := func(in PromptInput) (string, error) { return BuildPrompt(tmpl, FIM{}, in) }
	srv := streamtest.NewTGI(t, streamtest.Script{}, "m").Tokenizer(500)
	c := newBudgetClient(t, srv.URL, stream.BackendTGI)

	lines, in := document(5000, 2500)
	in.Selection = strings.Join(lines[1000:1020], "")
	got, err := FitPrompt(context.Background(), c, 500, in, build)
	if err != nil {
		t.Fatal(err)
	}
	checkCut(t, in, got)
	prompt, _ := build(got)
	if n := streamtest.FakeTokens(prompt); n > 500 || got.Prefix == "" || got.Suffix == "" {
		t.Errorf("the prompt is %d tokens, with %d before and %d after the selection", n, len(got.Prefix), len(got.Suffix))
	}

	in.Selection = strings.Join(lines[1000:1100], "")
	_, err = FitPrompt(context.Background(), c, 500, in, build)
	var tl *TooLongError
	if !errors.As(err, &tl) {
		t.Fatalf("a selection over the budget: %v, want a *TooLongError", err)
	}
	alone, _ := build(PromptInput{Selection: in.Selection, Language: in.Language})
	if want := streamtest.FakeTokens(alone); tl.Tokens != want || !tl.Exact || tl.Budget != 500 {
		t.Errorf("TooLongError %+v, want %d tokens, exact, budget 500", *tl, want)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprint(tl.Tokens)) || !strings.Contains(msg, "500") {
		t.Errorf("the error does not name the numbers: %s", msg)
	}

	// Without a counter, by the estimate.
	_, err = FitPrompt(context.Background(), nil, 500, in, build)
	if !errors.As(err, &tl) || tl.Exact || tl.Tokens != stream.EstimateTokens(alone) || !strings.Contains(err.Error(), "estimated") {
		t.Fatalf("a selection over the budget by estimate: %v", err)
	}
}

// fakeCounter counts with a function and can fail or only estimate.
type fakeCounter struct {
	mu       sync.Mutex
	count    func(string) int
	estimate bool
	fail     error
	calls    int
}

func (f *fakeCounter) CountTokens(_ context.Context, text string) (int, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return stream.EstimateTokens(text), false, f.fail
	}
	if f.estimate {
		return stream.EstimateTokens(text), false, nil
	}
	return f.count(text), true, nil
}

// Without a count from the server the prompt is cut by the estimate: to
// the budget when the counter only estimates (or there is none), and with
// a margin when it fails; a counter that counts more than the estimate
// (text unlike code) is still obeyed.
func TestFitPromptWithoutExactCounts(t *testing.T) {
	const budget = 700
	_, in := document(5000, 2500)
	bytesAsTokens := func(s string) int { return len(s) + 1 }
	cases := []struct {
		name    string
		counter TokenCounter
		fits    func(prompt string) bool
	}{
		{"no counter", nil, func(p string) bool { return stream.EstimateTokens(p) <= budget }},
		{"the counter estimates", &fakeCounter{estimate: true}, func(p string) bool { return stream.EstimateTokens(p) <= budget }},
		{"the counter fails", &fakeCounter{fail: errors.New("tokenizer down")}, func(p string) bool {
			return stream.EstimateTokens(p)*(100+estimateMargin) <= budget*100
		}},
		{"the counter counts more than the estimate", &fakeCounter{count: bytesAsTokens}, func(p string) bool { return bytesAsTokens(p) <= budget }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FitPrompt(context.Background(), tc.counter, budget, in, fimBuild)
			if err != nil {
				t.Fatal(err)
			}
			checkCut(t, in, got)
			prompt, _ := fimBuild(got)
			if !tc.fits(prompt) || got.Prefix == "" || got.Suffix == "" {
				t.Errorf("the prompt (estimate %d, %d bytes) does not fit %d, or kept nothing", stream.EstimateTokens(prompt), len(prompt), budget)
			}
			if fc, ok := tc.counter.(*fakeCounter); ok && (fc.calls > 2+maxCounts || fc.estimate && fc.calls != 1) {
				t.Errorf("%d counts; a counter that only estimates is asked once", fc.calls)
			}
		})
	}
}

// A template that uses a side twice costs twice its lines; the estimate
// still keeps the prompt within the budget.
func TestFitPromptEstimatesASideUsedTwice(t *testing.T) {
	tmpl, err := ParseTemplate("{{.Prefix}}\n// again:\n{{.Prefix}}<cursor>{{.Suffix}}")
	if err != nil {
		t.Fatal(err)
	}
	build := func(in PromptInput) (string, error) { return BuildPrompt(tmpl, FIM{}, in) }
	_, in := document(5000, 2500)
	got, err := FitPrompt(context.Background(), nil, 700, in, build)
	if err != nil {
		t.Fatal(err)
	}
	checkCut(t, in, got)
	if prompt, _ := build(got); stream.EstimateTokens(prompt) > 700 || got.Prefix == "" {
		t.Errorf("the prompt's estimate is %d, over 700, or it kept nothing", stream.EstimateTokens(prompt))
	}
}

// A document whose estimate is far over the budget but whose count is
// not is kept whole, in a few counts, though it was not counted first.
func TestFitPromptKeepsAWholeDocumentThatFits(t *testing.T) {
	_, in := document(5000, 2500)
	cheap := &fakeCounter{count: func(s string) int { return streamtest.FakeTokens(s) / 50 }}
	whole, _ := fimBuild(in)
	budget := streamtest.FakeTokens(whole)/50 + 10
	if stream.EstimateTokens(whole) <= 3*budget {
		t.Fatalf("the document's estimate %d is not far over the budget %d", stream.EstimateTokens(whole), budget)
	}
	got, err := FitPrompt(context.Background(), cheap, budget, in, fimBuild)
	if err != nil || got != in {
		t.Fatalf("the document was cut (%v): kept %d of %d bytes before the cursor", err, len(got.Prefix), len(in.Prefix))
	}
	if cheap.calls > 4 {
		t.Errorf("%d counts", cheap.calls)
	}
}

func TestFitPromptCancelled(t *testing.T) {
	srv := streamtest.NewTGI(t, streamtest.Script{}, "m").Tokenizer(500)
	c := newBudgetClient(t, srv.URL, stream.BackendTGI)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, in := document(5000, 2500)
	if _, err := FitPrompt(ctx, c, 500, in, fimBuild); !errors.Is(err, context.Canceled) {
		t.Fatalf("FitPrompt with its context cancelled: %v", err)
	}
}

// End to end against fake servers that refuse an over-long prompt as the
// real ones do: the whole 5,000-line document is refused, the prompt
// FitPrompt makes is not, and the server counted it within its limit.
func TestFitPromptIsNotRefused(t *testing.T) {
	const maxNew = 32
	cases := []struct {
		name    string
		server  func(t *testing.T) *streamtest.Server
		backend stream.Backend
		path    string
		limit   int    // the prompt tokens the server accepts
		refusal string // in the error of the whole document
	}{
		{"tgi, 422", func(t *testing.T) *streamtest.Server {
			return streamtest.NewTGI(t, streamtest.TGI(0, "length", "x"), "m").Tokenizer(500)
		}, stream.BackendTGI, "", 500, "`inputs` tokens + `max_new_tokens` must be <= 1524"},
		{"tgi, in the stream", func(t *testing.T) *streamtest.Server {
			return streamtest.NewTGI(t, streamtest.TGI(0, "length", "x"), "m").TokenizerLimits(4000, 600).RejectInStream()
		}, stream.BackendTGI, "", 600 - maxNew, "`inputs` tokens + `max_new_tokens` must be <= 600"},
		{"tgi, input limit", func(t *testing.T) *streamtest.Server {
			return streamtest.NewTGI(t, streamtest.TGI(0, "length", "x"), "m").TokenizerLimits(300, 100000)
		}, stream.BackendTGI, "", 300, "`inputs` must have less than 300 tokens"},
		{"llama-server", func(t *testing.T) *streamtest.Server {
			return streamtest.NewLlamaServer(t, streamtest.OpenAIChat(0, "length", "x"), "m").LlamaTokenizer(800)
		}, stream.BackendOpenAI, "/v1", 800 - maxNew, "exceeds the available context size (800 tokens)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.server(t)
			c := newBudgetClient(t, srv.URL+tc.path, tc.backend)
			_, in := document(5000, 2500)
			generate := func(in PromptInput) error {
				prompt, _ := fimBuild(in)
				s, err := c.Generate(context.Background(), stream.Request{Prompt: prompt, Params: stream.Parameters{MaxNewTokens: maxNew}})
				if err != nil {
					return err
				}
				defer s.Close()
				for s.Next() {
				}
				return s.Err()
			}
			err := generate(in)
			if err == nil || !strings.Contains(err.Error(), tc.refusal) {
				t.Fatalf("the whole document: %v; want the server's refusal %q", err, tc.refusal)
			}
			var inStream *stream.ServerError
			if errors.As(err, &inStream) != strings.Contains(tc.name, "in the stream") {
				t.Fatalf("the refusal %T: %v; TGI's /generate_stream refuses inside the stream, /generate with a status", err, err)
			}
			l, err := c.Limits(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			fitted, err := FitPrompt(context.Background(), c, InputBudget(l, maxNew, 0), in, fimBuild)
			if err != nil {
				t.Fatal(err)
			}
			if err := generate(fitted); err != nil {
				t.Fatalf("the fitted prompt was refused: %v", err)
			}
			counts := srv.PromptTokens()
			if last := counts[len(counts)-1]; last > tc.limit || last < tc.limit*8/10 {
				t.Errorf("the server counted %d prompt tokens; want at most %d, and most of it", last, tc.limit)
			}
		})
	}
}

// What /tokenize is asked stays small: the whole 5,000-line document is
// not sent to be counted when its estimate is far over the budget.
func TestFitPromptDoesNotCountAHugeDocument(t *testing.T) {
	var mu sync.Mutex
	longest := 0
	counter := &fakeCounter{count: func(s string) int {
		mu.Lock()
		longest = max(longest, len(s))
		mu.Unlock()
		return streamtest.FakeTokens(s)
	}}
	_, in := document(5000, 2500)
	if _, err := FitPrompt(context.Background(), counter, 500, in, fimBuild); err != nil {
		t.Fatal(err)
	}
	if whole, _ := fimBuild(in); longest*10 > len(whole) {
		t.Errorf("a text of %d bytes was counted, of a document of %d", longest, len(whole))
	}
}

func TestFitPromptStatusErrorFallsBack(t *testing.T) {
	srv := streamtest.NewTGI(t, streamtest.Error(http.StatusInternalServerError, `{"error":"boom"}`), "m")
	c := newBudgetClient(t, srv.URL, stream.BackendTGI)
	_, in := document(5000, 2500)
	got, err := FitPrompt(context.Background(), c, 500, in, fimBuild)
	if err != nil {
		t.Fatal(err)
	}
	prompt, _ := fimBuild(got)
	if e := stream.EstimateTokens(prompt); e*(100+estimateMargin) > 500*100 {
		t.Errorf("with the tokenizer failing, the prompt's estimate is %d, over the budget with its margin", e)
	}
}
