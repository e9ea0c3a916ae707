package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/streamtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newClient(t *testing.T, url string, backend stream.Backend, mod ...func(*stream.Config)) *stream.Client {
	t.Helper()
	hc := stream.NewHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	cfg := stream.Config{Endpoint: stream.Endpoint{URL: url, Backend: backend, Model: "m"}, MaxLoadingWait: -1, HTTPClient: hc}
	for _, f := range mod {
		f(&cfg)
	}
	c, err := stream.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// generate runs a whole generation and returns its output and result.
func generate(t *testing.T, c *stream.Client, req stream.Request) (string, stream.Result, error) {
	t.Helper()
	s, err := c.Generate(context.Background(), req)
	if err != nil {
		return "", stream.Result{}, err
	}
	defer s.Close()
	var out strings.Builder
	for s.Next() {
		out.WriteString(s.Text())
	}
	res := s.Result()
	if res.Text != out.String() {
		t.Errorf("Result.Text %q != streamed %q", res.Text, out.String())
	}
	return out.String(), res, s.Err()
}

// The recorded responses in testdata/fixtures (see SOURCES.md there) replayed
// through a real HTTP server, whole and cut into small chunks. want is what
// the recording says was generated: TGI's generated_text (without the prompt
// where the request asked for full text, and without special tokens), or the
// concatenated chat deltas.
func TestFixtureReplay(t *testing.T) {
	const recordedPrompt = "Please answer the following question: complete one two and ____."
	tests := []struct {
		file    string
		backend stream.Backend
		want    string
		reason  stream.FinishReason
		tokens  int
		errText string
	}{
		{file: "tgi-generate-stream-zephyr-7b-beta-length.sse", backend: stream.BackendTGI,
			want: "Deep learning is a subfield of machine learning that uses artificial neural networks with multiple layers to learn and", reason: stream.FinishLength, tokens: 20},
		{file: "tgi-generate-stream-flan-t5-xxl-eos-special.sse", backend: stream.BackendTGI,
			want: "one two three four", reason: stream.FinishEOS, tokens: 5},
		{file: "tgi-generate-stream-llama-2-7b-eos-special-fulltext.sse", backend: stream.BackendTGI,
			want:   strings.TrimPrefix("Please answer the following question: complete one two and ____. How does the fish find its ____? After the fish is ________ how does it get to the shore?\n1. How do objects become super saturated bubbles?\n2. What resist limiting the movement of gas?", recordedPrompt),
			reason: stream.FinishEOS, tokens: 52},
		{file: "tgi-generate-stream-llama-3.2-3b-data-space-length.sse", backend: stream.BackendTGI,
			want: " 1. 2. 3. 4. 5. 6. 7. 8. 9. 10. 11. 12. 13. 14. 15. 16. 17", reason: stream.FinishLength, tokens: 50},
		{file: "tgi-2.0.3-generate-stream-swallow-7b-japanese-transcript.sse", backend: stream.BackendTGI,
			want: "\n日本で一番高い山はなんですか?\nベストアンサー\n富士山です。", reason: stream.FinishLength, tokens: 20},
		{file: "tgi-generate-stream-error-validation-oasst.sse", backend: stream.BackendTGI,
			errText: "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096"},
		{file: "tgi-generate-stream-error-validation-llama-3.2-3b-data-space.sse", backend: stream.BackendTGI,
			errText: "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096"},
		{file: "tgi-3.0.1-chat-completions-stream-zephyr-done.sse", backend: stream.BackendOpenAI,
			want: "Deep Learning is a subfield of machine learning that", reason: stream.FinishLength, tokens: 10},
		{file: "tgi-2.0.1-chat-completions-stream-mistral-legacy-no-done.sse", backend: stream.BackendOpenAI,
			want: " The answer to the equation 1 + 1 is 2.", reason: stream.FinishEOS, tokens: 14},
		{file: "openai-chat-completions-stream-gpt-3.5-turbo.sse", backend: stream.BackendOpenAI,
			want: "two", reason: stream.FinishEOS, tokens: 1},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 7, 64} {
			t.Run(fmt.Sprintf("%s/chunk=%d", tt.file, chunk), func(t *testing.T) {
				srv := streamtest.NewServer(t, streamtest.Fixture(t, filepath.Join("testdata", "fixtures", tt.file), chunk))
				c := newClient(t, srv.URL, tt.backend)
				got, res, err := generate(t, c, stream.Request{Prompt: "p", Params: stream.Parameters{MaxNewTokens: 100}})
				if tt.errText != "" {
					var se *stream.ServerError
					if !errors.As(err, &se) || se.Type != "validation" || !strings.Contains(err.Error(), tt.errText) {
						t.Fatalf("err = %v, want validation ServerError containing %q", err, tt.errText)
					}
					if got != "" {
						t.Errorf("output %q before the error, want none", got)
					}
					return
				}
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got != tt.want {
					t.Errorf("output\n got %q\nwant %q", got, tt.want)
				}
				if res.FinishReason != tt.reason {
					t.Errorf("finish reason %q, want %q", res.FinishReason, tt.reason)
				}
				if res.Tokens != tt.tokens {
					t.Errorf("tokens %d, want %d", res.Tokens, tt.tokens)
				}
			})
		}
	}
}

