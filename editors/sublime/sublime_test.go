// Sublime Text is not packaged for Debian 12, so this checks the snippet
// instead of driving the editor: LSP.sublime-settings must parse (JSON with
// // comments, as Sublime allows), start the genls command, and hand it
// settings the server reads.
package sublime_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/genls/genls/editors/snippets"
)

func TestLSPSettings(t *testing.T) {
	data, err := os.ReadFile("LSP.sublime-settings")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(stripLineComments(data), &doc); err != nil {
		t.Fatalf("LSP.sublime-settings: %v", err)
	}
	clients, _ := doc["clients"].(map[string]any)
	client, _ := clients["genls"].(map[string]any)
	if client == nil {
		t.Fatalf("no clients.genls")
	}
	if client["enabled"] != true {
		t.Errorf("enabled = %#v, want true", client["enabled"])
	}
	if cmd, _ := client["command"].([]any); len(cmd) == 0 || cmd[0] != "genls" {
		t.Errorf("command = %#v, want [\"genls\", ...]", client["command"])
	}
	if s, _ := client["selector"].(string); s == "" {
		t.Errorf("no selector: the client would attach nowhere")
	}
	snippets.CheckSettings(t, "clients.genls.initializationOptions", client["initializationOptions"])
	// LSP answers workspace/configuration with the section looked up here.
	settings, _ := client["settings"].(map[string]any)
	snippets.CheckSettings(t, "clients.genls.settings.genls", settings["genls"])
}

// stripLineComments drops lines that are only a // comment.
func stripLineComments(data []byte) []byte {
	var b strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "//") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
