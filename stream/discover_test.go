package stream_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/streamtest"
)

// Each kind of server is told apart by what it answers, wherever it
// listens; what is not a model server, or does not answer, is reported.
func TestDiscoverIdentifiesServers(t *testing.T) {
	ollama := streamtest.NewOllama(t, streamtest.Script{}, "llama3.2:latest", "nomic-embed-text:latest", "qwen2.5-coder:7b")
	llama := streamtest.NewLlamaServer(t, streamtest.Script{}, "qwen2.5-coder-1.5b-q8_0.gguf")
	vllm := streamtest.NewVLLM(t, streamtest.Script{}, "Qwen/Qwen2.5-Coder-7B-Instruct")
	tgi := streamtest.NewTGI(t, streamtest.Script{}, "bigcode/starcoder2-3b")
	lmstudio := streamtest.NewServer(t, streamtest.Script{}).Route("/v1/models",
		streamtest.OpenAIModels("organization_owner", "text-embedding-nomic-embed-text-v1.5", "qwen2.5-7b-instruct"))
	web := streamtest.NewServer(t, streamtest.Script{}).Route("/", "<html></html>")
	silent := streamtest.NewSilent(t)
	closed := streamtest.ClosedPort(t)

	ports := []int{ollama.Port(), closed, llama.Port(), vllm.Port(), tgi.Port(), lmstudio.Port(), web.Port(), silent.Port}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	s := stream.Discover(ctx, stream.DiscoverOptions{Ports: ports, AnswerTimeout: 300 * time.Millisecond})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
	at := func(srv *streamtest.Server) string { return fmt.Sprintf("127.0.0.1:%d", srv.Port()) }
	want := []stream.LocalServer{
		{Address: at(ollama), Port: ollama.Port(), Name: "Ollama", Backend: stream.BackendOllama, URL: ollama.URL,
			Models: []string{"llama3.2:latest", "qwen2.5-coder:7b"}},
		{Address: at(llama), Port: llama.Port(), Name: "llama.cpp", Backend: stream.BackendOpenAI, URL: llama.URL + "/v1",
			Models: []string{"qwen2.5-coder-1.5b-q8_0.gguf"}},
		{Address: at(vllm), Port: vllm.Port(), Name: "vLLM", Backend: stream.BackendOpenAI, URL: vllm.URL + "/v1",
			Models: []string{"Qwen/Qwen2.5-Coder-7B-Instruct"}},
		{Address: at(tgi), Port: tgi.Port(), Name: "TGI", Backend: stream.BackendTGI, URL: tgi.URL,
			Models: []string{"bigcode/starcoder2-3b"}},
		{Address: at(lmstudio), Port: lmstudio.Port(), Name: "an OpenAI-compatible server", Backend: stream.BackendOpenAI,
			URL: lmstudio.URL + "/v1", Models: []string{"qwen2.5-7b-instruct"}},
	}
	if !reflect.DeepEqual(s.Found, want) {
		t.Errorf("found\n%+v\nwant\n%+v", s.Found, want)
	}
	wantProblems := []stream.Problem{
		{Address: at(web), Port: web.Port(), Why: "answered, but not as a model server genls knows"},
		{Address: fmt.Sprintf("127.0.0.1:%d", silent.Port), Port: silent.Port, Why: "accepted the connection but did not answer within 300ms"},
	}
	if !reflect.DeepEqual(s.Problems, wantProblems) {
		t.Errorf("problems\n%+v\nwant\n%+v", s.Problems, wantProblems)
	}
	if !reflect.DeepEqual(s.Ports, ports) {
		t.Errorf("ports %v, want %v", s.Ports, ports)
	}
	for _, srv := range []*streamtest.Server{ollama, llama, vllm, tgi, lmstudio, web} {
		for _, r := range srv.Requests() {
			if r.Method != http.MethodGet || r.Header.Get("Authorization") != "" {
				t.Errorf("probe %s %s with Authorization %q", r.Method, r.Path, r.Header.Get("Authorization"))
			}
		}
	}
}

// A server listening on ::1 only is found there.
func TestDiscoverIPv6Loopback(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/tags" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, streamtest.OllamaTags("llama3.2:latest"))
	})}
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(l) })
	defer wg.Wait()
	defer srv.Close()
	port := l.Addr().(*net.TCPAddr).Port
	s := stream.Discover(context.Background(), stream.DiscoverOptions{Ports: []int{port}})
	if len(s.Found) != 1 || s.Found[0].URL != fmt.Sprintf("http://[::1]:%d", port) || s.Found[0].Backend != stream.BackendOllama {
		t.Errorf("found %+v", s.Found)
	}
}

