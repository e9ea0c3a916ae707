// Kate is packaged for Debian 12 but is a GUI application with no way to
// run a code action from a script, so this checks the snippet instead of
// driving the editor: settings.json (the LSP Client's "User Server
// Settings") must parse, start the genls command for some highlighting
// modes, and hand it settings the server reads.
package kate_test

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"
)

func TestServerSettings(t *testing.T) {
	data, err := os.ReadFile("settings.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("settings.json: %v", err)
	}
	servers, _ := doc["servers"].(map[string]any)
	server, _ := servers["genls"].(map[string]any)
	if server == nil {
		t.Fatalf("no servers.genls")
	}
	if cmd, _ := server["command"].([]any); len(cmd) == 0 || cmd[0] != "genls" {
		t.Errorf("command = %#v, want [\"genls\", ...]", server["command"])
	}
	re, _ := server["highlightingModeRegex"].(string)
	mode, err := regexp.Compile(re)
	if err != nil || re == "" {
		t.Fatalf("highlightingModeRegex %q: %v", re, err)
	}
	for _, m := range []string{"Normal", "Markdown"} {
		if !mode.MatchString(m) {
			t.Errorf("highlightingModeRegex %q does not match Kate's %q mode", re, m)
		}
	}
	checkSettings(t, "servers.genls.initializationOptions", server["initializationOptions"])
	// Kate sends "settings" with workspace/didChangeConfiguration.
	settings, _ := server["settings"].(map[string]any)
	checkSettings(t, "servers.genls.settings.genls", settings["genls"])
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