func TestRequestBodies(t *testing.T) {
	temp, topP, topK, rep, seed, trunc := 0.7, 0.9, 40, 1.1, uint64(3), 100
	params := stream.Parameters{MaxNewTokens: 12, Temperature: &temp, TopP: &topP, TopK: &topK,
		RepetitionPenalty: &rep, Seed: &seed, StopSequences: []string{"a", "b", "c", "d", "e"}, Truncate: &trunc}
	tests := []struct {
		backend stream.Backend
		script  streamtest.Script
		path    string
		check   func(t *testing.T, body map[string]any)
	}{
		{stream.BackendTGI, streamtest.TGI(0, "length", "x"), "/generate_stream", func(t *testing.T, b map[string]any) {
			p := b["parameters"].(map[string]any)
			want := map[string]any{"max_new_tokens": 12.0, "temperature": 0.7, "top_p": 0.9, "top_k": 40.0,
				"repetition_penalty": 1.1, "seed": 3.0, "do_sample": true, "return_full_text": false, "details": true, "truncate": 100.0}
			for k, v := range want {
				if p[k] != v {
					t.Errorf("parameters.%s = %v, want %v", k, p[k], v)
				}
			}
			if got := len(p["stop"].([]any)); got != 4 {
				t.Errorf("sent %d stops, want TGI's default max 4", got)
			}
			if b["inputs"] != "prompt" || b["stream"] != true {
				t.Errorf("inputs/stream = %v/%v", b["inputs"], b["stream"])
			}
		}},
		{stream.BackendOpenAI, streamtest.OpenAIChat(0, "stop", "x"), "/chat/completions", func(t *testing.T, b map[string]any) {
			msgs := b["messages"].([]any)
			if len(msgs) != 2 || msgs[0].(map[string]any)["role"] != "system" || msgs[1].(map[string]any)["content"] != "prompt" {
				t.Errorf("messages = %v", msgs)
			}
			if b["model"] != "m" || b["stream"] != true || b["max_tokens"] != 12.0 || b["temperature"] != 0.7 || b["seed"] != 3.0 {
				t.Errorf("body = %v", b)
			}
			if _, ok := b["stop"]; ok {
				t.Errorf("sent stop %v: the server would hide which one ended the text", b["stop"])
			}
		}},
		{stream.BackendOpenAICompletions, streamtest.Script{Chunks: streamtest.Events(0, `{"choices":[{"text":"x","finish_reason":"length"}]}`, "[DONE]")}, "/completions", func(t *testing.T, b map[string]any) {
			if b["prompt"] != "prompt" || b["messages"] != nil || b["max_tokens"] != 12.0 || b["stop"] != nil {
				t.Errorf("body = %v", b)
			}
		}},
		{stream.BackendOllama, streamtest.Ollama(0, "stop", "x"), "/api/generate", func(t *testing.T, b map[string]any) {
			o := b["options"].(map[string]any)
			if b["prompt"] != "prompt" || b["model"] != "m" || o["num_predict"] != 12.0 || o["repeat_penalty"] != 1.1 || o["top_k"] != 40.0 {
				t.Errorf("body = %v", b)
			}
			if _, ok := o["stop"]; ok {
				t.Errorf("sent stop %v: the server would hide which one ended the text", o["stop"])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.backend), func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			c := newClient(t, srv.URL, tt.backend, func(c *stream.Config) { c.Endpoint.Token = "hf_secret" })
			out, _, err := generate(t, c, stream.Request{Prompt: "prompt", System: "sys", Params: params})
			if err != nil || out != "x" {
				t.Fatalf("generate = %q, %v", out, err)
			}
			req, _ := srv.LastRequest()
			if req.Path != tt.path {
				t.Errorf("path %s, want %s", req.Path, tt.path)
			}
			if got := req.Header.Get("Authorization"); got != "Bearer hf_secret" {
				t.Errorf("Authorization = %q", got)
			}
			tt.check(t, req.JSON())
		})
	}
}

func TestGreedyTemperatureZeroForTGI(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "x"))
	c := newClient(t, srv.URL, stream.BackendTGI)
	zero := 0.0
	if _, _, err := generate(t, c, stream.Request{Prompt: "p", Params: stream.Parameters{Temperature: &zero}}); err != nil {
		t.Fatal(err)
	}
	req, _ := srv.LastRequest()
	p := req.JSON()["parameters"].(map[string]any)
	if _, ok := p["temperature"]; ok || p["do_sample"] != false {
		t.Errorf("temperature 0 sent as %v (do_sample %v); TGI rejects 0", p["temperature"], p["do_sample"])
	}
}

