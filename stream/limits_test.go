package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/streamtest"
)

// counted is an endpoint whose routes answer from a table, counting the
// requests to each path.
type counted struct {
	*httptest.Server
	mu    sync.Mutex
	hits  map[string]int
	auth  map[string][]string // Authorization headers seen, by path
	route func(path string, calls int) (int, string)
}

func newCounted(t *testing.T, route func(path string, calls int) (int, string)) *counted {
	c := &counted{hits: map[string]int{}, auth: map[string][]string{}, route: route}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.hits[r.URL.Path]++
		c.auth[r.URL.Path] = append(c.auth[r.URL.Path], r.Header.Get("Authorization"))
		n := c.hits[r.URL.Path]
		c.mu.Unlock()
		status, body := c.route(r.URL.Path, n)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *counted) calls(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[path]
}

func routes(table map[string]string) func(string, int) (int, string) {
	return func(path string, _ int) (int, string) {
		if body, ok := table[path]; ok {
			return http.StatusOK, body
		}
		return http.StatusNotFound, `{"error":"not found"}`
	}
}

func TestLimits(t *testing.T) {
	props := `{"default_generation_settings":{"params":{"n_predict":-1},"n_ctx":2048},"total_slots":1,"build_info":"b1-de3ff81"}`
	cases := []struct {
		name    string
		backend stream.Backend
		path    string // appended to the server's URL
		routes  map[string]string
		want    stream.Limits
		asked   string // the route that must be asked, by the first call only
	}{
		{"tgi", stream.BackendTGI, "", map[string]string{"/info": `{"model_id":"m","max_input_tokens":4095,"max_total_tokens":4096,"max_stop_sequences":4}`},
			stream.Limits{MaxInputTokens: 4095, MaxTotalTokens: 4096}, "/info"},
		{"tgi 1.x names max_input_length", stream.BackendTGI, "", map[string]string{"/info": `{"model_id":"m","max_input_length":1024,"max_total_tokens":2048}`},
			stream.Limits{MaxInputTokens: 1024, MaxTotalTokens: 2048}, "/info"},
		{"tgi detected", stream.BackendAuto, "", map[string]string{"/info": `{"model_id":"m","max_input_tokens":100,"max_total_tokens":300}`},
			stream.Limits{MaxInputTokens: 100, MaxTotalTokens: 300}, ""},
		{"tgi without /info", stream.BackendTGI, "", nil, stream.Limits{}, "/info"},
		{"llama-server, chat", stream.BackendOpenAI, "/v1", map[string]string{"/props": props}, stream.Limits{MaxTotalTokens: 2048}, "/props"},
		{"llama-server, completions", stream.BackendOpenAICompletions, "/v1", map[string]string{"/props": props}, stream.Limits{MaxTotalTokens: 2048}, "/props"},
		{"llama-server detected", stream.BackendAuto, "", map[string]string{"/v1/models": streamtest.LlamaServerModels("m"), "/props": props},
			stream.Limits{MaxTotalTokens: 2048}, "/props"},
		{"openai-compatible without /props", stream.BackendOpenAI, "/v1", nil, stream.Limits{}, "/props"},
		{"openai-compatible with another /props", stream.BackendOpenAI, "/v1", map[string]string{"/props": `{"version":"1"}`}, stream.Limits{}, "/props"},
		{"ollama", stream.BackendOllama, "", nil, stream.Limits{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCounted(t, routes(tc.routes))
			c := newClient(t, srv.URL+tc.path, tc.backend)
			asked := 0
			for i := range 3 {
				got, err := c.Limits(context.Background())
				if err != nil || got != tc.want {
					t.Fatalf("call %d: Limits = %+v, %v; want %+v", i, got, err, tc.want)
				}
				if i == 0 && tc.asked != "" {
					if asked = srv.calls(tc.asked); asked == 0 {
						t.Fatalf("%s was not asked", tc.asked)
					}
				}
			}
			if tc.asked != "" && srv.calls(tc.asked) != asked {
				t.Errorf("%s was asked again (%d times in all); the first answer is kept", tc.asked, srv.calls(tc.asked))
			}
			if tc.backend == stream.BackendOllama && len(srv.hits) != 0 {
				t.Errorf("an Ollama endpoint was asked %v", srv.hits)
			}
		})
	}
}

// A failure to read the limits is an error, and is not kept: the next call
// asks again (a llama-server answers 503 while its model loads).
func TestLimitsFailureIsNotKept(t *testing.T) {
	srv := newCounted(t, func(path string, n int) (int, string) {
		if path == "/props" && n == 1 {
			return http.StatusServiceUnavailable, `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`
		}
		return http.StatusOK, `{"default_generation_settings":{"n_ctx":512}}`
	})
	c := newClient(t, srv.URL+"/v1", stream.BackendOpenAICompletions)
	if _, err := c.Limits(context.Background()); err == nil || !strings.Contains(err.Error(), "Loading model") {
		t.Fatalf("Limits while loading: %v, want the server's error", err)
	}
	if l, err := c.Limits(context.Background()); err != nil || l.MaxTotalTokens != 512 {
		t.Fatalf("Limits after loading = %+v, %v", l, err)
	}
}

