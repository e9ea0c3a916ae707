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
	checkSettings(t, "language-server.genls.config", server["config"])

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

// settingsSchema is the genls settings object as the server reads it
// (initializationOptions, the "genls" workspace/configuration section and
// workspace/didChangeConfiguration): leaf values name the JSON type.
var settingsSchema = map[string]any{
	"endpoint": map[string]any{
		"url": "string", "backend": "backend", "model": "string", "token": "string",
	},
	"parameters": map[string]any{
		"max_new_tokens": "number", "top_k": "number", "top_p": "number",
		"temperature": "number", "repetition_penalty": "number",
		"stop_sequences": "strings", "seed": "number",
	},
	"prompt": map[string]any{
		"template": "string", "system": "string",
		"fim": map[string]any{"prefix": "string", "suffix": "string", "middle": "string"},
	},
	"log":                  map[string]any{"level": "string", "file": "string"},
	"idle_timeout_seconds": "number",
}

var backends = map[string]bool{"auto": true, "tgi": true, "openai": true, "openai-completions": true, "ollama": true}

// checkSettings reports every key of v that the server would not read and
// every value of the wrong type; it also requires an endpoint URL.
func checkSettings(t *testing.T, where string, v any) {
	t.Helper()
	obj, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s: settings are %T, want an object", where, v)
		return
	}
	checkObject(t, where, obj, settingsSchema)
	if ep, _ := obj["endpoint"].(map[string]any); ep == nil || ep["url"] == nil {
		t.Errorf("%s: no endpoint.url", where)
	}
}

func checkObject(t *testing.T, where string, obj, schema map[string]any) {
	t.Helper()
	for key, val := range obj {
		path := where + "." + key
		switch want := schema[key].(type) {
		case nil:
			t.Errorf("%s: genls has no such setting", path)
		case map[string]any:
			sub, ok := val.(map[string]any)
			if !ok {
				t.Errorf("%s: %T, want an object", path, val)
				continue
			}
			checkObject(t, path, sub, want)
		case string:
			if !hasType(val, want) {
				t.Errorf("%s: %#v is not a valid %s", path, val, want)
			}
		}
	}
}

func hasType(v any, want string) bool {
	switch want {
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		switch v.(type) {
		case float64, int64:
			return true
		}
		return false
	case "backend":
		s, ok := v.(string)
		return ok && backends[s]
	case "strings":
		list, ok := v.([]any)
		for _, e := range list {
			if _, isString := e.(string); !isString {
				return false
			}
		}
		return ok
	}
	return false
}
