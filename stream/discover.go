package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The rules for an endpoint with no URL live here, and only here: genls
// looks for a model server on this machine, and uses Hugging Face's router
// only when it finds none and has a token to send there.

// The router used when no endpoint is configured and no local server is
// found, and the model asked of it when none is configured.
const (
	DefaultURL   = "https://router.huggingface.co/v1"
	DefaultModel = "Qwen/Qwen2.5-Coder-32B-Instruct"
)

// DefaultLocalPorts returns the ports genls looks at on this machine, in
// the order it prefers them: Ollama's 11434; 8080, llama.cpp's
// llama-server's and TGI's in its documentation; vLLM's 8000; LM Studio's
// 1234.
func DefaultLocalPorts() []int { return []int{11434, 8080, 8000, 1234} }

// LocalPortsVar names the environment variable that replaces the ports
// genls looks at (comma-separated, in order of preference), e.g. to add the
// port a TGI container is mapped to.
const LocalPortsVar = "GENLS_LOCAL_PORTS"

// LocalPorts reads the ports to look at from GENLS_LOCAL_PORTS; nil (the
// defaults) when it is unset or empty. A nil getenv means os.Getenv.
func LocalPorts(getenv func(string) string) ([]int, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	raw := strings.TrimSpace(getenv(LocalPortsVar))
	if raw == "" {
		return nil, nil
	}
	var ports []int
	for f := range strings.FieldsFuncSeq(raw, func(r rune) bool { return r == ',' || r == ' ' }) {
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%s=%q: %q is not a port number", LocalPortsVar, raw, f)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// DiscoverOptions says where and how long to look for a local server.
type DiscoverOptions struct {
	// Ports are looked at on 127.0.0.1 and ::1, most preferred first; nil
	// means DefaultLocalPorts. Only loopback addresses are ever probed.
	Ports []int
	// ConnectTimeout bounds connecting to one address; 0 means 200 ms.
	// Nothing listening is known at once: the connection is refused.
	ConnectTimeout time.Duration
	// AnswerTimeout bounds the wait for a server that accepted the
	// connection to answer the probes; 0 means 1.5 s.
	AnswerTimeout time.Duration
	// OnChoice, when set, is told what a client with no endpoint URL
	// chose, before its first request goes there.
	OnChoice func(Choice)
}

func (o DiscoverOptions) withDefaults() DiscoverOptions {
	if o.Ports == nil {
		o.Ports = DefaultLocalPorts()
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 200 * time.Millisecond
	}
	if o.AnswerTimeout <= 0 {
		o.AnswerTimeout = 1500 * time.Millisecond
	}
	return o
}

// LocalServer is a model server found on this machine.
type LocalServer struct {
	// Address is where it answered: "127.0.0.1:11434" or "[::1]:8000".
	Address string
	Port    int
	// Name says what it is: Ollama, TGI, llama.cpp, vLLM, or an
	// OpenAI-compatible server.
	Name    string
	Backend Backend
	// URL is the endpoint's base URL for Backend.
	URL string
	// Models are the models it lists that generate text (embedding models
	// left out), in its own order; for TGI, the one it serves.
	Models []string
}

func (s LocalServer) String() string { return s.Name + " at " + s.URL }

// Problem is an address where something listens that genls cannot use.
type Problem struct {
	Address string
	Port    int
	Why     string
}

// Survey is what looking for local servers found.
type Survey struct {
	// Ports are the ports looked at, in order of preference: all of them,
	// or those before the server that was chosen when looking stopped
	// there.
	Ports []int
	// Found are the servers identified, in the order of Ports.
	Found []LocalServer
	// Problems are the addresses that answered in a way genls cannot use.
	Problems []Problem
}

// Discover looks for model servers on every port of opts on 127.0.0.1 and
// ::1, in parallel, and identifies each with the probes that detect an
// endpoint's backend. No token is sent.
func Discover(ctx context.Context, opts DiscoverOptions) Survey {
	return survey(ctx, opts.withDefaults(), nil)
}

// survey looks at every port at once. When stop is set, it returns as soon
// as the first server in port order that stop accepts is known, and the
// ports after it are left out of the survey.
func survey(ctx context.Context, opts DiscoverOptions, stop func(LocalServer) bool) Survey {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{
		Proxy:             nil, // loopback only, never through a proxy
		DialContext:       (&net.Dialer{Timeout: opts.ConnectTimeout}).DialContext,
		DisableKeepAlives: true,
	}}
	type result struct {
		i        int
		server   *LocalServer
		problems []Problem
	}
	results := make(chan result, len(opts.Ports))
	var wg sync.WaitGroup
	for i, port := range opts.Ports {
		wg.Go(func() {
			s, problems := lookAtPort(ctx, hc, opts, port)
			results <- result{i, s, problems}
		})
	}
	done := make([]*result, len(opts.Ports))
	var out Survey
	next := 0 // the first port whose result is not yet in out
	for range opts.Ports {
		r := <-results
		done[r.i] = &r
		stopped := false
		for ; next < len(done) && done[next] != nil; next++ {
			r := done[next]
			out.Ports = append(out.Ports, opts.Ports[next])
			out.Problems = append(out.Problems, r.problems...)
			if r.server != nil {
				out.Found = append(out.Found, *r.server)
				if stop != nil && stop(*r.server) {
					stopped = true
					break
				}
			}
		}
		if stopped {
			break
		}
	}
	cancel()
	wg.Wait() // the rest end at once, cancelled
	return out
}

// lookAtPort probes port on 127.0.0.1 and ::1 and returns the server there
// (127.0.0.1's when both have one), or what was wrong.
func lookAtPort(ctx context.Context, hc *http.Client, opts DiscoverOptions, port int) (*LocalServer, []Problem) {
	hosts := [...]string{"127.0.0.1", "::1"}
	var servers [len(hosts)]*LocalServer
	var problems [len(hosts)]*Problem
	var wg sync.WaitGroup
	for i, host := range hosts {
		wg.Go(func() {
			servers[i], problems[i] = lookAt(ctx, hc, opts, net.JoinHostPort(host, strconv.Itoa(port)), port)
		})
	}
	wg.Wait()
	var found []Problem
	for i := range hosts {
		if servers[i] != nil {
			return servers[i], nil
		}
		if problems[i] != nil {
			found = append(found, *problems[i])
		}
	}
	return nil, found
}

// lookAt identifies the server at addr: nil, nil when nothing listens there.
func lookAt(ctx context.Context, hc *http.Client, opts DiscoverOptions, addr string, port int) (*LocalServer, *Problem) {
	conn, err := (&net.Dialer{Timeout: opts.ConnectTimeout}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil // refused, or no such address family here
	}
	conn.Close()

	ctx, cancel := context.WithTimeout(ctx, opts.AnswerTimeout)
	defer cancel()
	base := "http://" + addr
	paths := [...]string{"/info", "/api/tags", "/v1/models"}
	var answers [len(paths)]probeAnswer
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Go(func() { answers[i] = probeGet(ctx, hc, base+p) })
	}
	wg.Wait()
	info, tags, models := answers[0], answers[1], answers[2]
	s := &LocalServer{Address: addr, Port: port}
	switch {
	case info.has("model_id"):
		s.Name, s.Backend, s.URL = "TGI", BackendTGI, base
		var v struct {
			ModelID string `json:"model_id"`
		}
		json.Unmarshal(info.body, &v)
		s.Models = []string{v.ModelID}
	// llama-server answers /api/tags too, with its /v1/models list, which
	// Ollama's answer never has.
	case tags.has("models") && !tags.has("data"):
		s.Name, s.Backend, s.URL = "Ollama", BackendOllama, base
		s.Models = ollamaModels(tags.body)
	case models.has("data"):
		s.Backend, s.URL = BackendOpenAI, base+"/v1"
		s.Name, s.Models = openAIModels(models.body)
	case errors.Is(context.Cause(ctx), context.Canceled):
		return nil, nil // the survey stopped before this address was known
	default:
		p := &Problem{Address: addr, Port: port, Why: "answered, but not as a model server genls knows"}
		switch {
		case ctx.Err() != nil && !info.answered && !tags.answered && !models.answered:
			p.Why = fmt.Sprintf("accepted the connection but did not answer within %s", opts.AnswerTimeout)
		case models.status != 0 && models.status != http.StatusNotFound:
			p.Why += fmt.Sprintf(" (/v1/models: %d %s)", models.status, models.message)
		}
		return nil, p
	}
	return s, nil
}

