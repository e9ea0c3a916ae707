package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Endpoint is where generations are sent.
type Endpoint struct {
	// URL is the base URL; empty, the client chooses one (see Choose): a
	// model server on this machine, else Hugging Face's router.
	URL     string
	Backend Backend
	Model   string
	// Token is sent as a bearer token to URL's host and nowhere else.
	Token string
}

// Config configures a Client.
type Config struct {
	Endpoint Endpoint
	// HTTPClient is shared by all clients so connections are kept alive
	// across settings changes; nil means NewHTTPClient().
	HTTPClient *http.Client
	Logger     *zap.Logger
	// IdleTimeout ends a stream (and the wait for response headers) after
	// this long without a byte; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxLoadingWait bounds the total time spent retrying while the server
	// answers 503 "model is loading"; 0 means two minutes, a negative value
	// disables retrying.
	MaxLoadingWait time.Duration
	// OnRetry, when set, is told about each retry before it waits, so the
	// user can be shown "model is loading, retrying in N s".
	OnRetry func(wait time.Duration, err error)
	// Discovery says where to look for a model server when the endpoint
	// has no URL; it is not used otherwise.
	Discovery DiscoverOptions
}

// DefaultIdleTimeout is the idle timeout when Config sets none.
const DefaultIdleTimeout = 60 * time.Second

const defaultMaxLoadingWait = 2 * time.Minute

// NewHTTPClient returns the HTTP client genls uses: keep-alive, proxies from
// HTTPS_PROXY/HTTP_PROXY/NO_PROXY, and no overall timeout (streams are long;
// the idle timeout bounds them instead). A connection reads up to 64 KiB at
// once, not net/http's 4 KiB: a client that is behind a fast stream catches
// up in a few large reads instead of many small ones.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	t.MaxIdleConnsPerHost = 8
	t.ReadBufferSize = readSize
	return &http.Client{Transport: t}
}

// Client sends generations to one endpoint. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	log  *zap.Logger

	// tokenHost is the only host the token is sent to: the configured
	// URL's, or the router's when the client chooses its endpoint.
	tokenHost string

	mu       sync.Mutex
	resolved *resolvedEndpoint // set once the backend is known

	// choosing is held while a client with no URL chooses its endpoint,
	// so that concurrent first requests choose once.
	choosing sync.Mutex

	// budget is what was learned of the server's limits and tokenizer
	// (limits.go).
	budget budgetCache
}

type resolvedEndpoint struct {
	backend Backend
	baseURL string
	// probed is set once what the server says of itself has been read:
	// maxStops, and model when none is configured.
	probed bool
	// maxStops is TGI's max_stop_sequences (from /info), 0 if unknown.
	maxStops int
	// model names the model in requests: the configured or chosen one,
	// else an OpenAI-compatible server's only model; "" names none.
	model string
	// modelID is the model TGI says it serves, never sent in requests.
	modelID string
	// chosen is set when the endpoint was chosen for a client with no
	// URL, which chooses again after failing to reach it.
	chosen bool
}

// CheckURL reports whether raw can be an endpoint's base URL: http or
// https, with a host.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("endpoint URL %q is not an http(s) URL", raw)
	}
	return nil
}

// NewClient returns a client for cfg.Endpoint. With no URL, it chooses the
// endpoint before its first request, by the rules of Choose.
func NewClient(cfg Config) (*Client, error) {
	b, err := ParseBackend(string(cfg.Endpoint.Backend))
	if err != nil {
		return nil, err
	}
	cfg.Endpoint.Backend = b
	tokenURL := cfg.Endpoint.URL
	if tokenURL == "" {
		tokenURL = DefaultURL
	} else if err := CheckURL(cfg.Endpoint.URL); err != nil {
		return nil, err
	}
	u, _ := url.Parse(tokenURL)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxLoadingWait == 0 {
		cfg.MaxLoadingWait = defaultMaxLoadingWait
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient, log: cfg.Logger, tokenHost: u.Host}
	if b != BackendAuto && cfg.Endpoint.URL != "" {
		c.resolved = &resolvedEndpoint{backend: b, baseURL: strings.TrimRight(cfg.Endpoint.URL, "/")}
	}
	return c, nil
}

// HasToken reports whether a token is configured.
func (c *Client) HasToken() bool { return c.cfg.Endpoint.Token != "" }

// TokenHost returns the host (host[:port]) the token may be sent to: the
// configured URL's, or the router's for a client with no URL.
func (c *Client) TokenHost() string { return c.tokenHost }

// Endpoint returns the endpoint as configured; its URL is empty when the
// client chooses one.
func (c *Client) Endpoint() Endpoint { return c.cfg.Endpoint }

