// Kate is packaged for Debian 12 but is a GUI application with no way to
// run a code action from a script, so this checks the snippet instead of
// driving the editor: settings.json (the LSP Client's "User Server
// Settings") must parse, start the genls command for some highlighting
// modes, and hand it settings the server reads.
package kate_test

import (
	"regexp"
	"testing"

	"github.com/genls/genls/editors/e2etest"
	"github.com/genls/genls/editors/snippets"
)

func TestServerSettings(t *testing.T) {
	doc := e2etest.ReadJSON(t, "settings.json")
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
	snippets.CheckSettings(t, "servers.genls.initializationOptions", server["initializationOptions"])
	// Kate sends "settings" with workspace/didChangeConfiguration.
	settings, _ := server["settings"].(map[string]any)
	snippets.CheckSettings(t, "servers.genls.settings.genls", settings["genls"])
}
