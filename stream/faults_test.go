package stream_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/streamtest"
)

// Faults not covered by client_test.go: name resolution, TLS, a slow
// trickle, memory under an oversized event, and where the token goes.

func TestDNSFailure(t *testing.T) {
	c := newClient(t, "http://genls-fault-test.invalid:8080", stream.BackendTGI)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := c.Generate(ctx, stream.Request{Prompt: "p"})
	var ce *stream.ConnectionError
	if !errors.As(err, &ce) || ce.MidStream || !strings.Contains(err.Error(), "genls-fault-test.invalid") {
		t.Fatalf("err = %v", err)
	}
}

func TestUntrustedTLSCertificate(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request got past the TLS handshake")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, stream.BackendTGI, func(c *stream.Config) { c.Endpoint.Token = "hf_SECRETSECRET123" })
	_, err := c.Generate(context.Background(), stream.Request{Prompt: "p"})
	var ce *stream.ConnectionError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("token in the error: %v", err)
	}
}

// One byte at a time, with a delay before each: the output is exact.
func TestSlowTrickle(t *testing.T) {
	tokens := []string{"é", "😀", " wörld", "\n", "日本", "data: x\n\n"}
	script := streamtest.TGI(0, "length", tokens...)
	var chunks []streamtest.Chunk
	for _, c := range script.Chunks {
		for i := range c.Data {
			chunks = append(chunks, streamtest.Chunk{Data: c.Data[i : i+1], Delay: 100 * time.Microsecond})
		}
	}
	srv := streamtest.NewServer(t, streamtest.Script{Chunks: chunks})
	c := newClient(t, srv.URL, stream.BackendTGI, func(c *stream.Config) { c.IdleTimeout = 2 * time.Second })
	out, res, err := generate(t, c, stream.Request{Prompt: "p"})
	if err != nil || out != strings.Join(tokens, "") || res.FinishReason != stream.FinishLength || res.Tokens != len(tokens) {
		t.Fatalf("out %q reason %q tokens %d err %v", out, res.FinishReason, res.Tokens, err)
	}
}

// An endless event (16 MiB without a line end) is cut off at MaxEventSize:
// memory stays bounded by the limit, not by what the server sends.
func TestOversizedEventMemoryIsBounded(t *testing.T) {
	const sent = 16 << 20
	piece := []byte(strings.Repeat("x", 64<<10))
	chunks := []streamtest.Chunk{{Data: []byte("data: ")}}
	for i := 0; i < sent/len(piece); i++ {
		chunks = append(chunks, streamtest.Chunk{Data: piece})
	}
	for _, backend := range []stream.Backend{stream.BackendTGI, stream.BackendOllama} {
		t.Run(string(backend), func(t *testing.T) {
			script := streamtest.Script{Chunks: chunks}
			if backend == stream.BackendOllama {
				script.Header = http.Header{"Content-Type": {"application/x-ndjson"}}
			}
			srv := streamtest.NewServer(t, script)
			c := newClient(t, srv.URL, backend)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := generate(t, c, stream.Request{Prompt: "p"})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, stream.ErrEventTooLarge) {
				t.Fatalf("err = %v", err)
			}
			// Reading allocates about twice the limit as the buffer grows;
			// the server's writes add a little. 16 MiB would be far over.
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d MiB sent, %.1f MiB allocated", sent>>20, float64(alloc)/(1<<20))
			if alloc > 6*stream.MaxEventSize {
				t.Errorf("allocated %d bytes for a %d-byte event; the limit is %d", alloc, sent, stream.MaxEventSize)
			}
		})
	}
}

// The token goes to the configured host only: a redirect to another host
// (localhost instead of 127.0.0.1) is followed without it.
func TestTokenNotSentAcrossRedirect(t *testing.T) {
	other := streamtest.NewServer(t, streamtest.TGI(0, "length", "x"))
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer hf_SECRETSECRET123" {
			t.Errorf("the configured host got Authorization %q", r.Header.Get("Authorization"))
		}
		http.Redirect(w, r, otherURL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(front.Close)
	c := newClient(t, front.URL, stream.BackendTGI, func(c *stream.Config) { c.Endpoint.Token = "hf_SECRETSECRET123" })
	generate(t, c, stream.Request{Prompt: "p"})
	reqs := other.Requests()
	if len(reqs) == 0 {
		t.Fatalf("the redirect was not followed")
	}
	for _, r := range reqs {
		if a := r.Header.Get("Authorization"); a != "" {
			t.Errorf("%s %s on another host got Authorization %q", r.Method, r.Path, a)
		}
	}
}