// InsecureTokenWarning returns a warning when the token would travel in clear
// text to a host other than this machine, else "".
func (c *Client) InsecureTokenWarning() string {
	if c.cfg.Endpoint.Token == "" {
		return ""
	}
	u, err := url.Parse(c.cfg.Endpoint.URL)
	if err != nil || u.Scheme != "http" || IsLoopback(u.Hostname()) {
		return ""
	}
	return fmt.Sprintf("the API token would be sent over plain HTTP to %s; use https", u.Host)
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Backend returns the wire protocol in use, detecting it first if the
// endpoint's backend is auto.
func (c *Client) Backend(ctx context.Context) (Backend, error) {
	r, err := c.resolve(ctx)
	if err != nil {
		return "", err
	}
	return r.backend, nil
}

func (c *Client) resolve(ctx context.Context) (*resolvedEndpoint, error) {
	c.mu.Lock()
	r := c.resolved
	c.mu.Unlock()
	if r == nil && c.cfg.Endpoint.URL == "" {
		return c.choose(ctx)
	}
	if r == nil {
		var err error
		r, err = c.detect(ctx)
		if err != nil {
			return nil, err
		}
		c.log.Info("detected endpoint backend", zap.String("backend", string(r.backend)), zap.String("url", r.baseURL))
	}
	if !r.probed {
		r = c.probe(ctx, r)
	}
	c.mu.Lock()
	c.resolved = r
	c.mu.Unlock()
	return r, nil
}

// choose chooses the endpoint of a client with no URL, once for concurrent
// callers, and says what it chose.
func (c *Client) choose(ctx context.Context) (*resolvedEndpoint, error) {
	c.choosing.Lock()
	defer c.choosing.Unlock()
	c.mu.Lock()
	r := c.resolved
	c.mu.Unlock()
	if r != nil {
		return r, nil // chosen while this caller waited
	}
	choice, err := chooseEndpoint(ctx, c.cfg.Endpoint, c.cfg.Discovery)
	if err != nil {
		return nil, err
	}
	ep := choice.Endpoint
	c.log.Info("no endpoint configured; chose one", zap.String("choice", choice.String()),
		zap.String("url", ep.URL), zap.String("backend", string(ep.Backend)), zap.String("model", ep.Model))
	if c.cfg.Discovery.OnChoice != nil {
		c.cfg.Discovery.OnChoice(choice)
	}
	r = c.probe(ctx, &resolvedEndpoint{backend: ep.Backend, baseURL: ep.URL, model: ep.Model, chosen: true})
	c.mu.Lock()
	c.resolved = r
	c.mu.Unlock()
	return r, nil
}

// backendFromURL decides the backend from the URL alone when it is telling.
func backendFromURL(raw string) (Backend, string, bool) {
	base := strings.TrimRight(raw, "/")
	u, err := url.Parse(base)
	if err != nil {
		return "", "", false
	}
	path := u.Path
	switch {
	case strings.HasSuffix(path, "/generate_stream"):
		return BackendTGI, strings.TrimSuffix(base, "/generate_stream"), true
	case strings.HasSuffix(path, "/chat/completions"):
		return BackendOpenAI, strings.TrimSuffix(base, "/chat/completions"), true
	case strings.HasSuffix(path, "/completions"):
		return BackendOpenAICompletions, strings.TrimSuffix(base, "/completions"), true
	case strings.HasSuffix(path, "/api/generate"):
		return BackendOllama, strings.TrimSuffix(base, "/api/generate"), true
	case strings.HasSuffix(path, "/v1"):
		return BackendOpenAI, base, true
	case u.Port() == "11434":
		return BackendOllama, base, true
	case strings.HasSuffix(u.Hostname(), "huggingface.co") && strings.Contains(path, "/models/"):
		return BackendTGI, base, true
	}
	return "", "", false
}

// detect decides the backend of an "auto" endpoint: from the URL when it is
// telling, else by probing what the server answers (/info: TGI, /v1/models:
// OpenAI-compatible, /api/tags: Ollama).
func (c *Client) detect(ctx context.Context) (*resolvedEndpoint, error) {
	if b, base, ok := backendFromURL(c.cfg.Endpoint.URL); ok {
		return &resolvedEndpoint{backend: b, baseURL: base}, nil
	}
	base := strings.TrimRight(c.cfg.Endpoint.URL, "/")
	probes := []struct {
		path    string
		backend Backend
		base    string
		ok      func([]byte) bool
	}{
		{"/info", BackendTGI, base, func(b []byte) bool { return jsonHas(b, "model_id") }},
		{"/v1/models", BackendOpenAI, base + "/v1", func(b []byte) bool { return jsonHas(b, "data") }},
		{"/api/tags", BackendOllama, base, func(b []byte) bool { return jsonHas(b, "models") }},
	}
	var errs []error
	for _, p := range probes {
		body, err := c.get(ctx, base+p.path)
		if err == nil && p.ok(body) {
			return &resolvedEndpoint{backend: p.backend, baseURL: p.base}, nil
		}
		if err != nil {
			errs = append(errs, err)
			var ce *ConnectionError
			if errors.As(err, &ce) {
				break // the host is unreachable; more probes will not help
			}
		}
	}
	return nil, &DetectionError{URL: base, Err: errors.Join(errs...)}
}

func jsonHas(b []byte, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}

// probe reads what requests need to know of the server: TGI's
// max_stop_sequences, and the model to name when none is configured.
func (c *Client) probe(ctx context.Context, r *resolvedEndpoint) *resolvedEndpoint {
	out := *r
	out.probed = true
	if out.model == "" {
		out.model = c.cfg.Endpoint.Model
	}
	switch {
	case r.backend == BackendTGI:
		out.maxStops, out.modelID = c.tgiInfo(ctx, r.baseURL)
	case out.model == "" && (r.backend == BackendOpenAI || r.backend == BackendOpenAICompletions):
		out.model = c.onlyModel(ctx, r.baseURL)
	}
	return &out
}

// tgiInfo reads max_stop_sequences and the model's id from TGI's /info;
// TGI's default (4) is assumed when it cannot be read.
func (c *Client) tgiInfo(ctx context.Context, baseURL string) (maxStops int, modelID string) {
	body, err := c.get(ctx, baseURL+"/info")
	if err != nil {
		c.log.Debug("tgi /info unavailable; assuming max_stop_sequences 4", zap.Error(err))
		return 4, ""
	}
	c.keepTGILimits(baseURL, body) // the same answer says what Limits returns
	var info struct {
		MaxStopSequences int    `json:"max_stop_sequences"`
		ModelID          string `json:"model_id"`
	}
	if json.Unmarshal(body, &info) != nil || info.MaxStopSequences <= 0 {
		return 4, info.ModelID
	}
	return info.MaxStopSequences, info.ModelID
}

// Model returns the name of the model that answers: the configured one,
// else the one the endpoint names (TGI's model_id, an OpenAI-compatible
// server's only model, the model chosen for a client with no URL); "" when
// none is known. It detects the backend first if need be.
func (c *Client) Model(ctx context.Context) (string, error) {
	r, err := c.resolve(ctx)
	if err != nil {
		return "", err
	}
	if r.model != "" {
		return r.model, nil
	}
	return r.modelID, nil
}

// onlyModel returns the model an OpenAI-compatible server lists at /models
// when it lists exactly one, else "": requests then name no model, which
// single-model servers accept and the others refuse with a message saying
// a model is needed.
func (c *Client) onlyModel(ctx context.Context, baseURL string) string {
	body, err := c.get(ctx, baseURL+"/models")
	if err != nil {
		c.log.Debug("no model configured and the model list is unavailable", zap.Error(err))
		return ""
	}
	models := ModelIDs(body)
	if len(models) != 1 {
		c.log.Info("no model configured, and the server does not list exactly one; requests name none", zap.Strings("models", models))
		return ""
	}
	c.log.Info("no model configured; using the server's only model", zap.String("model", models[0]))
	return models[0]
}

// ModelIDs reads the model names from an OpenAI-compatible /models answer
// ({"data": [{"id": …}, …]}); nil when it is not one.
func ModelIDs(body []byte) []string {
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &list) != nil {
		return nil
	}
	ids := make([]string, 0, len(list.Data))
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	return ids
}