// The rules for an endpoint with no URL, on surveys written out.
func TestChoose(t *testing.T) {
	ollama := stream.LocalServer{Name: "Ollama", Port: 11434, Backend: stream.BackendOllama, URL: "http://127.0.0.1:11434",
		Models: []string{"llama3.2:latest", "qwen2.5-coder:7b", "codellama:13b"}}
	empty := stream.LocalServer{Name: "Ollama", Port: 11434, Backend: stream.BackendOllama, URL: "http://127.0.0.1:11434"}
	llama := stream.LocalServer{Name: "llama.cpp", Port: 8080, Backend: stream.BackendOpenAI, URL: "http://127.0.0.1:8080/v1",
		Models: []string{"model.gguf"}}
	tgi := stream.LocalServer{Name: "TGI", Port: 8080, Backend: stream.BackendTGI, URL: "http://127.0.0.1:8080", Models: []string{"bigcode/starcoder"}}
	plain := stream.LocalServer{Name: "vLLM", Port: 8000, Backend: stream.BackendOpenAI, URL: "http://127.0.0.1:8000/v1",
		Models: []string{"meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3"}}
	none := stream.LocalServer{Name: "an OpenAI-compatible server", Port: 1234, Backend: stream.BackendOpenAI, URL: "http://127.0.0.1:1234/v1"}
	survey := func(found ...stream.LocalServer) stream.Survey {
		return stream.Survey{Ports: stream.DefaultLocalPorts(), Found: found}
	}
	tests := []struct {
		name       string
		survey     stream.Survey
		configured stream.Endpoint
		want       stream.Endpoint
		says       string
	}{
		{"the first found", survey(ollama, llama), stream.Endpoint{Token: "hf_x"},
			stream.Endpoint{URL: "http://127.0.0.1:11434", Backend: stream.BackendOllama, Model: "qwen2.5-coder:7b"},
			"Ollama at http://127.0.0.1:11434, model qwen2.5-coder:7b (the first code model of the 3 it lists)"},
		{"its only model", survey(llama, ollama), stream.Endpoint{},
			stream.Endpoint{URL: "http://127.0.0.1:8080/v1", Backend: stream.BackendOpenAI, Model: "model.gguf"},
			"llama.cpp at http://127.0.0.1:8080/v1, model model.gguf (its only model)"},
		{"no code model", survey(plain), stream.Endpoint{},
			stream.Endpoint{URL: "http://127.0.0.1:8000/v1", Backend: stream.BackendOpenAI, Model: "meta-llama/Llama-3.1-8B-Instruct"},
			"vLLM at http://127.0.0.1:8000/v1, model meta-llama/Llama-3.1-8B-Instruct (the first of the 2 it lists; none is a code model)"},
		{"tgi", survey(tgi), stream.Endpoint{},
			stream.Endpoint{URL: "http://127.0.0.1:8080", Backend: stream.BackendTGI, Model: "bigcode/starcoder"},
			"TGI at http://127.0.0.1:8080, serving bigcode/starcoder"},
		{"an Ollama without models is passed over", survey(empty, tgi), stream.Endpoint{},
			stream.Endpoint{URL: "http://127.0.0.1:8080", Backend: stream.BackendTGI, Model: "bigcode/starcoder"}, ""},
		{"a server that lists none", survey(none), stream.Endpoint{},
			stream.Endpoint{URL: "http://127.0.0.1:1234/v1", Backend: stream.BackendOpenAI},
			"an OpenAI-compatible server at http://127.0.0.1:1234/v1, which lists no model (requests name none)"},
		{"the server that lists the configured model", survey(ollama, llama), stream.Endpoint{Model: "model.gguf"},
			stream.Endpoint{URL: "http://127.0.0.1:8080/v1", Backend: stream.BackendOpenAI, Model: "model.gguf"}, ""},
		{"Ollama's implicit :latest", survey(llama, ollama), stream.Endpoint{Model: "llama3.2"},
			stream.Endpoint{URL: "http://127.0.0.1:11434", Backend: stream.BackendOllama, Model: "llama3.2"}, ""},
		{"a configured model no server lists", survey(ollama, llama), stream.Endpoint{Model: "other"},
			stream.Endpoint{URL: "http://127.0.0.1:11434", Backend: stream.BackendOllama, Model: "other"},
			"Ollama at http://127.0.0.1:11434, model other (configured)"},
		{"the configured backend", survey(ollama, llama), stream.Endpoint{Backend: stream.BackendOpenAICompletions},
			stream.Endpoint{URL: "http://127.0.0.1:8080/v1", Backend: stream.BackendOpenAICompletions, Model: "model.gguf"}, ""},
		{"the router, with the token", survey(empty), stream.Endpoint{Token: "hf_x"},
			stream.Endpoint{URL: stream.DefaultURL, Backend: stream.BackendOpenAI, Model: stream.DefaultModel, Token: "hf_x"},
			"Hugging Face's router at https://router.huggingface.co/v1, model Qwen/Qwen2.5-Coder-32B-Instruct (no model server found on this machine)"},
		{"the router, with the configured model", survey(), stream.Endpoint{Token: "hf_x", Model: "m", Backend: stream.BackendAuto},
			stream.Endpoint{URL: stream.DefaultURL, Backend: stream.BackendOpenAI, Model: "m", Token: "hf_x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := stream.Choose(tt.survey, tt.configured)
			if err != nil {
				t.Fatal(err)
			}
			if c.Endpoint != tt.want {
				t.Errorf("endpoint %+v, want %+v", c.Endpoint, tt.want)
			}
			if (c.Server == nil) != (tt.want.URL == stream.DefaultURL) {
				t.Errorf("server %v", c.Server)
			}
			if tt.says != "" && c.String() != tt.says {
				t.Errorf("says %q\nwant %q", c.String(), tt.says)
			}
		})
	}
}

