package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/streamtest"
)

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// testEnv is an environment of env's variables alone, but for the ports
// to look for local servers at, which TestMain sets for the whole process.
func testEnv(env map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := env[k]; ok || k != stream.LocalPortsVar {
			return v
		}
		return os.Getenv(k)
	}
}

// noToken makes sure no API token is found, whatever the machine has.
func noToken(t *testing.T) {
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HUGGING_FACE_HUB_TOKEN", "")
	t.Setenv("HF_TOKEN_PATH", filepath.Join(t.TempDir(), "no-token"))
}

func TestGenerateCommand(t *testing.T) {
	t.Setenv("HF_TOKEN", "hf_clitoken")
	srv := streamtest.NewServer(t, streamtest.TGITokens(0, "eos_token",
		streamtest.TGIToken{Text: "Hello"}, streamtest.TGIToken{Text: " wörld"}, streamtest.TGIToken{Text: "\n"},
		streamtest.TGIToken{Text: "</s>", Special: true}))
	srv.Route("/info", `{"model_id":"m","max_stop_sequences":4}`)

	code, out, errOut := runCLI(t, "", "generate", "--endpoint", srv.URL, "--max-new-tokens", "9",
		"--temperature", "0.5", "--top-k", "3", "--stop", "XX", "--stop", "YY", "Say hi")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	if out != "Hello wörld\n" {
		t.Errorf("stdout %q: must be exactly the generated text", out)
	}
	if !strings.Contains(errOut, "4 tokens in ") || !strings.Contains(errOut, "finish: eos_token") {
		t.Errorf("stderr %q lacks statistics", errOut)
	}
	req, _ := srv.LastRequest()
	body := req.JSON()
	p := body["parameters"].(map[string]any)
	if body["inputs"] != "Say hi" || p["max_new_tokens"] != 9.0 || p["temperature"] != 0.5 || p["top_k"] != 3.0 || len(p["stop"].([]any)) != 2 {
		t.Errorf("request %v", body)
	}
	if _, ok := p["top_p"]; ok {
		t.Errorf("unset top_p was sent: %v", p)
	}
	if req.Header.Get("Authorization") != "Bearer hf_clitoken" {
		t.Errorf("token not sent from HF_TOKEN")
	}
	if strings.Contains(out+errOut, "hf_clitoken") {
		t.Errorf("token printed")
	}

	// The prompt from stdin.
	srv.Push(streamtest.TGI(0, "length", "ok"))
	code, out, _ = runCLI(t, "from stdin", "generate", "--endpoint", srv.URL, "--quiet", "-")
	if code != 0 || out != "ok" {
		t.Errorf("stdin prompt: exit %d out %q", code, out)
	}
	if req, _ := srv.LastRequest(); req.JSON()["inputs"] != "from stdin" {
		t.Errorf("stdin prompt sent as %v", req.JSON()["inputs"])
	}
}