// probeAnswer is what one GET of a probe got.
type probeAnswer struct {
	answered bool // an HTTP response came
	status   int
	message  string // a failure's message
	body     []byte // a 200's body
}

func (a probeAnswer) has(key string) bool { return a.body != nil && jsonHas(a.body, key) }

// probeGet fetches u without credentials.
func probeGet(ctx context.Context, hc *http.Client, u string) probeAnswer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return probeAnswer{}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return probeAnswer{}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	a := probeAnswer{answered: true, status: resp.StatusCode}
	switch {
	case resp.StatusCode != http.StatusOK:
		a.message = newStatusError(resp.StatusCode, u, false, body).Message
	case err == nil:
		a.body = body
	}
	return a
}

// ollamaModels reads Ollama's /api/tags, leaving out embedding models.
func ollamaModels(body []byte) []string {
	var tags struct {
		Models []struct {
			Name    string `json:"name"`
			Details struct {
				Family string `json:"family"`
			} `json:"details"`
		} `json:"models"`
	}
	json.Unmarshal(body, &tags)
	var names []string
	for _, m := range tags.Models {
		if m.Name != "" && !isEmbeddingModel(m.Name) && !strings.Contains(m.Details.Family, "bert") {
			names = append(names, m.Name)
		}
	}
	return names
}