// With nothing to use, the error says what was looked at and the ways
// forward.
func TestChooseNothing(t *testing.T) {
	tests := []struct {
		name       string
		survey     stream.Survey
		configured stream.Endpoint
		want       string
	}{
		{"no server, no token", stream.Survey{Ports: stream.DefaultLocalPorts()}, stream.Endpoint{},
			"no model server found on this machine (looked at ports 11434, 8080, 8000, 1234 on 127.0.0.1 and ::1) and no Hugging Face token: " +
				"start one (such as `ollama serve` or `llama-server`), set HF_TOKEN to use Hugging Face's router, or set GENLS_ENDPOINT to your server's URL"},
		{"what answered", stream.Survey{Ports: []int{11434, 8080},
			Found:    []stream.LocalServer{{Name: "Ollama", Backend: stream.BackendOllama, URL: "http://127.0.0.1:11434"}},
			Problems: []stream.Problem{{Address: "127.0.0.1:8080", Port: 8080, Why: "answered, but not as a model server genls knows"}}},
			stream.Endpoint{},
			"no model server found on this machine (looked at ports 11434, 8080 on 127.0.0.1 and ::1; " +
				"Ollama at http://127.0.0.1:11434 has no model to generate with: `ollama pull qwen2.5-coder`; " +
				"127.0.0.1:8080 answered, but not as a model server genls knows) and no Hugging Face token: " +
				"start one (such as `ollama serve` or `llama-server`), set HF_TOKEN to use Hugging Face's router, or set GENLS_ENDPOINT to your server's URL"},
		{"a backend the router does not speak", stream.Survey{Ports: []int{8080}}, stream.Endpoint{Backend: stream.BackendTGI, Token: "hf_x"},
			"no TGI server found on this machine (looked at ports 8080 on 127.0.0.1 and ::1): start one, or set GENLS_ENDPOINT to its URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := stream.Choose(tt.survey, tt.configured)
			var none *stream.NoEndpointError
			if !errors.As(err, &none) {
				t.Fatalf("error %v", err)
			}
			if got := none.Message("set GENLS_ENDPOINT"); got != tt.want {
				t.Errorf("message\n%s\nwant\n%s", got, tt.want)
			}
			if stream.IsSetupError(err) {
				t.Errorf("a NoEndpointError counts as a setup error; the command would add a second piece of advice")
			}
		})
	}
}

