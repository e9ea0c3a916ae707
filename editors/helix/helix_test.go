// Helix is not packaged for Debian 12, so this checks the snippet instead of
// driving the editor: languages.toml must parse as TOML (with Python's
// tomllib), start the genls command, hand it settings the server reads, and
// add it to at least one language.
package helix_test

import (
	"encoding/json"
	"os/exec"
	"slices"
	"testing"

	"github.com/genls/genls/editors/e2etest"
)

func TestLanguagesTOML(t *testing.T) {
	doc := parseTOML(t, "languages.toml")

	servers, _ := doc["language-server"].(map[string]any)
	server, _ := servers["genls"].(map[string]any)
	if server == nil {
		t.Fatalf("no [language-server.genls] table")
	}
	if server["command"] != "genls" {
		t.Errorf("command = %#v, want \"genls\"", server["command"])
	}
	if args, _ := server["args"].([]any); len(args) > 0 && !slices.Equal(args, []any{"--stdio"}) {
		t.Errorf("args = %#v, want none or [\"--stdio\"]", args)
	}
	// Helix sends config as initializationOptions.
	e2etest.CheckSettings(t, "language-server.genls.config", server["config"])

	languages, _ := doc["language"].([]any)
	var using []string
	for _, l := range languages {
		lang, _ := l.(map[string]any)
		servers, _ := lang["language-servers"].([]any)
		if slices.Contains(servers, any("genls")) {
			name, _ := lang["name"].(string)
			using = append(using, name)
		}
	}
	if len(using) == 0 {
		t.Errorf("no [[language]] lists genls in language-servers")
	}
}

// parseTOML decodes a TOML file with Python's tomllib (Python 3.11+, as in
// Debian 12), which keeps a TOML parser out of the module's dependencies.
func parseTOML(t *testing.T, path string) map[string]any {
	t.Helper()
	python := e2etest.LookPath(t, "python3", "apt-get install python3")
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
