// Package e2etest holds what the real-editor tests under editors/ share:
// building the genls binary once and deciding whether a missing editor is a
// skip (a developer's machine) or a failure (CI, GENLS_E2E_REQUIRED=1).
package e2etest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Required reports whether end-to-end prerequisites must be present, as they
// are in CI: then a missing editor fails the test instead of skipping it.
func Required() bool { return os.Getenv("GENLS_E2E_REQUIRED") == "1" }

// LookPath returns the path of an external program the test needs, skipping
// the test with a visible reason when it is missing, or failing it when
// GENLS_E2E_REQUIRED=1.
func LookPath(t testing.TB, name, installHint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found on PATH ("+installHint+")")
	}
	return p
}

// Missing skips (or, when required, fails) the test for a missing prerequisite.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if Required() {
		t.Fatalf("GENLS_E2E_REQUIRED=1 but %s", reason)
	}
	// go test hides a passing package's skip messages; test.sh collects
	// them here and prints them at the end.
	if report := os.Getenv("GENLS_SKIP_REPORT"); report != "" {
		if f, err := os.OpenFile(report, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintf(f, "%s: %s\n", t.Name(), reason)
			f.Close()
		}
	}
	t.Skipf("skipping end-to-end test: %s; set GENLS_E2E_REQUIRED=1 to make this a failure", reason)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

// Genls builds the genls binary from the module root once per test process and
// returns its path.
func Genls(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "genls-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "genls")
		if runtime.GOOS == "windows" {
			buildPath += ".exe"
		}
		cmd := exec.Command("go", "build", "-o", buildPath, ".")
		cmd.Dir = ModuleRoot(t)
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build genls: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}

// ModuleRoot returns the directory holding go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	mod := string(out)
	for len(mod) > 0 && (mod[len(mod)-1] == '\n' || mod[len(mod)-1] == '\r') {
		mod = mod[:len(mod)-1]
	}
	return filepath.Dir(mod)
}

// ParseTOML decodes a TOML file with Python's tomllib (Python 3.11+, as in
// Debian 12), which keeps a TOML parser out of the module's dependencies.
func ParseTOML(t testing.TB, path string) map[string]any {
	t.Helper()
	python := LookPath(t, "python3", "apt-get install python3")
	out, err := exec.Command(python, "-c",
		"import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))", path).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("%s: %v\n%s", path, err, ee.Stderr)
		}
		t.Fatalf("%s: %v", path, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

// ReadJSON decodes a JSON snippet file into a generic object.
func ReadJSON(t testing.TB, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

// Workspace is one editor session's files, in a fresh temporary directory:
// the file the editor opens, where the harness writes the buffer and its
// report, the server's log, and the settings genls gets, as JSON.
type Workspace struct {
	Dir, File, Out, Result, ServerLog string
	Settings                          string
}

// NewWorkspace writes text to work/name in a new temporary directory and
// encodes settings (nil: a TGI endpoint at url).
func NewWorkspace(t testing.TB, name, text string, settings map[string]any, url string) Workspace {
	t.Helper()
	dir := t.TempDir()
	w := Workspace{Dir: dir, File: filepath.Join(dir, "work", name), Out: filepath.Join(dir, "out.txt"),
		Result: filepath.Join(dir, "result.json"), ServerLog: filepath.Join(dir, "genls.log")}
	if err := os.MkdirAll(filepath.Dir(w.File), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.File, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if settings == nil {
		settings = map[string]any{"endpoint": map[string]any{"url": url, "backend": "tgi"}}
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	w.Settings = string(raw)
	return w
}

// LogFile logs the file at path, if it exists, as what: an editor's or the
// server's log, shown when a test fails.
func LogFile(t testing.TB, what, path string) {
	t.Helper()
	if data, err := os.ReadFile(path); err == nil {
		t.Logf("%s (%s):\n%s", what, path, data)
	}
}

// Clip shortens a long text (a runaway buffer) for a failure message.
func Clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