func TestLocalPorts(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == stream.LocalPortsVar {
				return v
			}
			return ""
		}
	}
	if p, err := stream.LocalPorts(env("")); p != nil || err != nil {
		t.Errorf("unset: %v %v", p, err)
	}
	if p, err := stream.LocalPorts(env(" 3000, 11434 8080")); !reflect.DeepEqual(p, []int{3000, 11434, 8080}) || err != nil {
		t.Errorf("list: %v %v", p, err)
	}
	for _, bad := range []string{"x", "0", "70000", "80;81"} {
		if _, err := stream.LocalPorts(env(bad)); err == nil || !strings.Contains(err.Error(), "GENLS_LOCAL_PORTS") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// chooser is a client with no URL looking at ports, and what it chose.
func chooser(t *testing.T, token string, ports []int, mod ...func(*stream.Config)) (*stream.Client, func() []stream.Choice) {
	t.Helper()
	var mu sync.Mutex
	var choices []stream.Choice
	c := newClient(t, "", stream.BackendAuto, func(cfg *stream.Config) {
		cfg.Endpoint.Model, cfg.Endpoint.Token = "", token
		cfg.Discovery = stream.DiscoverOptions{Ports: ports, OnChoice: func(c stream.Choice) {
			mu.Lock()
			defer mu.Unlock()
			choices = append(choices, c)
		}}
		for _, f := range mod {
			f(cfg)
		}
	})
	return c, func() []stream.Choice { mu.Lock(); defer mu.Unlock(); return append([]stream.Choice(nil), choices...) }
}

// A client with no URL uses the first server in port order, not the
// first to answer, and sends it no token.
func TestClientChoosesInPortOrder(t *testing.T) {
	slow := streamtest.NewServer(t, streamtest.Ollama(0, "stop", "from ollama"))
	slowTags := streamtest.OllamaTags("qwen2.5-coder:7b")
	slowSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/tags" {
			time.Sleep(200 * time.Millisecond)
			fmt.Fprint(w, slowTags)
			return
		}
		slow.Config.Handler.ServeHTTP(w, r)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { slowSrv.Serve(l) })
	defer wg.Wait()
	defer slowSrv.Close()
	tgi := streamtest.NewTGI(t, streamtest.TGI(0, "length", "from tgi"), "m")

	c, choices := chooser(t, "hf_secret", []int{l.Addr().(*net.TCPAddr).Port, tgi.Port()})
	out, _, err := generate(t, c, stream.Request{Prompt: "p"})
	if err != nil || out != "from ollama" {
		t.Fatalf("out %q err %v", out, err)
	}
	if got := choices(); len(got) != 1 || got[0].Server == nil || got[0].Server.Name != "Ollama" || got[0].Endpoint.Model != "qwen2.5-coder:7b" {
		t.Errorf("choices %+v", got)
	}
	for _, r := range append(slow.Requests(), tgi.Requests()...) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("%s %s carried the token", r.Method, r.Path)
		}
	}
	// Chosen once: the next generation asks nobody.
	n := len(tgi.Requests())
	if _, _, err := generate(t, c, stream.Request{Prompt: "p"}); err != nil {
		t.Fatal(err)
	}
	if len(choices()) != 1 || len(tgi.Requests()) != n {
		t.Errorf("chose again: %d choices, %d probes", len(choices()), len(tgi.Requests())-n)
	}
}