// openAIModels reads an OpenAI-compatible /v1/models, leaving out embedding
// models, and names the server when its list says what it is.
func openAIModels(body []byte) (name string, models []string) {
	var list struct {
		Data []struct {
			ID      string `json:"id"`
			OwnedBy string `json:"owned_by"`
		} `json:"data"`
	}
	json.Unmarshal(body, &list)
	name = "an OpenAI-compatible server"
	for _, m := range list.Data {
		switch m.OwnedBy {
		case "llamacpp":
			name = "llama.cpp"
		case "vllm":
			name = "vLLM"
		}
		if m.ID != "" && !isEmbeddingModel(m.ID) {
			models = append(models, m.ID)
		}
	}
	return name, models
}

func isEmbeddingModel(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "embed") || strings.Contains(n, "rerank") || strings.Contains(n, "bge-") || strings.Contains(n, "minilm")
}

func isCodeModel(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "code") || strings.Contains(n, "devstral")
}

// Choice is where a client with no endpoint URL sends its requests.
type Choice struct {
	// Endpoint is what requests go to. It carries the token only for the
	// router: a server found on this machine is never sent one.
	Endpoint Endpoint
	// Server is the local server chosen; nil for the router.
	Server *LocalServer
	// Why says how the model was picked.
	Why string
}

func (c Choice) String() string {
	if c.Server == nil {
		return fmt.Sprintf("Hugging Face's router at %s, model %s (%s)", c.Endpoint.URL, c.Endpoint.Model, c.Why)
	}
	switch {
	case c.Server.Backend == BackendTGI:
		return fmt.Sprintf("%s, serving %s", c.Server, c.Endpoint.Model)
	case c.Endpoint.Model == "":
		return fmt.Sprintf("%s, which lists no model (requests name none)", c.Server)
	}
	return fmt.Sprintf("%s, model %s (%s)", c.Server, c.Endpoint.Model, c.Why)
}

// Choose applies the rules for an endpoint with no URL to what a survey
// found. configured carries the backend, model and token the user set.
//
//   - The first server found, in the order of the ports, that speaks the
//     configured backend (any, for auto) and can generate: an Ollama
//     server needs a model. With a model configured, the first server that
//     lists it is preferred.
//   - Its model: the configured one; else its only one; else the first code
//     model it lists (a name with "code" or "devstral" in it, such as
//     qwen2.5-coder or codellama); else the first it lists (Ollama lists
//     the most recently pulled first). Embedding models are never chosen.
//   - No such server: Hugging Face's router, with the token, the configured
//     model or DefaultModel, and the OpenAI-compatible backend.
//   - No token either: a *NoEndpointError.
func Choose(s Survey, configured Endpoint) (Choice, error) {
	var usable []LocalServer
	for _, f := range s.Found {
		if acceptable(f, configured) {
			usable = append(usable, f)
		}
	}
	if configured.Model != "" {
		for _, f := range usable {
			if lists(f, configured.Model) {
				return localChoice(f, configured, configured.Model, "configured"), nil
			}
		}
	}
	if len(usable) > 0 {
		f := usable[0]
		if configured.Model != "" {
			return localChoice(f, configured, configured.Model, "configured"), nil
		}
		model, why := pickModel(f.Models)
		return localChoice(f, configured, model, why), nil
	}
	b := configured.Backend
	routable := b == "" || b == BackendAuto || b == BackendOpenAI || b == BackendOpenAICompletions
	if routable && configured.Token != "" {
		ep := Endpoint{URL: DefaultURL, Backend: BackendOpenAI, Model: configured.Model, Token: configured.Token}
		if b == BackendOpenAICompletions {
			ep.Backend = b
		}
		if ep.Model == "" {
			ep.Model = DefaultModel
		}
		return Choice{Endpoint: ep, Why: "no model server found on this machine"}, nil
	}
	return Choice{}, &NoEndpointError{Survey: s, Backend: b, Routable: routable}
}

