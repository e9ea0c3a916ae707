// Helix is not packaged for Debian 12, so this checks the snippet instead of
// driving the editor: languages.toml must parse as TOML (with Python's
// tomllib), start the genls command, hand it settings the server reads, and
// add it to at least one language.
package helix_test

import (
	"slices"
	"testing"

	"github.com/genls/genls/editors/e2etest"
	"github.com/genls/genls/editors/snippets"
)

func TestLanguagesTOML(t *testing.T) {
	doc := e2etest.ParseTOML(t, "languages.toml")

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
	snippets.CheckSettings(t, "language-server.genls.config", server["config"])

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