// With no model configured, an OpenAI-compatible request names the
// server's only model, or none: never a made-up one.
func TestOpenAIModelWhenNoneConfigured(t *testing.T) {
	tests := []struct {
		name       string
		configured string
		models     string // the /models answer; "" for none (404)
		want       any    // the body's model; nil for none
	}{
		{"the server's only model", "", `{"object":"list","data":[{"id":"org/only"}]}`, "org/only"},
		{"several models", "", `{"object":"list","data":[{"id":"a"},{"id":"b"}]}`, nil},
		{"no model list", "", "", nil},
		{"configured", "mine", `{"object":"list","data":[{"id":"org/only"}]}`, "mine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.OpenAIChat(0, "stop", "x"))
			if tt.models != "" {
				srv.Route("/models", tt.models)
			}
			c := newClient(t, srv.URL, stream.BackendOpenAI, func(c *stream.Config) { c.Endpoint.Model = tt.configured })
			for range 2 { // the model list is read once
				if _, _, err := generate(t, c, stream.Request{Prompt: "p"}); err != nil {
					t.Fatal(err)
				}
				req, _ := srv.LastRequest()
				if got := req.JSON()["model"]; got != tt.want {
					t.Errorf("model %v, want %v", got, tt.want)
				}
			}
			lists := 0
			for _, r := range srv.Requests() {
				if r.Path == "/models" {
					lists++
				}
			}
			want := 1
			if tt.configured != "" {
				want = 0
			}
			if lists != want {
				t.Errorf("read the model list %d times, want %d", lists, want)
			}
		})
	}
}

func TestTGIMaxStopSequencesFromInfo(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "x", "y", "STOP2", "z"))
	srv.Route("/info", `{"model_id":"m","max_stop_sequences":2}`)
	c := newClient(t, srv.URL, stream.BackendTGI)
	out, res, err := generate(t, c, stream.Request{Prompt: "p", Params: stream.Parameters{StopSequences: []string{"STOP1", "Q", "STOP2"}}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := srv.LastRequest()
	stops := req.JSON()["parameters"].(map[string]any)["stop"].([]any)
	if len(stops) != 2 {
		t.Errorf("sent stops %v, want the first 2 (max_stop_sequences)", stops)
	}
	// The third stop was not sent, but the client enforces it.
	if out != "xy" || res.FinishReason != stream.FinishStopSequence {
		t.Errorf("out %q reason %q, want %q stop_sequence", out, res.FinishReason, "xy")
	}
}

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		status int
		body   string
		token  string
		want   string
		setup  bool // an error about the setup, for genls doctor
	}{
		{401, `{"error":"Invalid credentials in Authorization header"}`, "hf_x", "rejected the token (set HF_TOKEN to a valid one, or run `huggingface-cli login`)", true},
		{401, `{"error":"Invalid credentials in Authorization header"}`, "", "wants an API token and none was sent (set HF_TOKEN, or run `huggingface-cli login`)", true},
		{403, `{"error":"forbidden"}`, "hf_x", "rejected the token", true},
		{403, `{"error":"forbidden"}`, "", "none was sent", true},
		{404, `{"error":"Model this-model-does-not-exist-123 does not exist"}`, "", "wrong endpoint URL or model name (Model this-model-does-not-exist-123 does not exist)", true},
		{422, "Failed to deserialize the JSON body into the target type: missing field `inputs` at line 1 column 158", "", "refused the request: Failed to deserialize", false},
		{422, `{"error":"Input validation error: top_p must be > 0.0 and < 1.0","error_type":"validation"}`, "", "refused the request: Input validation error: top_p", false},
		{424, `{"error":"Request failed during generation: Server error: CUDA out of memory","error_type":"generation"}`, "", "failed to generate (424): Request failed during generation", false},
		{429, `{"error":"Model is overloaded","error_type":"overloaded"}`, "", "overloaded or rate-limited (429): Model is overloaded", false},
		{500, `{"error":{"message":"internal","type":"server_error"}}`, "", "endpoint failed (500): internal", false},
		{503, `{"error":"Service Unavailable"}`, "", "endpoint failed (503): Service Unavailable", false},
		{503, `{"error":"Model m is currently loading","estimated_time":12.5}`, "", "still loading (estimated 12 s more)", false},
		{400, `{"detail":"bad thing"}`, "", "answered 400: bad thing", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d token=%t", tt.status, tt.token != ""), func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.Error(tt.status, tt.body))
			c := newClient(t, srv.URL, stream.BackendTGI, func(c *stream.Config) { c.Endpoint.Token = tt.token })
			_, _, err := generate(t, c, stream.Request{Prompt: "p"})
			var se *stream.StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.status {
				t.Fatalf("err = %v, want StatusError %d", err, tt.status)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("message %q does not contain %q", err, tt.want)
			}
			if stream.IsSetupError(err) != tt.setup {
				t.Errorf("IsSetupError = %t, want %t", !tt.setup, tt.setup)
			}
		})
	}
}

func TestRetryWhileModelLoads(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "ok"))
	srv.Push(streamtest.Error(503, `{"error":"loading","estimated_time":0.01}`))
	var retries []time.Duration
	c := newClient(t, srv.URL, stream.BackendTGI, func(c *stream.Config) {
		c.MaxLoadingWait = 10 * time.Second
		c.OnRetry = func(wait time.Duration, err error) { retries = append(retries, wait) }
	})
	out, _, err := generate(t, c, stream.Request{Prompt: "p"})
	if err != nil || out != "ok" {
		t.Fatalf("generate = %q, %v", out, err)
	}
	if len(retries) != 1 || retries[0] != time.Second {
		t.Errorf("retries = %v, want one wait of 1s (estimates below 1 s are rounded up)", retries)
	}

	// Bounded: an estimate beyond the budget is reported, not waited for.
	srv.Push(streamtest.Error(503, `{"error":"loading","estimated_time":600}`))
	c = newClient(t, srv.URL, stream.BackendTGI, func(c *stream.Config) { c.MaxLoadingWait = 5 * time.Second })
	if _, _, err := generate(t, c, stream.Request{Prompt: "p"}); err == nil || !strings.Contains(err.Error(), "still loading") {
		t.Errorf("err = %v, want still loading", err)
	}
}

