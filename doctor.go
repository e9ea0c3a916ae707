package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/genls/genls/commands"
	"github.com/genls/genls/stream"
)

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("genls doctor", flag.ContinueOnError)
	var ef endpointFlags
	ef.register(fs)
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "Usage: genls doctor [flags]\n\nLists the model servers on this machine, checks the endpoint, token and proxy settings genls would use, says what inline completion does with the model, runs a 5-token test generation, and says how to fix each problem.")
		printDefaults(fs, w)
	}
	if code, ok := parseFlags(fs, args, usage, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "genls doctor: unexpected argument %q\n", fs.Arg(0))
		usage(stderr)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return doctor(ctx, ef.endpoint(os.Getenv), os.Getenv, stdout)
}

// doctorReport prints findings as it goes and remembers whether any failed.
type doctorReport struct {
	w      io.Writer
	failed bool
}

func (r *doctorReport) info(label, format string, a ...any) {
	fmt.Fprintf(r.w, "  %-10s %s\n", label, fmt.Sprintf(format, a...))
}

func (r *doctorReport) ok(format string, a ...any) {
	fmt.Fprintf(r.w, "ok    %s\n", fmt.Sprintf(format, a...))
}

func (r *doctorReport) warn(msg, fix string) {
	fmt.Fprintf(r.w, "warn  %s\n", msg)
	if fix != "" {
		fmt.Fprintf(r.w, "      fix: %s\n", fix)
	}
}

func (r *doctorReport) fail(msg, fix string) {
	r.failed = true
	fmt.Fprintf(r.w, "FAIL  %s\n", msg)
	if fix != "" {
		fmt.Fprintf(r.w, "      fix: %s\n", fix)
	}
}

// doctor checks the setup ep describes and returns the exit code: 0 when a
// test generation works, 1 otherwise.
func doctor(ctx context.Context, ep stream.Endpoint, getenv func(string) string, out io.Writer) int {
	r := &doctorReport{w: out}
	fmt.Fprintln(out, "genls doctor", versionString())

	token, source := stream.ResolveToken(ep.Token, getenv)
	ep.Token = token
	ports, err := stream.LocalPorts(getenv)
	if err != nil {
		r.fail(err.Error(), "give "+stream.LocalPortsVar+" port numbers separated by commas, or unset it")
		return 1
	}
	survey := stream.Discover(ctx, stream.DiscoverOptions{Ports: ports})
	reportLocal(r, survey)
	var local *stream.LocalServer
	if ep.URL == "" {
		choice, err := stream.Choose(survey, ep)
		var none *stream.NoEndpointError
		if errors.As(err, &none) {
			r.fail(none.Message("set GENLS_ENDPOINT"), "")
			return 1
		}
		r.ok("no endpoint configured; genls uses %s", choice)
		ep, local = choice.Endpoint, choice.Server
	} else if len(survey.Found) > 0 {
		r.info("", "(not used: an endpoint is configured)")
	}
	r.info("endpoint", "%s", ep.URL)
	r.info("backend", "%s", ep.Backend)
	if ep.Model != "" {
		r.info("model", "%s", ep.Model)
	}
	switch {
	case token != "" && local != nil:
		r.info("token", "%s (from %s), not sent to a server genls found on this machine", stream.MaskToken(token), source)
	case token != "":
		r.info("token", "%s (from %s)", stream.MaskToken(token), source)
	default:
		r.info("token", "none found (looked at endpoint.token, HF_TOKEN, HUGGING_FACE_HUB_TOKEN, HF_TOKEN_PATH, $HF_HOME/token)")
	}
	r.info("proxy", "%s", proxyFor(ep.URL))

	client, err := stream.NewClient(stream.Config{Endpoint: ep, MaxLoadingWait: -1, IdleTimeout: 30 * time.Second})
	if err != nil {
		r.fail(err.Error(), "pass an http(s) URL with --endpoint or GENLS_ENDPOINT, and a backend among "+backendNames())
		return 1
	}
	if w := client.InsecureTokenWarning(); w != "" {
		r.warn(w, "use an https:// URL, or a token-less local endpoint")
	}
	if token == "" && !stream.IsLoopback(hostname(ep.URL)) {
		r.warn("no API token found; remote endpoints usually need one", "set HF_TOKEN or run `huggingface-cli login`")
	}

	backend, err := client.Backend(ctx)
	if err != nil {
		r.fail(err.Error(), fixFor(err))
		return 1
	}
	if ep.Backend == stream.BackendAuto {
		r.ok("backend detected: %s", backend)
	}
	checkModel(ctx, r, client, backend, ep.Model)
	if !r.failed {
		reportCompletion(ctx, r, client, backend)
	}
	if !r.failed {
		testGeneration(ctx, r, client)
	}
	if r.failed {
		fmt.Fprintln(out, "Some checks failed; see the fixes above.")
		return 1
	}
	fmt.Fprintln(out, "Everything works.")
	return 0
}