// Info fetches a JSON document (e.g. "/info", "/models") from the base URL
// of the endpoint's backend, authenticated like a generation; the backend
// is detected first if need be. Used by `genls doctor`.
func (c *Client) Info(ctx context.Context, path string) ([]byte, error) {
	r, err := c.resolve(ctx)
	if err != nil {
		return nil, err
	}
	return c.get(ctx, r.baseURL+path)
}

func (c *Client) get(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	tokenSent := c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &ConnectionError{URL: u, Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxEventSize))
	if err != nil {
		return nil, &ConnectionError{URL: u, MidStream: true, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, newStatusError(resp.StatusCode, u, tokenSent, body)
	}
	return body, nil
}

// authorize adds the token to a request for the token's host, and to no
// other, and reports whether it did.
func (c *Client) authorize(req *http.Request) bool {
	if c.cfg.Endpoint.Token == "" || req.URL.Host != c.tokenHost {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Endpoint.Token)
	return true
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Generate starts a generation. The returned Stream must be closed. Errors
// before streaming (unreachable host, HTTP error status) are returned here,
// after retrying while the model is loading; errors during the stream are
// reported by Stream.Err.
func (c *Client) Generate(ctx context.Context, req Request) (*Stream, error) {
	if err := req.Params.Validate(); err != nil {
		return nil, err
	}
	r, err := c.resolve(ctx)
	if err != nil {
		return nil, err
	}
	backend, target, body, err := c.buildRequest(r, req)
	if err != nil {
		return nil, err
	}
	c.log.Debug("generation request", zap.String("url", target), zap.String("backend", string(r.backend)), zap.ByteString("body", body))

	start := time.Now()
	deadline := start.Add(c.cfg.MaxLoadingWait)
	for attempt := 1; ; attempt++ {
		s, err := c.post(ctx, backend, target, body, req.Params)
		if ce := (*ConnectionError)(nil); r.chosen && errors.As(err, &ce) {
			c.forget(r) // the server went away: choose again next time
		}
		var se *StatusError
		if err == nil || !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable || se.EstimatedTime <= 0 || c.cfg.MaxLoadingWait < 0 {
			if s != nil {
				s.start = start
			}
			return s, err
		}
		wait := min(max(time.Duration(se.EstimatedTime*float64(time.Second)), time.Second), 30*time.Second)
		if time.Now().Add(wait).After(deadline) {
			return nil, err
		}
		c.log.Info("model is loading, retrying", zap.Duration("wait", wait), zap.Int("attempt", attempt))
		onRetry := c.cfg.OnRetry
		if req.OnRetry != nil {
			onRetry = req.OnRetry
		}
		if onRetry != nil {
			onRetry(wait, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// forget drops a chosen endpoint, unless another has replaced it.
func (c *Client) forget(r *resolvedEndpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.resolved == r {
		c.resolved = nil
	}
}

// buildRequest returns the URL and body of req for r, and the backend
// whose stream format the answer has (a raw request to a chat endpoint is
// answered as completions).
func (c *Client) buildRequest(r *resolvedEndpoint, req Request) (Backend, string, []byte, error) {
	model := r.model
	var body []byte
	var err error
	var path string
	backend := r.backend
	if backend == BackendOpenAI && req.Raw {
		backend = BackendOpenAICompletions
	}
	switch backend {
	case BackendTGI:
		path = "/generate_stream"
		body, err = tgiBody(req, r.maxStops)
	case BackendOpenAI:
		path = "/chat/completions"
		body, err = openAIBody(req, model, true)
	case BackendOpenAICompletions:
		path = "/completions"
		body, err = openAIBody(req, model, false)
	case BackendOllama:
		path = "/api/generate"
		if model == "" {
			return "", "", nil, errors.New("the ollama backend needs a model name (setting endpoint.model or --model)")
		}
		body, err = ollamaBody(req, model)
	default:
		return "", "", nil, fmt.Errorf("backend %q cannot generate", r.backend)
	}
	return backend, r.baseURL + path, body, err
}

func (c *Client) post(ctx context.Context, backend Backend, target string, body []byte, params Parameters) (*Stream, error) {
	sctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(sctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		cancel(nil)
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream, application/x-ndjson, application/json")
	tokenSent := c.authorize(req)

	idle := newIdleTimer(c.cfg.IdleTimeout, cancel)
	resp, err := c.http.Do(req)
	if err != nil {
		idle.stop()
		cause := context.Cause(sctx)
		cancel(nil)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if ite, ok := cause.(*IdleTimeoutError); ok {
			return nil, ite
		}
		return nil, &ConnectionError{URL: target, Err: unwrapURLError(err)}
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		idle.stop()
		cancel(nil)
		se := newStatusError(resp.StatusCode, target, tokenSent, raw)
		c.log.Debug("endpoint error response", zap.Int("status", resp.StatusCode), zap.ByteString("body", raw))
		return nil, se
	}
	body2 := &idleReader{r: resp.Body, idle: idle}
	decode := sseData
	if backend == BackendOllama || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		decode = ndjsonLines
	}
	s := newStream(sctx, ctx, cancel, resp.Body, decode(body2), parserFor(backend), params, c.log, idle)
	s.url = target
	return s, nil
}

// idleTimer cancels a request when no bytes arrive for a while.
type idleTimer struct {
	d     time.Duration
	timer *time.Timer
}

func newIdleTimer(d time.Duration, cancel context.CancelCauseFunc) *idleTimer {
	return &idleTimer{d: d, timer: time.AfterFunc(d, func() { cancel(&IdleTimeoutError{Timeout: d}) })}
}

func (t *idleTimer) reset() { t.timer.Reset(t.d) }
func (t *idleTimer) stop()  { t.timer.Stop() }

type idleReader struct {
	r    io.Reader
	idle *idleTimer
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.idle.reset()
	}
	return n, err
}
