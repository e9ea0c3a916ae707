// Zed is not packaged for Debian 12 and its extensions build against
// crates.io, which this machine cannot reach, so this checks the files
// instead of driving the editor: the extension must register a server named
// genls (the name settings.json configures under "lsp"), run the genls
// command, and settings.json must hand it settings the server reads.
package zed_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/genls/genls/editors/e2etest"
	"github.com/genls/genls/editors/snippets"
)

func TestSettingsJSON(t *testing.T) {
	doc := e2etest.ReadJSON(t, "settings.json")
	lsp, _ := doc["lsp"].(map[string]any)
	server, _ := lsp["genls"].(map[string]any)
	if server == nil {
		t.Fatalf("no lsp.genls")
	}
	// The extension sends these as initializationOptions and as the
	// "genls" workspace/configuration section.
	snippets.CheckSettings(t, "lsp.genls.settings", server["settings"])
	if opts, ok := server["initialization_options"]; ok {
		snippets.CheckSettings(t, "lsp.genls.initialization_options", opts)
	}
	languages, _ := doc["languages"].(map[string]any)
	for name, l := range languages {
		lang, _ := l.(map[string]any)
		servers, _ := lang["language_servers"].([]any)
		if !slices.Contains(servers, any("genls")) {
			t.Errorf("languages.%s.language_servers = %#v, want genls in it", name, servers)
		}
	}
}

func TestExtension(t *testing.T) {
	manifest := e2etest.ParseTOML(t, "extension/extension.toml")
	if manifest["id"] != "genls" || manifest["schema_version"] != float64(1) {
		t.Errorf("extension.toml: id = %#v, schema_version = %#v", manifest["id"], manifest["schema_version"])
	}
	servers, _ := manifest["language_servers"].(map[string]any)
	server, _ := servers["genls"].(map[string]any)
	if server == nil {
		t.Fatalf("extension.toml: no [language_servers.genls]")
	}
	if langs, _ := server["languages"].([]any); len(langs) == 0 {
		t.Errorf("extension.toml: language_servers.genls.languages is empty")
	}

	cargo := e2etest.ParseTOML(t, "extension/Cargo.toml")
	lib, _ := cargo["lib"].(map[string]any)
	if types, _ := lib["crate-type"].([]any); !slices.Contains(types, any("cdylib")) {
		t.Errorf("Cargo.toml: lib.crate-type = %#v, want cdylib (Zed loads WebAssembly)", lib["crate-type"])
	}
	if deps, _ := cargo["dependencies"].(map[string]any); deps["zed_extension_api"] == nil {
		t.Errorf("Cargo.toml: no zed_extension_api dependency")
	}

	src, err := os.ReadFile("extension/src/lib.rs")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`which("genls")`,                    // runs genls from PATH
		`LspSettings::for_worktree("genls"`, // reads lsp.genls
		`"genls": settings`,                 // the workspace/configuration section
		"zed::register_extension!",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("lib.rs does not contain %s", want)
		}
	}
}