func TestCountTokens(t *testing.T) {
	text := "func main() {\n\tfmt.Println(\"hello, world\")\n}\n<fim_middle>"
	fake := streamtest.FakeTokens(text)
	estimate := stream.EstimateTokens(text)
	cases := []struct {
		name    string
		server  func(t *testing.T) *streamtest.Server
		backend stream.Backend
		path    string
		want    int
		exact   bool
		body    map[string]any // what /tokenize must be sent; nil: never asked
	}{
		{"tgi", func(t *testing.T) *streamtest.Server {
			return streamtest.NewTGI(t, streamtest.Script{}, "m").Tokenizer(1000)
		},
			stream.BackendTGI, "", fake, true, map[string]any{"inputs": text}},
		{"llama-server, completions", func(t *testing.T) *streamtest.Server {
			return streamtest.NewLlamaServer(t, streamtest.Script{}, "m").LlamaTokenizer(2048)
		}, stream.BackendOpenAICompletions, "/v1", fake, true, map[string]any{"content": text, "add_special": true, "parse_special": true}},
		{"llama-server, chat", func(t *testing.T) *streamtest.Server {
			return streamtest.NewLlamaServer(t, streamtest.Script{}, "m").LlamaTokenizer(2048)
		}, stream.BackendOpenAI, "/v1", fake, true, map[string]any{"content": text, "add_special": true, "parse_special": true}},
		{"tgi without a fast tokenizer", func(t *testing.T) *streamtest.Server {
			return streamtest.NewTGI(t, streamtest.Error(http.StatusNotFound, `{"error":"No fast tokenizer or tokenizer.json for this model","error_type":"no fast tokenizer"}`), "m")
		}, stream.BackendTGI, "", estimate, false, map[string]any{"inputs": text}},
		{"vllm", func(t *testing.T) *streamtest.Server { return streamtest.NewVLLM(t, streamtest.Script{}, "m") },
			stream.BackendOpenAI, "/v1", estimate, false, nil},
		{"ollama", func(t *testing.T) *streamtest.Server { return streamtest.NewOllama(t, streamtest.Script{}, "m") },
			stream.BackendOllama, "", estimate, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.server(t)
			c := newClient(t, srv.URL+tc.path, tc.backend)
			for i := range 2 {
				n, exact, err := c.CountTokens(context.Background(), text)
				if err != nil || n != tc.want || exact != tc.exact {
					t.Fatalf("call %d: CountTokens = %d, %v, %v; want %d, %v", i, n, exact, err, tc.want, tc.exact)
				}
			}
			var asked []streamtest.Request
			for _, r := range srv.Requests() {
				if r.Path == "/tokenize" {
					asked = append(asked, r)
				}
			}
			switch {
			case tc.body == nil && len(asked) > 0:
				t.Fatalf("/tokenize was asked of a server without one: %s", asked[0].Body)
			case tc.body != nil && !tc.exact && len(asked) != 1:
				t.Fatalf("/tokenize was asked %d times; a server without one is asked once", len(asked))
			case tc.body != nil && tc.exact && len(asked) != 2:
				t.Fatalf("/tokenize was asked %d times, want each time", len(asked))
			case tc.body != nil && !sameJSON(asked[0].Body, tc.body):
				t.Fatalf("/tokenize was sent %s, want %v", asked[0].Body, tc.body)
			}
		})
	}
}

// A tokenizer that fails is an error, with the estimate, and is asked again
// next time: only a missing route is remembered.
func TestCountTokensFailure(t *testing.T) {
	srv := newCounted(t, func(path string, n int) (int, string) {
		if n == 1 {
			return http.StatusInternalServerError, `{"error":"tokenizer crashed"}`
		}
		return http.StatusOK, `[{"id":1,"text":"a","start":0,"stop":1},{"id":2,"text":"b","start":1,"stop":2}]`
	})
	c := newClient(t, srv.URL, stream.BackendTGI)
	n, exact, err := c.CountTokens(context.Background(), "a b")
	if err == nil || !strings.Contains(err.Error(), "tokenizer crashed") || exact || n != stream.EstimateTokens("a b") {
		t.Fatalf("CountTokens = %d, %v, %v; want the estimate and the server's error", n, exact, err)
	}
	if n, exact, err = c.CountTokens(context.Background(), "a b"); err != nil || !exact || n != 2 {
		t.Fatalf("CountTokens after the failure = %d, %v, %v; want 2, exact", n, exact, err)
	}
}