// acceptable reports whether f can serve a client configured so.
func acceptable(f LocalServer, configured Endpoint) bool {
	switch configured.Backend {
	case BackendTGI, BackendOllama:
		if f.Backend != configured.Backend {
			return false
		}
	case BackendOpenAI, BackendOpenAICompletions:
		if f.Backend != BackendOpenAI {
			return false
		}
	}
	return f.Backend != BackendOllama || len(f.Models) > 0 || configured.Model != ""
}

// lists reports whether f lists model (Ollama's "name" meaning "name:latest").
func lists(f LocalServer, model string) bool {
	return slices.Contains(f.Models, model) || (f.Backend == BackendOllama && slices.Contains(f.Models, model+":latest"))
}

func localChoice(f LocalServer, configured Endpoint, model, why string) Choice {
	backend := f.Backend
	if configured.Backend == BackendOpenAICompletions {
		backend = BackendOpenAICompletions
	}
	// No token: the user's token is for the configured endpoint or the
	// router, never for whatever listens on a port of this machine.
	return Choice{Endpoint: Endpoint{URL: f.URL, Backend: backend, Model: model}, Server: &f, Why: why}
}

// pickModel picks among the models a server lists, and says why.
func pickModel(models []string) (model, why string) {
	switch len(models) {
	case 0:
		return "", ""
	case 1:
		return models[0], "its only model"
	}
	for _, m := range models {
		if isCodeModel(m) {
			return m, fmt.Sprintf("the first code model of the %d it lists", len(models))
		}
	}
	return models[0], fmt.Sprintf("the first of the %d it lists; none is a code model", len(models))
}

// chooseEndpoint looks for a local server and applies Choose, stopping at
// the first acceptable server unless a configured model may be listed by
// a later one.
func chooseEndpoint(ctx context.Context, configured Endpoint, opts DiscoverOptions) (Choice, error) {
	stop := func(f LocalServer) bool { return acceptable(f, configured) }
	if configured.Model != "" {
		stop = func(f LocalServer) bool { return acceptable(f, configured) && lists(f, configured.Model) }
	}
	s := survey(ctx, opts.withDefaults(), stop)
	if err := ctx.Err(); err != nil {
		return Choice{}, err
	}
	return Choose(s, configured)
}

// NoEndpointError says that no endpoint is configured, no usable server
// was found on this machine, and the router cannot be used: there is no
// token, or the configured backend is not the router's.
type NoEndpointError struct {
	Survey Survey
	// Backend is the configured backend.
	Backend Backend
	// Routable is set when the router would have been used with a token.
	Routable bool
}

func (e *NoEndpointError) Error() string { return e.Message("configure an endpoint URL") }

// Message says what was tried and the ways forward; setURL is how the
// caller's user sets an endpoint's URL ("set GENLS_ENDPOINT").
func (e *NoEndpointError) Message(setURL string) string {
	var b strings.Builder
	what := "model server"
	switch e.Backend {
	case BackendTGI:
		what = "TGI server"
	case BackendOllama:
		what = "Ollama server"
	case BackendOpenAI, BackendOpenAICompletions:
		what = "OpenAI-compatible server"
	}
	ports := make([]string, len(e.Survey.Ports))
	for i, p := range e.Survey.Ports {
		ports[i] = strconv.Itoa(p)
	}
	fmt.Fprintf(&b, "no %s found on this machine (looked at ports %s on 127.0.0.1 and ::1", what, strings.Join(ports, ", "))
	for _, f := range e.Survey.Found {
		if f.Backend == BackendOllama && len(f.Models) == 0 {
			fmt.Fprintf(&b, "; %s has no model to generate with: `ollama pull qwen2.5-coder`", f)
		}
	}
	for _, p := range e.Survey.Problems {
		fmt.Fprintf(&b, "; %s %s", p.Address, p.Why)
	}
	b.WriteString(")")
	if !e.Routable {
		fmt.Fprintf(&b, ": start one, or %s to its URL", setURL)
		return b.String()
	}
	fmt.Fprintf(&b, " and no Hugging Face token: start one (such as `ollama serve` or `llama-server`), set HF_TOKEN to use Hugging Face's router, or %s to your server's URL", setURL)
	return b.String()
}
