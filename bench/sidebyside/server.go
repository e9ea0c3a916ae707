package main

import (
	"fmt"
	"net/http"

	"github.com/genls/genls/stream/streamtest"
)

// endpoint is a fake generation server that streams n tokens as fast as it
// can, one event per token, in the wire format of the route asked (see
// streamtest.Load): TGI's /generate_stream, OpenAI chat and completions under
// /v1, and Ollama's /api/generate. It answers the probes clients make
// (/info, /v1/models, /api/tags) too.
type endpoint struct {
	n int
	// flush sends each event in its own write, as a server that generates
	// slower than the client reads does. Without it, events go out in the
	// HTTP server's 4 KiB writes: a server that is ahead of its client.
	flush bool
}

var backends = map[string]string{
	"/generate_stream":     "tgi",
	"/v1/chat/completions": "openai",
	"/v1/completions":      "openai-completions",
	"/api/generate":        "ollama",
}

// words are the token texts, in turn. Every tenth token is a line break, as
// in code; line breaks and quotes are escaped on the wire.
var words = []string{" if", " err", " !=", " nil", " {", " return", " fmt", ".Errorf", "(\"", "read", " %w", "\",", " err", ")"}

func token(i int) string {
	if i%10 == 9 {
		return "\n"
	}
	return words[i%len(words)]
}

const model = "Qwen/Qwen2.5-Coder-32B-Instruct"

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		switch r.URL.Path {
		case "/info":
			fmt.Fprintf(w, `{"model_id":%q,"max_stop_sequences":4}`, model)
		case "/v1/models":
			fmt.Fprintf(w, `{"object":"list","data":[{"id":%q,"object":"model"}]}`, model)
		case "/api/tags":
			fmt.Fprintf(w, `{"models":[{"name":%q}]}`, model)
		default:
			http.NotFound(w, r)
		}
		return
	}
	backend, ok := backends[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	load := streamtest.Load{Backend: backend, Tokens: e.n, Text: token}
	w.Header().Set("Content-Type", load.ContentType())
	rc := http.NewResponseController(w)
	load.Write(func(event []byte) error {
		if _, err := w.Write(event); err != nil || !e.flush {
			return err // an error: the client went away
		}
		return rc.Flush()
	})
}