func TestMidStreamFailures(t *testing.T) {
	two := streamtest.TGI(0, "length", "ab", "cd", "ef").Chunks[:2]
	tests := []struct {
		name   string
		script streamtest.Script
		mod    func(*stream.Config)
		check  func(error) bool
	}{
		{"ends without final event", streamtest.Script{Chunks: two}, nil,
			func(err error) bool { return errors.Is(err, stream.ErrNoFinalEvent) }},
		{"connection reset", streamtest.Script{Chunks: two, Reset: true}, nil,
			func(err error) bool { var ce *stream.ConnectionError; return errors.As(err, &ce) && ce.MidStream }},
		{"idle stall", streamtest.Script{Chunks: two, Hang: true}, func(c *stream.Config) { c.IdleTimeout = 200 * time.Millisecond },
			func(err error) bool { var ie *stream.IdleTimeoutError; return errors.As(err, &ie) }},
		{"malformed JSON", streamtest.Script{Chunks: append(two[:2:2], streamtest.Events(0, `{"token":{"text":`)...)}, nil,
			func(err error) bool { var me *stream.MalformedEventError; return errors.As(err, &me) }},
		{"in-band generation error", streamtest.Script{Chunks: append(two[:2:2], streamtest.Events(0, `{"error":"CUDA OOM","error_type":"generation"}`)...)}, nil,
			func(err error) bool {
				var se *stream.ServerError
				return errors.As(err, &se) && se.Type == "generation" && strings.Contains(err.Error(), "failed while generating: CUDA OOM")
			}},
		{"oversized event", streamtest.Script{Chunks: append(two[:2:2], streamtest.Chunk{Data: []byte("data: " + strings.Repeat("x", stream.MaxEventSize+1))})}, nil,
			func(err error) bool { return errors.Is(err, stream.ErrEventTooLarge) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			var mods []func(*stream.Config)
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			c := newClient(t, srv.URL, stream.BackendTGI, mods...)
			out, res, err := generate(t, c, stream.Request{Prompt: "p", Params: stream.Parameters{StopSequences: []string{"cdX"}}})
			if !tt.check(err) {
				t.Fatalf("err = %#v (%v)", err, err)
			}
			// Everything generated before the failure is kept, including
			// the "cd" held back as a possible start of the stop "cdX".
			if out != "abcd" || res.FinishReason != stream.FinishError {
				t.Errorf("out %q reason %q, want %q error", out, res.FinishReason, "abcd")
			}
		})
	}
}

// promptly bounds what must happen at once, such as a stream ending after
// its context is cancelled; it is far below any timeout that could end the
// stream otherwise, so a test fails rather than passing late.
const promptly = time.Second

// Cancelling the context given to Generate ends the generation at once, not
// at the idle timeout, and closes the upstream request: while the server has
// not answered yet, and in the middle of the stream.
func TestCancelClosesUpstream(t *testing.T) {
	tests := []struct {
		name   string
		script streamtest.Script
		// first is the text read before cancelling; "" cancels as soon as
		// the request has reached the server.
		first string
	}{
		{"before the response headers", streamtest.Script{HangBeforeHeaders: true}, ""},
		{"mid-stream", streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b").Chunks[:1], Hang: true}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			c := newClient(t, srv.URL, stream.BackendTGI, func(c *stream.Config) { c.IdleTimeout = time.Minute })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first := make(chan string, 1)
			type outcome struct {
				err    error
				reason stream.FinishReason
			}
			ended := make(chan outcome, 1)
			go func() {
				s, err := c.Generate(ctx, stream.Request{Prompt: "p"})
				if err != nil {
					ended <- outcome{err, stream.FinishError}
					return
				}
				defer s.Close()
				for s.Next() {
					select {
					case first <- s.Text():
					default:
					}
				}
				ended <- outcome{s.Err(), s.Result().FinishReason}
			}()
			if tt.first == "" {
				if !srv.WaitRequests(1, 5*time.Second) {
					t.Fatal("the request did not reach the server")
				}
			} else if got := <-first; got != tt.first {
				t.Fatalf("first text %q, want %q", got, tt.first)
			}
			cancel()
			var got outcome
			select {
			case got = <-ended:
			case <-time.After(promptly):
				srv.CloseClientConnections() // end the generation, so the goroutine ends
				<-ended
				t.Fatalf("the generation was still running %s after its context was cancelled", promptly)
			}
			if !errors.Is(got.err, context.Canceled) {
				t.Errorf("err %v, want context.Canceled", got.err)
			}
			if tt.first != "" && got.reason != stream.FinishCancelled {
				t.Errorf("reason %q, want %q", got.reason, stream.FinishCancelled)
			}
			if !srv.WaitDisconnect(5 * time.Second) {
				t.Errorf("the upstream request was not closed")
			}
		})
	}
}