func TestGenerateCommandErrors(t *testing.T) {
	noToken(t)
	srv := streamtest.NewServer(t, streamtest.Error(401, `{"error":"Invalid credentials"}`))
	code, out, errOut := runCLI(t, "", "generate", "--endpoint", srv.URL, "--backend", "tgi", "x")
	if code != 1 || out != "" || !strings.Contains(errOut, "none was sent (set HF_TOKEN") {
		t.Errorf("401 without a token: exit %d out %q err %q", code, out, errOut)
	}
	if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("error is not one line: %q", errOut)
	}
	if n := strings.Count(errOut, "run `genls doctor`"); n != 1 {
		t.Errorf("the setup error points at genls doctor %d times, want once: %q", n, errOut)
	}
	// A backend that cannot be detected: the advice comes once.
	if code, _, errOut := runCLI(t, "", "generate", "--endpoint", streamtest.NewServer(t, streamtest.Script{}).URL, "x"); code != 1 ||
		!strings.Contains(errOut, "could not detect") || strings.Count(errOut, "run `genls doctor`") != 1 {
		t.Errorf("undetectable backend: exit %d err %q", code, errOut)
	}
	t.Setenv("HF_TOKEN", "hf_wrong")
	if code, _, errOut := runCLI(t, "", "generate", "--endpoint", srv.URL, "--backend", "tgi", "x"); code != 1 || !strings.Contains(errOut, "rejected the token") {
		t.Errorf("401 with a token: exit %d err %q", code, errOut)
	}
	t.Setenv("HF_TOKEN", "")

	// Text generated before a failure is still printed.
	srv.Push(streamtest.Script{Chunks: streamtest.TGI(0, "length", "par", "tial", "x").Chunks[:2], Reset: true})
	code, out, errOut = runCLI(t, "", "generate", "--endpoint", srv.URL, "--backend", "tgi", "x")
	if code != 1 || out != "partial" || !strings.Contains(errOut, "dropped during the stream") || strings.Contains(errOut, "genls doctor") {
		t.Errorf("reset: exit %d out %q err %q", code, out, errOut)
	}

	if code, _, errOut := runCLI(t, "", "generate", "--backend", "gpt", "x"); code != 2 || !strings.Contains(errOut, "unknown backend") {
		t.Errorf("bad backend: exit %d err %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "", "generate"); code != 2 {
		t.Errorf("missing prompt: exit %d", code)
	}
}

// The statistics line: the server's token count when it gives one, the
// finish reason genls saw, and a rate that could be true.
func TestGenerateSummary(t *testing.T) {
	noToken(t)
	usage := streamtest.Script{Chunks: streamtest.Events(0,
		`{"choices":[{"delta":{"content":"ab"},"finish_reason":null}]}`,
		`{"choices":[{"delta":{"content":"cd"},"finish_reason":"length"}],"usage":{"completion_tokens":4}}`,
		"[DONE]")}
	tests := []struct {
		name    string
		backend string
		script  streamtest.Script
		flags   []string
		want    string
	}{
		{"server's count", "openai", usage, nil, "genls: 4 tokens in "},
		{"one token", "tgi", streamtest.TGI(0, "eos_token", "x"), nil, "genls: 1 token in "},
		{"stop sequence", "openai", streamtest.OpenAIChat(0, "stop", "a", "\n\n", "b"), []string{"--stop", "\n\n"}, "finish: stop_sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			args := append([]string{"generate", "--endpoint", srv.URL, "--backend", tt.backend}, tt.flags...)
			code, _, errOut := runCLI(t, "", append(args, "p")...)
			if code != 0 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want %q", code, errOut, tt.want)
			}
			// An OpenAI-compatible server given the stop sequence would
			// leave it out and say only "stop", as at the end of the text.
			if req, _ := srv.LastRequest(); tt.backend == "openai" && req.JSON()["stop"] != nil {
				t.Errorf("stop sequences sent: %v", req.JSON()["stop"])
			}
		})
	}

	// A server that sends all but the first token in one burst, as a fast
	// server or a buffering proxy does: the rate is still the tokens over
	// the time the generation took.
	texts := make([]string, 64)
	for i := range texts {
		texts[i] = "x"
	}
	burst := streamtest.TGI(0, "length", texts...)
	burst.Chunks[0].Delay = 50 * time.Millisecond
	srv := streamtest.NewServer(t, burst)
	code, _, errOut := runCLI(t, "", "generate", "--endpoint", srv.URL, "--backend", "tgi", "--max-new-tokens", "64", "p")
	var tokens int
	var took string
	var rate float64
	if _, err := fmt.Sscanf(strings.TrimSpace(errOut), "genls: %d tokens in %s (%f tokens/s)", &tokens, &took, &rate); code != 0 || err != nil {
		t.Fatalf("exit %d, stderr %q: %v", code, errOut, err)
	}
	d, err := time.ParseDuration(took)
	if err != nil {
		t.Fatal(err)
	}
	// 2% for the rounding of the duration to milliseconds.
	if want := float64(tokens) / d.Seconds(); tokens != 64 || rate > want*1.02 || rate < want*0.98 {
		t.Errorf("%d tokens in %s at %.1f tokens/s; want %.1f tokens/s", tokens, d, rate, want)
	}
}