// A server that accepts connections and never answers delays the choice
// by AnswerTimeout when it comes first, and not at all when it comes after
// the server chosen.
func TestClientChoiceDoesNotHang(t *testing.T) {
	silent := streamtest.NewSilent(t)
	tgi := streamtest.NewTGI(t, streamtest.TGI(0, "length", "ok"), "m")

	c, _ := chooser(t, "", []int{silent.Port, tgi.Port()}, func(cfg *stream.Config) { cfg.Discovery.AnswerTimeout = 300 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if b, err := c.Backend(ctx); err != nil || b != stream.BackendTGI {
		t.Fatalf("backend %q, %v", b, err)
	}

	c, _ = chooser(t, "", []int{tgi.Port(), silent.Port}, func(cfg *stream.Config) { cfg.Discovery.AnswerTimeout = 10 * time.Second })
	start := time.Now()
	if b, err := c.Backend(ctx); err != nil || b != stream.BackendTGI {
		t.Fatalf("backend %q, %v", b, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the choice waited %s for a server after the one chosen", took)
	}

	// Nothing usable: the error, in time.
	c, _ = chooser(t, "", []int{silent.Port}, func(cfg *stream.Config) { cfg.Discovery.AnswerTimeout = 300 * time.Millisecond })
	_, err := c.Backend(ctx)
	var none *stream.NoEndpointError
	if !errors.As(err, &none) || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d accepted the connection but did not answer within 300ms", silent.Port)) {
		t.Errorf("error %v", err)
	}
}

// With no local server and a token, the router; the choice itself sends
// nothing anywhere.
func TestClientFallsBackToRouter(t *testing.T) {
	c, choices := chooser(t, "hf_secret", []int{streamtest.ClosedPort(t)})
	if b, err := c.Backend(context.Background()); err != nil || b != stream.BackendOpenAI {
		t.Fatalf("backend %q, %v", b, err)
	}
	if got := choices(); len(got) != 1 || got[0].Server != nil || got[0].Endpoint.URL != stream.DefaultURL || got[0].Endpoint.Token != "hf_secret" {
		t.Errorf("choices %+v", got)
	}
	if c.TokenHost() != "router.huggingface.co" {
		t.Errorf("token host %q", c.TokenHost())
	}
}

// A chosen server that goes away is replaced at the next generation.
func TestClientChoosesAgainWhenTheServerGoes(t *testing.T) {
	first := streamtest.NewOllama(t, streamtest.Ollama(0, "stop", "first"), "qwen2.5-coder:7b")
	second := streamtest.NewTGI(t, streamtest.TGI(0, "length", "second"), "m")
	c, choices := chooser(t, "", []int{first.Port(), second.Port()})
	if out, _, err := generate(t, c, stream.Request{Prompt: "p"}); err != nil || out != "first" {
		t.Fatalf("out %q err %v", out, err)
	}
	first.Close()
	var ce *stream.ConnectionError
	if _, err := c.Generate(context.Background(), stream.Request{Prompt: "p"}); !errors.As(err, &ce) {
		t.Fatalf("generation from a closed server: %v", err)
	}
	if out, _, err := generate(t, c, stream.Request{Prompt: "p"}); err != nil || out != "second" {
		t.Fatalf("out %q err %v", out, err)
	}
	if got := choices(); len(got) != 2 || got[1].Server.Name != "TGI" {
		t.Errorf("choices %+v", got)
	}
}

// Concurrent first requests choose once.
func TestClientChoosesOnce(t *testing.T) {
	tgi := streamtest.NewTGI(t, streamtest.TGI(0, "length", "ok"), "m")
	c, choices := chooser(t, "", []int{streamtest.ClosedPort(t), tgi.Port()})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if b, err := c.Backend(context.Background()); err != nil || b != stream.BackendTGI {
				t.Errorf("backend %q, %v", b, err)
			}
		})
	}
	wg.Wait()
	if n := len(choices()); n != 1 {
		t.Errorf("chose %d times", n)
	}
}

// Finding nothing is not remembered: a server started since is found at
// the next request.
func TestClientChoosesAgainAfterNothingFound(t *testing.T) {
	port := streamtest.ClosedPort(t)
	c, _ := chooser(t, "", []int{port})
	var none *stream.NoEndpointError
	if _, err := c.Backend(context.Background()); !errors.As(err, &none) {
		t.Fatalf("error %v", err)
	}
	tgi := streamtest.NewTGI(t, streamtest.TGI(0, "length", "ok"), "m")
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Skip("the port was taken meanwhile:", err)
	}
	srv := &http.Server{Handler: tgi.Config.Handler}
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(l) })
	defer wg.Wait()
	defer srv.Close()
	if b, err := c.Backend(context.Background()); err != nil || b != stream.BackendTGI {
		t.Errorf("backend %q, %v", b, err)
	}
}

// A configured endpoint is used as it is: no port of this machine is
// looked at.
func TestConfiguredEndpointIsNotDiscovered(t *testing.T) {
	silent := streamtest.NewSilent(t)
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "ok"))
	c := newClient(t, srv.URL, stream.BackendAuto, func(cfg *stream.Config) {
		cfg.Discovery = stream.DiscoverOptions{Ports: []int{silent.Port}, OnChoice: func(stream.Choice) { t.Error("a choice was made") }}
	})
	srv.Route("/info", `{"model_id":"m"}`)
	if out, _, err := generate(t, c, stream.Request{Prompt: "p"}); err != nil || out != "ok" {
		t.Fatalf("out %q err %v", out, err)
	}
	if n := silent.Accepted(); n != 0 {
		t.Errorf("%d connections to a local port", n)
	}
}

// What looking costs when nothing listens: every default port is closed.
func BenchmarkDiscoverNothingListening(b *testing.B) {
	ports := make([]int, len(stream.DefaultLocalPorts()))
	for i := range ports {
		ports[i] = streamtest.ClosedPort(b)
	}
	opts := stream.DiscoverOptions{Ports: ports}
	for b.Loop() {
		if s := stream.Discover(context.Background(), opts); len(s.Found)+len(s.Problems) != 0 {
			b.Fatalf("found %+v", s)
		}
	}
}