// A stream that ends — at a stop sequence, at the token limit, or at the
// server's final event — closes the upstream request at once, before the
// caller closes the Stream: a server that goes on sending after the end
// stops costing anything.
func TestEndClosesUpstream(t *testing.T) {
	hang := func(s streamtest.Script, n int) streamtest.Script {
		return streamtest.Script{Chunks: s.Chunks[:n], Hang: true}
	}
	tests := []struct {
		name   string
		script streamtest.Script
		params stream.Parameters
		want   string
		reason stream.FinishReason
	}{
		// The servers below ignore the limit and the stop sequence.
		{"token limit", hang(streamtest.TGI(0, "length", "a", "b", "c", "d"), 3), stream.Parameters{MaxNewTokens: 2},
			"ab", stream.FinishLength},
		{"stop sequence", hang(streamtest.TGI(0, "length", "a", "b", "STOP", "c"), 3), stream.Parameters{StopSequences: []string{"STOP"}},
			"ab", stream.FinishStopSequence},
		{"final event", hang(streamtest.TGI(0, "eos_token", "a", "b"), 2), stream.Parameters{},
			"ab", stream.FinishEOS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			c := newClient(t, srv.URL, stream.BackendTGI)
			s, err := c.Generate(context.Background(), stream.Request{Prompt: "p", Params: tt.params})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var out strings.Builder
			for s.Next() {
				out.WriteString(s.Text())
			}
			if out.String() != tt.want || s.Result().FinishReason != tt.reason || s.Err() != nil {
				t.Fatalf("out %q reason %q err %v, want %q %q", out.String(), s.Result().FinishReason, s.Err(), tt.want, tt.reason)
			}
			if !srv.WaitDisconnect(5 * time.Second) {
				t.Errorf("the upstream request is still open after the stream ended")
			}
		})
	}
}

// With no max_new_tokens given, the client asks each server for
// DefaultMaxNewTokens under its own name, and enforces it when the server
// goes on anyway.
func TestDefaultMaxNewTokens(t *testing.T) {
	texts := make([]string, stream.DefaultMaxNewTokens+10)
	for i := range texts {
		texts[i] = "x"
	}
	tests := []struct {
		backend stream.Backend
		script  streamtest.Script
		sent    func(body map[string]any) any
	}{
		{stream.BackendTGI, streamtest.TGI(0, "length", texts...),
			func(b map[string]any) any { return b["parameters"].(map[string]any)["max_new_tokens"] }},
		{stream.BackendOpenAI, streamtest.OpenAIChat(0, "length", texts...),
			func(b map[string]any) any { return b["max_tokens"] }},
		{stream.BackendOllama, streamtest.Ollama(0, "length", texts...),
			func(b map[string]any) any { return b["options"].(map[string]any)["num_predict"] }},
	}
	for _, tt := range tests {
		t.Run(string(tt.backend), func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			c := newClient(t, srv.URL, tt.backend)
			out, res, err := generate(t, c, stream.Request{Prompt: "p"})
			if err != nil || len(out) != stream.DefaultMaxNewTokens || res.FinishReason != stream.FinishLength {
				t.Errorf("%d characters, reason %q, err %v; want %d, length", len(out), res.FinishReason, err, stream.DefaultMaxNewTokens)
			}
			req, _ := srv.LastRequest()
			if got := tt.sent(req.JSON()); got != float64(stream.DefaultMaxNewTokens) {
				t.Errorf("asked the server for %v tokens, want %d", got, stream.DefaultMaxNewTokens)
			}
		})
	}
}

// The idle timeout bounds the silence between bytes, not the whole stream:
// a slow but steady stream that lasts three times the timeout completes.
func TestIdleTimeoutIsBetweenBytes(t *testing.T) {
	const idle = 500 * time.Millisecond
	texts := make([]string, 15)
	for i := range texts {
		texts[i] = fmt.Sprint(i % 10)
	}
	srv := streamtest.NewServer(t, streamtest.TGI(idle/5, "length", texts...))
	c := newClient(t, srv.URL, stream.BackendTGI, func(c *stream.Config) { c.IdleTimeout = idle })
	out, res, err := generate(t, c, stream.Request{Prompt: "p"})
	if err != nil || out != strings.Join(texts, "") || res.FinishReason != stream.FinishLength {
		t.Fatalf("out %q reason %q err %v", out, res.FinishReason, err)
	}
}

