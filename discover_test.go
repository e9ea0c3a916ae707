package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/streamtest"
)

// localServers starts the servers a user may run: Ollama with several
// models, an OpenAI-compatible server with one, and TGI.
func localServers(t *testing.T) (ollama, vllm, tgi *streamtest.Server) {
	ollama = streamtest.NewOllama(t, streamtest.Ollama(0, "stop", "from", " ollama"),
		"llama3.2:latest", "nomic-embed-text:latest", "qwen2.5-coder:7b", "codellama:13b")
	vllm = streamtest.NewVLLM(t, streamtest.OpenAIChat(0, "stop", "from vllm"), "Qwen/Qwen2.5-Coder-7B-Instruct")
	tgi = streamtest.NewTGI(t, streamtest.TGI(0, "length", "from tgi"), "bigcode/starcoder2-3b")
	return ollama, vllm, tgi
}

// With no endpoint configured, `genls generate` uses the first server
// found in the order of the ports, with a model it lists, says which, and
// never sends it the token.
func TestGenerateFindsLocalServer(t *testing.T) {
	t.Setenv("HF_TOKEN", "hf_clitoken")
	t.Setenv("GENLS_ENDPOINT", "")
	t.Setenv("GENLS_MODEL", "")
	ollama, vllm, tgi := localServers(t)
	closed := streamtest.ClosedPort(t)
	tests := []struct {
		name  string
		ports []int
		used  *streamtest.Server
		out   string
		says  string
		model any // in the request; nil for none
	}{
		{"Ollama first", []int{closed, ollama.Port(), vllm.Port(), tgi.Port()}, ollama, "from ollama",
			fmt.Sprintf("genls: no endpoint configured; using Ollama at %s, model qwen2.5-coder:7b (the first code model of the 3 it lists)\n", ollama.URL),
			"qwen2.5-coder:7b"},
		{"vLLM first", []int{vllm.Port(), ollama.Port(), tgi.Port()}, vllm, "from vllm",
			fmt.Sprintf("genls: no endpoint configured; using vLLM at %s/v1, model Qwen/Qwen2.5-Coder-7B-Instruct (its only model)\n", vllm.URL),
			"Qwen/Qwen2.5-Coder-7B-Instruct"},
		{"TGI first", []int{tgi.Port(), ollama.Port(), vllm.Port()}, tgi, "from tgi",
			fmt.Sprintf("genls: no endpoint configured; using TGI at %s, serving bigcode/starcoder2-3b\n", tgi.URL), nil},
	}
	servers := []*streamtest.Server{ollama, vllm, tgi}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(stream.LocalPortsVar, streamtest.Ports(tt.ports...))
			before := make([]int, len(servers))
			for i, srv := range servers {
				before[i] = posts(srv)
			}
			code, out, errOut := runCLI(t, "", "generate", "def fibonacci(n):")
			if code != 0 || out != tt.out {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			if !strings.HasPrefix(errOut, tt.says) {
				t.Errorf("stderr %q\nwant it to start %q", errOut, tt.says)
			}
			for i, srv := range servers {
				if want := before[i] + map[bool]int{true: 1}[srv == tt.used]; posts(srv) != want {
					t.Errorf("%s received %d generations, want %d", srv.URL, posts(srv)-before[i], want-before[i])
				}
			}
			if req, _ := tt.used.LastRequest(); req.JSON()["model"] != tt.model {
				t.Errorf("model %v, want %v", req.JSON()["model"], tt.model)
			}
		})
	}
	for _, srv := range []*streamtest.Server{ollama, vllm, tgi} {
		for _, req := range srv.Requests() {
			if req.Header.Get("Authorization") != "" {
				t.Errorf("%s %s%s carried the token", req.Method, srv.URL, req.Path)
			}
		}
	}

	// --quiet says nothing of the choice.
	t.Setenv(stream.LocalPortsVar, streamtest.Ports(ollama.Port()))
	if code, out, errOut := runCLI(t, "", "generate", "--quiet", "p"); code != 0 || out != "from ollama" || errOut != "" {
		t.Errorf("--quiet: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// --model picks among the servers found the one that lists it.
	t.Setenv(stream.LocalPortsVar, streamtest.Ports(vllm.Port(), ollama.Port()))
	if code, out, errOut := runCLI(t, "", "generate", "--model", "llama3.2", "p"); code != 0 || out != "from ollama" ||
		!strings.Contains(errOut, "model llama3.2 (configured)") {
		t.Errorf("--model: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// posts counts the generations srv received.
func posts(srv *streamtest.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Method == "POST" {
			n++
		}
	}
	return n
}

// Nothing found and no token: one line that says what was looked at and
// the ways forward.
func TestGenerateNothingFound(t *testing.T) {
	noToken(t)
	t.Setenv("GENLS_ENDPOINT", "")
	silent := streamtest.NewSilent(t)
	closed := streamtest.ClosedPort(t)
	t.Setenv(stream.LocalPortsVar, streamtest.Ports(closed, silent.Port))
	start := time.Now()
	code, out, errOut := runCLI(t, "", "generate", "def fibonacci(n):")
	want := fmt.Sprintf("genls: no model server found on this machine (looked at ports %d, %d on 127.0.0.1 and ::1; "+
		"127.0.0.1:%d accepted the connection but did not answer within 1.5s) and no Hugging Face token: "+
		"start one (such as `ollama serve` or `llama-server`), set HF_TOKEN to use Hugging Face's router, "+
		"or set GENLS_ENDPOINT to your server's URL\n", closed, silent.Port, silent.Port)
	if code != 1 || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr\n%q\nwant\n%q", code, out, errOut, want)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
}

// A configured endpoint is used at once: no port of this machine is
// looked at.
func TestConfiguredEndpointSkipsDiscovery(t *testing.T) {
	noToken(t)
	silent := streamtest.NewSilent(t)
	t.Setenv(stream.LocalPortsVar, streamtest.Ports(silent.Port))
	srv := streamtest.NewTGI(t, streamtest.TGI(0, "length", "ok"), "m")
	if code, out, errOut := runCLI(t, "", "generate", "--endpoint", srv.URL, "p"); code != 0 || out != "ok" || strings.Contains(errOut, "using") {
		t.Errorf("--endpoint: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	t.Setenv("GENLS_ENDPOINT", srv.URL)
	if code, out, errOut := runCLI(t, "", "generate", "p"); code != 0 || out != "ok" || strings.Contains(errOut, "using") {
		t.Errorf("GENLS_ENDPOINT: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if n := silent.Accepted(); n != 0 {
		t.Errorf("%d connections to a local port", n)
	}
}

// doctor lists every local server it finds, with backend and models, and
// the one genls would use.
func TestDoctorLocalServers(t *testing.T) {
	ollama, vllm, _ := localServers(t)
	silent := streamtest.NewSilent(t)
	closed := streamtest.ClosedPort(t)
	getenv := testEnv(map[string]string{"HF_TOKEN": "hf_doctor_secret",
		stream.LocalPortsVar: streamtest.Ports(ollama.Port(), closed, vllm.Port(), silent.Port)})
	ollama.Push(streamtest.Ollama(0, "stop", "a", "b"))
	var out bytes.Buffer
	code := doctor(context.Background(), stream.Endpoint{Backend: stream.BackendAuto}, getenv, &out)
	report := out.String()
	for _, want := range []string{
		fmt.Sprintf("  local      Ollama at %s (backend ollama): llama3.2:latest, qwen2.5-coder:7b, codellama:13b\n", ollama.URL),
		fmt.Sprintf("  local      vLLM at %s/v1 (backend openai): Qwen/Qwen2.5-Coder-7B-Instruct\n", vllm.URL),
		fmt.Sprintf("  local      127.0.0.1:%d accepted the connection but did not answer within 1.5s\n", silent.Port),
		fmt.Sprintf("  local      nothing on port %d (127.0.0.1 and ::1)\n", closed),
		fmt.Sprintf("ok    no endpoint configured; genls uses Ollama at %s, model qwen2.5-coder:7b (the first code model of the 3 it lists)\n", ollama.URL),
		"  backend    ollama\n",
		"not sent to a server genls found on this machine",
		"ok    Ollama has model qwen2.5-coder:7b",
		`test generation: "ab"`,
		"Everything works.",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if code != 0 || t.Failed() {
		t.Errorf("exit %d:\n%s", code, report)
	}
	if req, _ := ollama.LastRequest(); req.Header.Get("Authorization") != "" {
		t.Errorf("the token was sent to a local server")
	}

	// Nothing: the same one message as generate's.
	out.Reset()
	getenv = testEnv(map[string]string{stream.LocalPortsVar: streamtest.Ports(closed)})
	code = doctor(context.Background(), stream.Endpoint{Backend: stream.BackendAuto}, getenv, &out)
	want := fmt.Sprintf("FAIL  no model server found on this machine (looked at ports %d on 127.0.0.1 and ::1) and no Hugging Face token: "+
		"start one (such as `ollama serve` or `llama-server`), set HF_TOKEN to use Hugging Face's router, or set GENLS_ENDPOINT to your server's URL\n", closed)
	if code != 1 || !strings.Contains(out.String(), want) {
		t.Errorf("nothing found: exit %d\n%s", code, out.String())
	}

	// A configured endpoint: the local servers are listed, not used.
	out.Reset()
	getenv = testEnv(map[string]string{stream.LocalPortsVar: streamtest.Ports(vllm.Port())})
	tgi := streamtest.NewTGI(t, streamtest.TGI(0, "length", "a"), "m")
	code = doctor(context.Background(), stream.Endpoint{URL: tgi.URL, Backend: stream.BackendAuto}, getenv, &out)
	if code != 0 || !strings.Contains(out.String(), "vLLM at "+vllm.URL+"/v1") || !strings.Contains(out.String(), "(not used: an endpoint is configured)") ||
		!strings.Contains(out.String(), "  endpoint   "+tgi.URL+"\n") {
		t.Errorf("configured: exit %d\n%s", code, out.String())
	}
}