// reportCompletion says what inline completion does with this endpoint
// when the settings leave it to genls (completion.enabled and
// prompt.fim.preset unset): the rule lsp/inline_completion.go applies.
func reportCompletion(ctx context.Context, r *doctorReport, client *stream.Client, backend stream.Backend) {
	model, _ := client.Model(ctx)
	preset, ok := commands.FIMPresetForModel(model)
	switch {
	case ok:
		r.info("completion", "inline completion on, fill-in-the-middle as %s (recognised from the model's name)", preset.Name)
	case backend == stream.BackendOpenAI:
		r.info("completion", "inline completion off: a chat model without a known fill-in-the-middle format (setting prompt.fim.preset names one; completion.enabled: true asks the chat model anyway)")
	default:
		r.info("completion", "inline completion on, continuing the text before the cursor (no fill-in-the-middle format known for this model; setting prompt.fim.preset names one)")
	}
}

// reportLocal lists the model servers found on this machine, with their
// backends and models, and the ports where none was.
func reportLocal(r *doctorReport, s stream.Survey) {
	seen := map[int]bool{}
	for _, f := range s.Found {
		seen[f.Port] = true
		models := "no model to generate with"
		if len(f.Models) > 0 {
			models = someOf(f.Models, 5)
		}
		r.info("local", "%s (backend %s): %s", f, f.Backend, models)
	}
	for _, p := range s.Problems {
		seen[p.Port] = true
		r.info("local", "%s %s", p.Address, p.Why)
	}
	var none []string
	for _, p := range s.Ports {
		if !seen[p] {
			none = append(none, strconv.Itoa(p))
		}
	}
	switch len(none) {
	case 0:
	case 1:
		r.info("local", "nothing on port %s (127.0.0.1 and ::1)", none[0])
	default:
		r.info("local", "nothing on ports %s (127.0.0.1 and ::1)", strings.Join(none, ", "))
	}
}

// testGeneration asks for a few tokens, the end-to-end check.
func testGeneration(ctx context.Context, r *doctorReport, client *stream.Client) {
	s, err := client.Generate(ctx, stream.Request{Prompt: "Hello", Params: stream.Parameters{MaxNewTokens: 5}})
	if err != nil {
		r.fail("test generation: "+err.Error(), fixFor(err))
		return
	}
	defer s.Close()
	var text strings.Builder
	for s.Next() {
		text.WriteString(s.Text())
	}
	if err := s.Err(); err != nil {
		r.fail("test generation: "+err.Error(), fixFor(err))
		return
	}
	r.ok("test generation: %q, %s", text.String(), summary(s.Result()))
}

// checkModel reads what the server says of its model and limits.
func checkModel(ctx context.Context, r *doctorReport, client *stream.Client, backend stream.Backend, model string) {
	switch backend {
	case stream.BackendTGI:
		body, err := client.Info(ctx, "/info")
		if err != nil {
			r.warn("TGI /info unavailable: "+err.Error(), "")
			return
		}
		var info struct {
			ModelID          string `json:"model_id"`
			MaxInputTokens   int    `json:"max_input_tokens"`
			MaxInputLength   int    `json:"max_input_length"`
			MaxTotalTokens   int    `json:"max_total_tokens"`
			MaxStopSequences int    `json:"max_stop_sequences"`
			Version          string `json:"version"`
		}
		json.Unmarshal(body, &info)
		in := max(info.MaxInputTokens, info.MaxInputLength)
		r.ok("TGI %s serves %s: max_input_tokens %d, max_total_tokens %d, max_stop_sequences %d",
			info.Version, info.ModelID, in, info.MaxTotalTokens, info.MaxStopSequences)
	case stream.BackendOpenAI, stream.BackendOpenAICompletions:
		checkOpenAIModel(ctx, r, client, model)
	case stream.BackendOllama:
		if model == "" {
			r.fail("the ollama backend needs a model name", "pass --model or set endpoint.model")
			return
		}
		body, err := client.Info(ctx, "/api/tags")
		if err != nil {
			r.warn("could not list Ollama models: "+err.Error(), "")
			return
		}
		if strings.Contains(string(body), `"`+model+`"`) || strings.Contains(string(body), `"`+model+`:latest"`) {
			r.ok("Ollama has model %s", model)
		} else {
			r.warn(fmt.Sprintf("Ollama does not list model %q", model), "run `ollama pull "+model+"`")
		}
	}
}