// Result.Tokens is the server's own count when it reports one, which
// differs from the events received when a server sends several tokens in
// one event; else it counts the events.
func TestTokensCountedByTheServer(t *testing.T) {
	tgi := streamtest.TGI(0, "length", "ab", "cd", "ef")
	tgi.Chunks[2].Data = bytes.Replace(tgi.Chunks[2].Data, []byte(`"generated_tokens":3`), []byte(`"generated_tokens":6`), 1)
	tests := []struct {
		name    string
		backend stream.Backend
		script  streamtest.Script
		want    int
	}{
		{"tgi generated_tokens", stream.BackendTGI, tgi, 6},
		{"tgi without details", stream.BackendTGI, streamtest.Script{Chunks: streamtest.Events(0,
			`{"token":{"id":1,"text":"a","special":false},"generated_text":null,"details":null}`,
			`{"token":{"id":2,"text":"b","special":false},"generated_text":"ab","details":null}`)}, 2},
		{"openai usage", stream.BackendOpenAI, streamtest.Script{Chunks: streamtest.Events(0,
			`{"choices":[{"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}`,
			`{"choices":[{"delta":{"content":"ab"},"finish_reason":null}],"usage":null}`,
			`{"choices":[{"delta":{"content":"cd"},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`,
			"[DONE]")}, 4},
		{"openai without usage", stream.BackendOpenAI, streamtest.OpenAIChat(0, "length", "ab", "cd"), 2},
		{"ollama eval_count", stream.BackendOllama, streamtest.Script{Header: http.Header{"Content-Type": {"application/x-ndjson"}},
			Chunks: []streamtest.Chunk{
				{Data: []byte(`{"response":"ab","done":false}` + "\n")},
				{Data: []byte(`{"response":"","done":true,"done_reason":"length","eval_count":2}` + "\n")}}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			c := newClient(t, srv.URL, tt.backend)
			_, res, err := generate(t, c, stream.Request{Prompt: "p"})
			if err != nil || res.Tokens != tt.want {
				t.Errorf("tokens %d err %v, want %d", res.Tokens, err, tt.want)
			}
		})
	}
}

// The rate is over the whole generation, so it stays true when the tokens
// after the first arrive in one burst.
func TestTokensPerSecond(t *testing.T) {
	tests := []struct {
		res  stream.Result
		want float64
	}{
		{stream.Result{Tokens: 64, TimeToFirstToken: 1990 * time.Millisecond, Duration: 2 * time.Second}, 32},
		{stream.Result{Tokens: 1, TimeToFirstToken: 500 * time.Millisecond, Duration: 500 * time.Millisecond}, 2},
		{stream.Result{Tokens: 0, Duration: time.Second}, 0},
		{stream.Result{Tokens: 5}, 0},
	}
	for _, tt := range tests {
		if got := tt.res.TokensPerSecond(); got != tt.want {
			t.Errorf("%+v: %g tokens/s, want %g", tt.res, got, tt.want)
		}
	}
}

// genls cuts at a stop sequence itself, even split across tokens, and says
// the stop sequence ended the text, whatever the server would have said.
func TestStopSequenceSplitAcrossTokens(t *testing.T) {
	texts := []string{"def f():", "\n", "    return 1", "\n\n", "\nclass"}
	tests := []struct {
		backend stream.Backend
		script  streamtest.Script
	}{
		// TGI includes the stop text in its tokens.
		{stream.BackendTGI, streamtest.TGI(0, "stop_sequence", texts...)},
		// These servers are not sent the stop sequences, so they go on.
		{stream.BackendOpenAI, streamtest.OpenAIChat(0, "stop", texts...)},
		{stream.BackendOllama, streamtest.Ollama(0, "stop", texts...)},
	}
	for _, tt := range tests {
		t.Run(string(tt.backend), func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			c := newClient(t, srv.URL, tt.backend)
			out, res, err := generate(t, c, stream.Request{Prompt: "p", Params: stream.Parameters{StopSequences: []string{"\n\n\n"}}})
			if err != nil || out != "def f():\n    return 1" || res.FinishReason != stream.FinishStopSequence {
				t.Fatalf("out %q reason %q err %v", out, res.FinishReason, err)
			}
		})
	}
}

func TestOpenAIBytesRepairSplitCharacters(t *testing.T) {
	// llama.cpp and vLLM send U+FFFD for half a character in the text but the
	// real bytes in logprobs; the client must write "é", not "\uFFFD\uFFFD".
	srv := streamtest.NewServer(t, streamtest.Script{Chunks: streamtest.Events(0,
		`{"choices":[{"delta":{"content":"caf"},"finish_reason":null}]}`,
		`{"choices":[{"delta":{"content":"\ufffd"},"logprobs":{"content":[{"token":"\\xc3","bytes":[195]}]},"finish_reason":null}]}`,
		`{"choices":[{"delta":{"content":"\ufffd"},"logprobs":{"content":[{"token":"\\xa9","bytes":[169]}]},"finish_reason":null}]}`,
		`{"choices":[{"delta":{"content":"!"},"finish_reason":"stop"}]}`,
		"[DONE]")})
	c := newClient(t, srv.URL, stream.BackendOpenAI)
	out, _, err := generate(t, c, stream.Request{Prompt: "p"})
	if err != nil || out != "café!" {
		t.Fatalf("out %q err %v", out, err)
	}
}

func TestOllama(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.Ollama(0, "length", "Hello", ", ", "wörld"))
	c := newClient(t, srv.URL, stream.BackendOllama)
	out, res, err := generate(t, c, stream.Request{Prompt: "p"})
	if err != nil || out != "Hello, wörld" || res.FinishReason != stream.FinishLength || res.Tokens != 3 {
		t.Fatalf("out %q reason %q tokens %d err %v", out, res.FinishReason, res.Tokens, err)
	}
	srv.Push(streamtest.Script{Chunks: []streamtest.Chunk{{Data: []byte(`{"error":"model 'm' not found"}` + "\n")}}})
	if _, _, err := generate(t, c, stream.Request{Prompt: "p"}); err == nil || !strings.Contains(err.Error(), "model 'm' not found") {
		t.Errorf("err = %v", err)
	}
}