// Usage mistakes are told apart from help: help exits 0 on stdout, a
// mistake exits 2 and says what is wrong.
func TestUsage(t *testing.T) {
	// Where a generation would go if a check let one through: nowhere.
	dead := streamtest.NewServer(t, streamtest.Script{})
	dead.Close()
	gen := func(args ...string) []string {
		return append([]string{"generate", "--endpoint", dead.URL, "--backend", "tgi"}, args...)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string // in stdout for code 0, else in stderr
	}{
		{"generate -h", "", []string{"generate", "-h"}, 0, "Usage: genls generate"},
		{"generate --help", "", []string{"generate", "--help"}, 0, "Usage: genls generate"},
		{"doctor -h", "", []string{"doctor", "-h"}, 0, "Usage: genls doctor"},
		{"doctor --help", "", []string{"doctor", "--help"}, 0, "Usage: genls doctor"},
		{"serve -h", "", []string{"--stdio", "-h"}, 0, "genls generate [flags] PROMPT"},
		{"unknown flag", "", gen("--bogus", "p"), 2, "flag provided but not defined: -bogus"},
		{"no prompt", "", []string{"generate"}, 2, "Usage: genls generate"},
		{"empty prompt", "", gen(""), 2, "the prompt is empty"},
		{"blank prompt", "", gen(" \n"), 2, "the prompt is empty"},
		{"empty stdin", "", gen("-"), 2, "the prompt read from stdin is empty"},
		{"zero tokens", "", gen("--max-new-tokens", "0", "p"), 2, "--max-new-tokens must be at least 1, got 0"},
		{"negative tokens", "", gen("--max-new-tokens", "-1", "p"), 2, "--max-new-tokens must be at least 1, got -1"},
		{"negative seed", "", gen("--seed", "-1", "p"), 2, `invalid value "-1" for flag -seed`},
		{"doctor argument", "", []string{"doctor", "x"}, 2, `unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.stdin, tt.args...)
			got := errOut
			if tt.code == 0 {
				got = out
			}
			if code != tt.code || !strings.Contains(got, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d with %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
}

// Each flag's help states one default at most: flags whose default is the
// server's own must not also show a sentinel value.
func TestHelpDefaults(t *testing.T) {
	for _, cmd := range []string{"generate", "doctor"} {
		_, out, _ := runCLI(t, "", cmd, "-h")
		for _, line := range strings.Split(out, "\n") {
			if strings.Count(line, "(default") > 1 || strings.Contains(line, "(default -1)") || strings.Contains(line, "(default 0)") {
				t.Errorf("%s -h: %q", cmd, line)
			}
		}
	}
}

// With an OpenAI-compatible server and no --model, genls names the
// server's only model, and doctor says when a model is needed.
func TestNoModel(t *testing.T) {
	noToken(t)
	srv := streamtest.NewServer(t, streamtest.OpenAIChat(0, "stop", "ok")).Route("/models", `{"object":"list","data":[{"id":"org/only"}]}`)
	if code, out, errOut := runCLI(t, "", "generate", "--endpoint", srv.URL, "--backend", "openai", "p"); code != 0 || out != "ok" {
		t.Fatalf("exit %d out %q err %q", code, out, errOut)
	}
	if req, _ := srv.LastRequest(); req.JSON()["model"] != "org/only" {
		t.Errorf("model %v, want the server's only model", req.JSON()["model"])
	}
	var out bytes.Buffer
	if code := doctor(context.Background(), stream.Endpoint{URL: srv.URL, Backend: stream.BackendOpenAI}, os.Getenv, &out); code != 0 ||
		!strings.Contains(out.String(), "the server's only model, org/only, will be used") {
		t.Errorf("one model: exit %d\n%s", code, out.String())
	}

	// Found by detection at the server's root, the models are at /v1/models.
	out.Reset()
	root := streamtest.NewServer(t, streamtest.OpenAIChat(0, "stop", "ok")).Route("/v1/models", `{"object":"list","data":[{"id":"org/only"}]}`)
	if code := doctor(context.Background(), stream.Endpoint{URL: root.URL, Backend: stream.BackendAuto}, os.Getenv, &out); code != 0 ||
		!strings.Contains(out.String(), "the server's only model, org/only, will be used") {
		t.Errorf("detected: exit %d\n%s", code, out.String())
	}

	several := streamtest.NewServer(t, streamtest.OpenAIChat(0, "stop", "ok")).Route("/models", `{"object":"list","data":[{"id":"a"},{"id":"b"}]}`)
	out.Reset()
	code := doctor(context.Background(), stream.Endpoint{URL: several.URL, Backend: stream.BackendOpenAI}, os.Getenv, &out)
	if code != 1 || !strings.Contains(out.String(), "no model given, and the server serves 2: requests must name one") ||
		!strings.Contains(out.String(), "fix: pass --model or set endpoint.model to one of: a, b") {
		t.Errorf("several models: exit %d\n%s", code, out.String())
	}
	if _, ok := several.LastRequest(); ok {
		t.Errorf("a test generation was tried without the model it needs")
	}
}

func TestDefaultEndpoint(t *testing.T) {
	var ef endpointFlags
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	// No URL: the client chooses (a local server, else the router).
	if ep := ef.endpoint(getenv); ep != (stream.Endpoint{Backend: stream.BackendAuto}) {
		t.Errorf("no endpoint: %+v", ep)
	}
	env["GENLS_MODEL"] = "m"
	if ep := ef.endpoint(getenv); ep != (stream.Endpoint{Backend: stream.BackendAuto, Model: "m"}) {
		t.Errorf("GENLS_MODEL: %+v", ep)
	}
	delete(env, "GENLS_MODEL")
	env["GENLS_ENDPOINT"] = "http://127.0.0.1:8080"
	if ep := ef.endpoint(getenv); ep.URL != "http://127.0.0.1:8080" || ep.Backend != stream.BackendAuto || ep.Model != "" {
		t.Errorf("GENLS_ENDPOINT: %+v", ep)
	}
	ef.backend = "ollama"
	if ep := ef.endpoint(getenv); ep.Backend != stream.BackendOllama {
		t.Errorf("--backend: %+v", ep)
	}
}

func TestDoctor(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "a", "b", "c", "d", "e"))
	srv.Route("/info", `{"model_id":"bigcode/starcoder","max_input_tokens":4096,"max_total_tokens":8192,"max_stop_sequences":4,"version":"3.0.1"}`)
	getenv := testEnv(map[string]string{"HF_TOKEN": "hf_doctor_secret"})
	var out bytes.Buffer
	code := doctor(context.Background(), stream.Endpoint{URL: srv.URL, Backend: stream.BackendAuto}, getenv, &out)
	report := out.String()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, report)
	}
	for _, want := range []string{"backend detected: tgi", "bigcode/starcoder", "max_input_tokens 4096", "max_stop_sequences 4",
		`test generation: "abcde", 5 tokens in `, "from environment variable HF_TOKEN", "Everything works.",
		"inline completion on, fill-in-the-middle as starcoder"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "hf_doctor_secret") {
		t.Errorf("token printed:\n%s", report)
	}

}

// Each failure doctor finds comes with its fix, once, and never with the
// advice to run doctor.
func TestDoctorFailures(t *testing.T) {
	dead := streamtest.NewServer(t, streamtest.Script{})
	deadURL := dead.URL
	dead.Close()
	tests := []struct {
		name    string
		script  streamtest.Script
		url     string // "" for the fake server's
		backend stream.Backend
		token   string
		want    []string
	}{
		{"401 with a token", streamtest.Error(401, `{"error":"bad token"}`), "", stream.BackendTGI, "hf_doctor_secret",
			[]string{"rejected the token", "fix: set HF_TOKEN"}},
		{"401 without a token", streamtest.Error(401, `{"error":"no token"}`), "", stream.BackendTGI, "",
			[]string{"none was sent", "fix: no token was sent: set HF_TOKEN"}},
		{"unreachable", streamtest.Script{}, deadURL, stream.BackendAuto, "",
			[]string{"cannot reach", "check that the server runs"}},
		{"undetectable backend", streamtest.Script{}, "", stream.BackendAuto, "",
			[]string{"could not detect the endpoint's backend", "fix: check the URL, or pass --backend explicitly"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, tt.script)
			url := tt.url
			if url == "" {
				url = srv.URL
			}
			getenv := testEnv(map[string]string{"HF_TOKEN": tt.token})
			var out bytes.Buffer
			code := doctor(context.Background(), stream.Endpoint{URL: url, Backend: tt.backend}, getenv, &out)
			report := out.String()
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, want := range tt.want {
				if strings.Count(report, want) != 1 {
					t.Errorf("report has %q %d times, want once", want, strings.Count(report, want))
				}
			}
			if strings.Contains(report, "run `genls doctor`") {
				t.Errorf("doctor advises running doctor")
			}
			if t.Failed() {
				t.Logf("report:\n%s", report)
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	if code, out, _ := runCLI(t, "", "version"); code != 0 || !strings.HasPrefix(out, "genls ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, "", "help"); code != 0 || !strings.Contains(out, "genls generate") {
		t.Errorf("help: %d %q", code, out)
	}
	if code, _, _ := runCLI(t, "", "bogus"); code != 2 {
		t.Errorf("unknown command: %d", code)
	}
}

func TestLogSinkSwitchesToFile(t *testing.T) {
	var stderr bytes.Buffer
	log, _, sink, err := newLogger("info", "", &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	log.Info("to stderr")
	path := t.TempDir() + "/genls.log"
	if err := sink.SetFile(path); err != nil {
		t.Fatal(err)
	}
	log.Info("to the file")
	data, _ := os.ReadFile(path)
	if !strings.Contains(stderr.String(), "to stderr") || strings.Contains(stderr.String(), "to the file") || !strings.Contains(string(data), "to the file") {
		t.Errorf("stderr %q file %q", stderr.String(), data)
	}
}

// The proxy settings are read once per process, so proxy behaviour is
// checked in a child process running TestProxyChild.
func TestProxyEnvironmentHonoured(t *testing.T) {
	// The fake proxy answers like the endpoint behind it and records the
	// absolute URL it was asked for.
	proxy := streamtest.NewServer(t, streamtest.TGI(0, "length", "via", " proxy"))
	child := func(noProxy string) (string, error) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "GENLS_PROXY_CHILD=1", "HTTP_PROXY="+proxy.URL, "http_proxy="+proxy.URL,
			"NO_PROXY="+noProxy, "no_proxy="+noProxy, "HF_TOKEN=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := child("")
	if err != nil || !strings.Contains(out, "OUTPUT<via proxy>") {
		t.Fatalf("through the proxy: %v\n%s", err, out)
	}
	if req, ok := proxy.LastRequest(); !ok || req.Path != "/generate_stream" {
		t.Errorf("the proxy saw %+v", req)
	}
	n := len(proxy.Requests())
	out, _ = child("genls-proxy-test.invalid")
	if strings.Contains(out, "OUTPUT<via proxy>") || len(proxy.Requests()) != n {
		t.Errorf("NO_PROXY ignored: %s", out)
	}
}

// TestMain doubles as the child process of TestProxyEnvironmentHonoured:
// with GENLS_PROXY_CHILD=1 the test binary runs one generation as genls
// would and prints its output.
func TestMain(m *testing.M) {
	if os.Getenv(stream.LocalPortsVar) == "" {
		// No test looks at this machine's real servers: those that look
		// for local servers set their own ports.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		os.Setenv(stream.LocalPortsVar, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
		l.Close()
	}
	if os.Getenv("GENLS_SERVE_CHILD") == "1" {
		os.Exit(run([]string{"--log-level", "debug"}, os.Stdin, os.Stdout, os.Stderr))
	}
	if os.Getenv("GENLS_PROXY_CHILD") == "1" {
		var out, errOut bytes.Buffer
		code := run([]string{"generate", "--endpoint", "http://genls-proxy-test.invalid", "--backend", "tgi", "--quiet", "p"},
			strings.NewReader(""), &out, &errOut)
		fmt.Printf("OUTPUT<%s> code %d stderr %s\n", out.String(), code, errOut.String())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// lspFrame frames a JSON-RPC message for stdio.
func lspFrame(body string) string {
	return fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
}

// The editor going away without shutdown (its end of stdin closes) ends the
// genls process at once, and the generation's upstream request with it.
// Likewise exit after shutdown ends it with status 0.
func TestServeProcessExits(t *testing.T) {
	for _, how := range []string{"stdin closed", "shutdown and exit"} {
		t.Run(how, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b").Chunks[:1], Hang: true})
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "GENLS_SERVE_CHILD=1", "HF_TOKEN=")
			stdin, _ := cmd.StdinPipe()
			pipe, _ := cmd.StdoutPipe()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var stdout bytes.Buffer
			copied := make(chan struct{})
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := pipe.Read(buf)
					mu.Lock()
					stdout.Write(buf[:n])
					mu.Unlock()
					if err != nil {
						close(copied)
						return
					}
				}
			}()
			output := func() string { mu.Lock(); defer mu.Unlock(); return stdout.String() }
			io := strings.Join([]string{
				lspFrame(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{},"initializationOptions":{"endpoint":{"url":%q,"backend":"tgi"}}}}`, srv.URL)),
				lspFrame(`{"jsonrpc":"2.0","method":"initialized","params":{}}`),
				lspFrame(`{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///x.go","languageId":"go","version":1,"text":"abc"}}}`),
				lspFrame(`{"jsonrpc":"2.0","id":2,"method":"workspace/executeCommand","params":{"command":"genls.generate","arguments":[{"uri":"file:///x.go","range":{"start":{"line":0,"character":0},"end":{"line":0,"character":3}}}]}}`),
			}, "")
			stdin.Write([]byte(io))
			posted := func() bool { _, ok := srv.LastRequest(); return ok }
			for deadline := time.Now().Add(10 * time.Second); !posted(); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no generation reached the endpoint; stderr:\n%s", stderr.String())
				}
			}
			want := 1
			if how == "shutdown and exit" {
				// The editor never answers the server's applyEdit here, so
				// shutdown waits (bounded) for the generation to stop.
				stdin.Write([]byte(lspFrame(`{"jsonrpc":"2.0","id":3,"method":"shutdown"}`)))
				for deadline := time.Now().Add(10 * time.Second); !strings.Contains(output(), `"id":3,"result":null`); time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("no shutdown reply: %s", output())
					}
				}
				stdin.Write([]byte(lspFrame(`{"jsonrpc":"2.0","method":"exit"}`)))
				want = 0
			} else {
				stdin.Close()
			}
			done := make(chan error, 1)
			go func() { <-copied; done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("genls did not exit; stderr:\n%s", stderr.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != want {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, want, stderr.String())
			}
			if !srv.WaitDisconnect(5 * time.Second) {
				t.Errorf("upstream request not closed; stderr:\n%s", stderr.String())
			}
		})
	}
}
