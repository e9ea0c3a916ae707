package streamtest

import (
	"encoding/json"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Port returns the port the server listens on (on 127.0.0.1), for tests
// that point genls's search for local servers at it.
func (s *Server) Port() int {
	u, _ := url.Parse(s.URL)
	p, _ := strconv.Atoi(u.Port())
	return p
}

// Ports joins ports as GENLS_LOCAL_PORTS takes them.
func Ports(ports ...int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// ClosedPort returns a port of 127.0.0.1 and ::1 where nothing listens: one
// the system just handed out and took back.
func ClosedPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// Silent is a TCP server on 127.0.0.1 that accepts connections and never
// answers, like a process that is stuck. It counts the connections.
type Silent struct {
	Port int

	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// NewSilent starts a silent server, closed when the test ends.
func NewSilent(t testing.TB) *Silent {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Silent{Port: l.Addr().(*net.TCPAddr).Port, l: l}
	s.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	})
	t.Cleanup(s.Close)
	return s
}

// Accepted returns how many connections the server accepted.
func (s *Silent) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops listening and drops the connections.
func (s *Silent) Close() {
	s.l.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// OllamaTags is Ollama's answer to GET /api/tags listing models, most
// recently pulled first. A name with "embed" in it is given the family of
// an embedding model.
func OllamaTags(models ...string) string {
	type details struct {
		Format string `json:"format"`
		Family string `json:"family"`
	}
	type model struct {
		Name    string  `json:"name"`
		Model   string  `json:"model"`
		Size    int     `json:"size"`
		Details details `json:"details"`
	}
	list := struct {
		Models []model `json:"models"`
	}{Models: []model{}}
	for _, m := range models {
		family := "llama"
		if strings.Contains(m, "embed") {
			family = "nomic-bert"
		}
		list.Models = append(list.Models, model{Name: m, Model: m, Size: 4 << 30, Details: details{Format: "gguf", Family: family}})
	}
	b, _ := json.Marshal(list)
	return string(b)
}

// OpenAIModels is an OpenAI-compatible answer to GET /v1/models, each
// model owned by owner ("vllm", "llamacpp", "library"…).
func OpenAIModels(owner string, ids ...string) string {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, id := range ids {
		list.Data = append(list.Data, model{ID: id, Object: "model", OwnedBy: owner})
	}
	b, _ := json.Marshal(list)
	return string(b)
}

// LlamaServerModels is llama.cpp's llama-server's answer to GET /v1/models
// and to GET /api/tags alike: its model in Ollama's form and in OpenAI's.
func LlamaServerModels(id string) string {
	b, _ := json.Marshal(map[string]any{
		"models": []map[string]any{{"name": id, "model": id, "type": "model"}},
		"object": "list",
		"data":   []map[string]any{{"id": id, "object": "model", "owned_by": "llamacpp"}},
	})
	return string(b)
}

// NewOllama is a fake Ollama server listing models (at /api/tags, and at
// /v1/models as Ollama's OpenAI-compatible API does) and answering
// generations with script.
func NewOllama(t testing.TB, script Script, models ...string) *Server {
	return NewServer(t, script).Route("/api/tags", OllamaTags(models...)).Route("/v1/models", OpenAIModels("library", models...))
}

// NewLlamaServer is a fake llama.cpp llama-server serving model.
func NewLlamaServer(t testing.TB, script Script, model string) *Server {
	return NewServer(t, script).Route("/v1/models", LlamaServerModels(model)).Route("/api/tags", LlamaServerModels(model)).
		Route("/health", `{"status":"ok"}`)
}

// NewVLLM is a fake vLLM server serving models.
func NewVLLM(t testing.TB, script Script, models ...string) *Server {
	return NewServer(t, script).Route("/v1/models", OpenAIModels("vllm", models...))
}

// NewTGI is a fake TGI server serving model.
func NewTGI(t testing.TB, script Script, model string) *Server {
	info, _ := json.Marshal(map[string]any{"model_id": model, "max_stop_sequences": 4, "max_input_tokens": 4096, "max_total_tokens": 8192, "version": "3.0.1"})
	return NewServer(t, script).Route("/info", string(info)).Route("/v1/models", OpenAIModels("tgi", model))
}