func TestAutoDetectBackend(t *testing.T) {
	tests := []struct {
		name  string
		route [2]string
		want  stream.Backend
		path  string
	}{
		{"tgi", [2]string{"/info", `{"model_id":"bigcode/starcoder","max_stop_sequences":4}`}, stream.BackendTGI, "/generate_stream"},
		{"openai", [2]string{"/v1/models", `{"object":"list","data":[{"id":"m"}]}`}, stream.BackendOpenAI, "/v1/chat/completions"},
		{"ollama", [2]string{"/api/tags", `{"models":[{"name":"m"}]}`}, stream.BackendOllama, "/api/generate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var script streamtest.Script
			switch tt.want {
			case stream.BackendTGI:
				script = streamtest.TGI(0, "length", "x")
			case stream.BackendOpenAI:
				script = streamtest.OpenAIChat(0, "stop", "x")
			case stream.BackendOllama:
				script = streamtest.Ollama(0, "stop", "x")
			}
			srv := streamtest.NewServer(t, script).Route(tt.route[0], tt.route[1])
			c := newClient(t, srv.URL, stream.BackendAuto)
			if b, err := c.Backend(context.Background()); err != nil || b != tt.want {
				t.Fatalf("Backend = %v, %v; want %v", b, err, tt.want)
			}
			if out, _, err := generate(t, c, stream.Request{Prompt: "p"}); err != nil || out != "x" {
				t.Fatalf("generate = %q, %v", out, err)
			}
			if req, _ := srv.LastRequest(); req.Path != tt.path {
				t.Errorf("POST %s, want %s", req.Path, tt.path)
			}
		})
	}
	t.Run("from URL", func(t *testing.T) {
		srv := streamtest.NewServer(t, streamtest.OpenAIChat(0, "stop", "x"))
		c := newClient(t, srv.URL+"/v1", stream.BackendAuto)
		if b, err := c.Backend(context.Background()); err != nil || b != stream.BackendOpenAI {
			t.Fatalf("Backend = %v, %v", b, err)
		}
		if len(srv.Requests()) != 0 {
			t.Errorf("probed %v although the URL was telling", srv.Requests())
		}
	})
	t.Run("undetectable", func(t *testing.T) {
		srv := streamtest.NewServer(t, streamtest.Script{})
		c := newClient(t, srv.URL, stream.BackendAuto)
		_, err := c.Backend(context.Background())
		var de *stream.DetectionError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), "set backend explicitly") || !stream.IsSetupError(err) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestConnectionRefused(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.Script{})
	url := srv.URL
	srv.Close()
	c := newClient(t, url, stream.BackendTGI)
	_, _, err := generate(t, c, stream.Request{Prompt: "p"})
	var ce *stream.ConnectionError
	if !errors.As(err, &ce) || ce.MidStream || !stream.IsSetupError(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestResolveToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "tok")
	os.WriteFile(tokenFile, []byte("hf_file\n"), 0o600)
	os.MkdirAll(filepath.Join(dir, "hfhome"), 0o700)
	os.WriteFile(filepath.Join(dir, "hfhome", "token"), []byte("hf_home"), 0o600)
	os.MkdirAll(filepath.Join(dir, "home", ".cache", "huggingface"), 0o700)
	os.WriteFile(filepath.Join(dir, "home", ".cache", "huggingface", "token"), []byte("hf_default"), 0o600)
	tests := []struct {
		name    string
		setting string
		env     map[string]string
		want    string
	}{
		{"setting first", "hf_set", map[string]string{"HF_TOKEN": "hf_env"}, "hf_set"},
		{"HF_TOKEN", "", map[string]string{"HF_TOKEN": "hf_env", "HUGGING_FACE_HUB_TOKEN": "hf_old"}, "hf_env"},
		{"legacy variable", "", map[string]string{"HUGGING_FACE_HUB_TOKEN": "hf_old", "HF_TOKEN_PATH": tokenFile}, "hf_old"},
		{"HF_TOKEN_PATH", "", map[string]string{"HF_TOKEN_PATH": tokenFile, "HF_HOME": filepath.Join(dir, "hfhome")}, "hf_file"},
		{"HF_HOME", "", map[string]string{"HF_HOME": filepath.Join(dir, "hfhome")}, "hf_home"},
		{"default cache", "", map[string]string{"HOME": filepath.Join(dir, "home")}, "hf_default"},
		{"none", "", map[string]string{"HOME": filepath.Join(dir, "nowhere")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, src := stream.ResolveToken(tt.setting, func(k string) string { return tt.env[k] })
			if got != tt.want {
				t.Errorf("token %q (from %s), want %q", got, src, tt.want)
			}
		})
	}
}

func TestInsecureTokenWarning(t *testing.T) {
	for _, tt := range []struct {
		url, token string
		warn       bool
	}{
		{"http://example.com", "hf_x", true},
		{"https://example.com", "hf_x", false},
		{"http://127.0.0.1:8080", "hf_x", false},
		{"http://localhost:8080", "hf_x", false},
		{"http://[::1]:8080", "hf_x", false},
		{"http://example.com", "", false},
	} {
		c, err := stream.NewClient(stream.Config{Endpoint: stream.Endpoint{URL: tt.url, Backend: stream.BackendTGI, Token: tt.token}})
		if err != nil {
			t.Fatal(err)
		}
		if w := c.InsecureTokenWarning(); (w != "") != tt.warn || strings.Contains(w, "hf_x") {
			t.Errorf("%s token=%q: warning %q", tt.url, tt.token, w)
		}
	}
}