// checkOpenAIModel checks the model against the server's list, and says
// when one is needed: genls names none unless given one, or the server
// serves a single model.
func checkOpenAIModel(ctx context.Context, r *doctorReport, client *stream.Client, model string) {
	const fix = "pass --model or set endpoint.model"
	body, err := client.Info(ctx, "/models")
	if err != nil {
		if model == "" {
			r.warn("no model given, and the server's model list is unavailable ("+err.Error()+"); a server with several models needs one", fix)
		} else {
			r.warn("could not list models: "+err.Error(), "")
		}
		return
	}
	models := stream.ModelIDs(body)
	switch {
	case model == "" && len(models) == 1:
		r.ok("no model given; the server's only model, %s, will be used", models[0])
	case model == "" && len(models) == 0:
		r.warn("no model given, and the server lists none", fix)
	case model == "":
		r.fail(fmt.Sprintf("no model given, and the server serves %d: requests must name one", len(models)),
			fix+" to one of: "+someOf(models, 5))
	case slices.Contains(models, model):
		r.ok("model %s is listed by the server", model)
	case len(models) > 0:
		r.warn(fmt.Sprintf("model %q is not among the %d models the server lists", model, len(models)),
			"check --model / endpoint.model against the server's model list: "+someOf(models, 5))
	}
}

// someOf lists the first n of names, saying how many more there are.
func someOf(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// fixFor turns an error into the advice a user needs. The order matters
// for a failed backend detection, which wraps what each probe met.
func fixFor(err error) string {
	var se *stream.StatusError
	var ce *stream.ConnectionError
	var de *stream.DetectionError
	errors.As(err, &se) // se stays nil when err carries no status
	unauthorized := se != nil && (se.StatusCode == http.StatusUnauthorized || se.StatusCode == http.StatusForbidden)
	switch {
	case errors.As(err, &ce):
		return "check that the server runs and the URL (host and port) is right; behind a proxy, set HTTPS_PROXY / NO_PROXY"
	case unauthorized && !se.TokenSent:
		return "no token was sent: set HF_TOKEN (or endpoint.token) to your API token, or run `huggingface-cli login`"
	case unauthorized:
		return "set HF_TOKEN (or endpoint.token) to a valid token, or run `huggingface-cli login`"
	case errors.As(err, &de):
		return "check the URL, or pass --backend explicitly (" + backendNames() + ")"
	case se != nil:
		switch {
		case se.StatusCode == http.StatusNotFound:
			return "check the endpoint URL (TGI: the server's base URL; OpenAI-compatible: the base including /v1) and the model name"
		case se.StatusCode == http.StatusTooManyRequests:
			return "wait and retry, or use a dedicated endpoint"
		case se.StatusCode >= 500:
			return "the server is failing; check its logs or try later"
		}
		return "check the parameters and model against the server's limits"
	}
	return "check the URL, or pass --backend explicitly (" + backendNames() + ")"
}

// hostname returns the host name of URL raw, without its port ("" when raw
// is not a URL).
func hostname(raw string) string {
	req, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil {
		return ""
	}
	return req.URL.Hostname()
}

// proxyFor says which proxy (from HTTPS_PROXY, HTTP_PROXY, NO_PROXY) a
// request to u would use.
func proxyFor(u string) string {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return "unknown"
	}
	p, err := http.ProxyFromEnvironment(req)
	switch {
	case err != nil:
		return "invalid proxy setting: " + err.Error()
	case p == nil:
		return "none"
	}
	p.User = nil // never print proxy credentials
	return p.String()
}