// The answers of both servers' /tokenize are counted, whatever the order
// of their fields; anything else is an error.
func TestCountTokensAnswers(t *testing.T) {
	cases := []struct {
		name, body string
		want       int // -1: an error
	}{
		{"tgi", `[{"id":9707,"text":"Hello","start":0,"stop":5},{"id":1879,"text":" world","start":5,"stop":11}]`, 2},
		{"tgi, none", `[]`, 0},
		{"llama-server ids", `{"tokens":[9707,1879,0]}`, 3},
		{"llama-server pieces", `{"tokens":[{"id":198,"piece":[195]},{"id":164,"piece":[161]}]}`, 2},
		{"tokens not first", `{"model":"m","n":[1,2,3,4],"tokens":[1]}`, 1},
		{"no tokens", `{"count":3}`, -1},
		{"not json", `Hello world`, -1},
		{"cut short", `[{"id":1},`, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCounted(t, func(string, int) (int, string) { return http.StatusOK, tc.body })
			c := newClient(t, srv.URL, stream.BackendTGI)
			n, exact, err := c.CountTokens(context.Background(), "Hello world")
			if tc.want < 0 {
				if err == nil || exact {
					t.Fatalf("CountTokens = %d, %v, %v; want an error", n, exact, err)
				}
				return
			}
			if err != nil || !exact || n != tc.want {
				t.Fatalf("CountTokens = %d, %v, %v; want %d, exact", n, exact, err, tc.want)
			}
		})
	}
}

// The token goes with the questions of limits and tokens to the configured
// endpoint, and to no server a client with no URL found on this machine.
func TestBudgetRequestsCarryTheTokenOnlyToTheEndpoint(t *testing.T) {
	const token = "hf_budgetsecret"
	t.Run("configured", func(t *testing.T) {
		for _, tc := range []struct {
			backend stream.Backend
			path    string
			srv     func(t *testing.T) *streamtest.Server
		}{
			{stream.BackendTGI, "", func(t *testing.T) *streamtest.Server {
				return streamtest.NewTGI(t, streamtest.Script{}, "m").Tokenizer(100)
			}},
			{stream.BackendOpenAICompletions, "/v1", func(t *testing.T) *streamtest.Server {
				return streamtest.NewLlamaServer(t, streamtest.Script{}, "m").LlamaTokenizer(100)
			}},
		} {
			srv := tc.srv(t)
			c := newClient(t, srv.URL+tc.path, tc.backend, func(cfg *stream.Config) { cfg.Endpoint.Token = token })
			if _, err := c.Limits(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, exact, err := c.CountTokens(context.Background(), "x"); err != nil || !exact {
				t.Fatal(exact, err)
			}
			reqs := srv.Requests()
			if len(reqs) < 2 {
				t.Fatalf("%s: %d requests", tc.backend, len(reqs))
			}
			for _, r := range reqs {
				if got := r.Header.Get("Authorization"); got != "Bearer "+token {
					t.Errorf("%s %s %s carried Authorization %q, want the token", tc.backend, r.Method, r.Path, got)
				}
			}
		}
	})
	t.Run("found on this machine", func(t *testing.T) {
		srv := streamtest.NewLlamaServer(t, streamtest.Script{}, "qwen2.5-coder").LlamaTokenizer(100)
		c, _ := chooser(t, token, []int{srv.Port()})
		if l, err := c.Limits(context.Background()); err != nil || l.MaxTotalTokens != 100 {
			t.Fatal(l, err)
		}
		if n, exact, err := c.CountTokens(context.Background(), "one two"); err != nil || !exact || n != 2 {
			t.Fatal(n, exact, err)
		}
		for _, r := range srv.Requests() {
			if got := r.Header.Get("Authorization"); got != "" {
				t.Errorf("%s %s to a server found on this machine carried Authorization %q", r.Method, r.Path, got)
			}
		}
	})
}

// EstimateTokens's rules, each pinned by a text that depends on it.
func TestEstimateTokens(t *testing.T) {
	cases := []struct {
		text string
		want int
	}{
		{"", 1},                   // the beginning-of-sequence token
		{"hello", 1 + 2},          // 5 letters, 3 to a token
		{"ResponseWriter", 1 + 5}, // Response (3) Writer (2)
		{"HTTP", 1 + 2},           // capitals, 2 to a token
		{"MAXLEN", 1 + 3},
		{"HTTPServer", 1 + 2 + 2},          // HTTP, Server
		{"x := 10", 1 + 1 + 1 + 1 + 1 + 2}, // x, :, =, the space before a digit, 1, 0
		{"\t\treturn\n", 1 + 2 + 2 + 1},    // tabs and line breaks one each
		{"a      b", 1 + 1 + 2 + 1},        // 6 spaces: 5 of them, 4 to a token, rounded up
		{"été", 1 + 2 + 1 + 2},             // é is 2 bytes
		{"日本", 1 + 3 + 3},
		{"\xff", 1 + 1}, // a byte that is not UTF-8
	}
	for _, tc := range cases {
		if got := stream.EstimateTokens(tc.text); got != tc.want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", tc.text, got, tc.want)
		}
	}
}

// sameJSON reports whether body is the JSON encoding of want.
func sameJSON(body []byte, want map[string]any) bool {
	var got any
	if json.Unmarshal(body, &got) != nil {
		return false
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return string(a) == string(b)
}