// A raw request is sent untemplated: a chat endpoint gets it on its
// completions route (and its answer is read as completions), Ollama in raw
// mode, TGI as any request.
func TestRawRequests(t *testing.T) {
	tests := []struct {
		backend stream.Backend
		script  streamtest.Script
		path    string
		check   func(t *testing.T, body map[string]any)
	}{
		{stream.BackendOpenAI, streamtest.Script{Chunks: streamtest.Events(0, `{"choices":[{"text":"x","finish_reason":"length"}]}`, "[DONE]")}, "/completions", func(t *testing.T, b map[string]any) {
			if b["prompt"] != "<p>" || b["messages"] != nil || b["model"] != "m" {
				t.Errorf("body = %v", b)
			}
		}},
		{stream.BackendOllama, streamtest.Ollama(0, "stop", "x"), "/api/generate", func(t *testing.T, b map[string]any) {
			if b["prompt"] != "<p>" || b["raw"] != true {
				t.Errorf("body = %v", b)
			}
		}},
		{stream.BackendTGI, streamtest.TGI(0, "length", "x"), "/generate_stream", func(t *testing.T, b map[string]any) {
			if b["inputs"] != "<p>" {
				t.Errorf("body = %v", b)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.backend), func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			c := newClient(t, srv.URL, tt.backend)
			out, _, err := generate(t, c, stream.Request{Prompt: "<p>", Raw: true})
			if err != nil || out != "x" {
				t.Fatalf("generate = %q, %v", out, err)
			}
			req, _ := srv.LastRequest()
			if req.Path != tt.path {
				t.Errorf("path %s, want %s", req.Path, tt.path)
			}
			tt.check(t, req.JSON())
		})
	}
	// Without Raw, Ollama applies the model's template.
	srv := streamtest.NewServer(t, streamtest.Ollama(0, "stop", "x"))
	if _, _, err := generate(t, newClient(t, srv.URL, stream.BackendOllama), stream.Request{Prompt: "p"}); err != nil {
		t.Fatal(err)
	}
	if req, _ := srv.LastRequest(); req.JSON()["raw"] != nil {
		t.Errorf("raw sent for an ordinary request: %s", req.Body)
	}
}

// Model names the model: the configured one, else TGI's model_id or an
// OpenAI-compatible server's only model.
func TestModel(t *testing.T) {
	tgi := streamtest.NewServer(t, streamtest.TGI(0, "length", "x")).Route("/info", `{"model_id":"bigcode/starcoder2-3b"}`)
	openai := streamtest.NewServer(t, streamtest.OpenAIChat(0, "stop", "x")).Route("/v1/models", streamtest.OpenAIModels("me", "qwen2.5-coder-1.5b"))
	tests := []struct {
		name string
		c    *stream.Client
		want string
	}{
		{"tgi", newClient(t, tgi.URL, stream.BackendTGI, func(c *stream.Config) { c.Endpoint.Model = "" }), "bigcode/starcoder2-3b"},
		{"tgi configured", newClient(t, tgi.URL, stream.BackendTGI, func(c *stream.Config) { c.Endpoint.Model = "mine" }), "mine"},
		{"openai only model", newClient(t, openai.URL+"/v1", stream.BackendOpenAI, func(c *stream.Config) { c.Endpoint.Model = "" }), "qwen2.5-coder-1.5b"},
	}
	for _, tt := range tests {
		if got, err := tt.c.Model(context.Background()); err != nil || got != tt.want {
			t.Errorf("%s: Model = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

// A generation that ends with the server's own last event leaves its
// connection for the next request: inline completion asks on every pause
// in typing, and a new connection (a TLS handshake to a remote endpoint)
// each time would cost more than the rest of the request.
func TestConnectionReused(t *testing.T) {
	tests := []struct {
		backend stream.Backend
		script  streamtest.Script
	}{
		{stream.BackendTGI, streamtest.TGI(0, "eos_token", "a", "b")},
		{stream.BackendOpenAI, streamtest.OpenAIChat(0, "stop", "a", "b")},
		{stream.BackendOpenAICompletions, streamtest.Script{Chunks: streamtest.Events(0, `{"choices":[{"text":"a","finish_reason":null}]}`, `{"choices":[{"text":"b","finish_reason":"stop"}]}`, "[DONE]")}},
		{stream.BackendOllama, streamtest.Ollama(0, "stop", "a", "b")},
	}
	for _, tt := range tests {
		t.Run(string(tt.backend), func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			c := newClient(t, srv.URL, tt.backend, func(c *stream.Config) { c.HTTPClient = stream.NewHTTPClient() })
			for range 5 {
				if out, _, err := generate(t, c, stream.Request{Prompt: "p"}); err != nil || out != "ab" {
					t.Fatalf("generate = %q, %v", out, err)
				}
			}
			if conns := srv.Connections(); conns != 1 {
				t.Errorf("%d connections for 5 generations, want 1", conns)
			}
		})
	}
}
