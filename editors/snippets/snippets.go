// Package snippets checks the settings objects of the editor recipes
// (Helix, Zed, Sublime Text, Kate) against the server's own settings
// parser, so that a README never shows settings genls would refuse. It is
// apart from e2etest, which drives editors and is used by packages that
// lsp's own tests import.
package snippets

import (
	"encoding/json"
	"testing"

	"github.com/genls/genls/lsp"
)

// CheckSettings fails the test unless v, a settings object from an editor
// recipe (found at where), is accepted in full by the server's own settings
// parser and names an endpoint URL.
func CheckSettings(t testing.TB, where string, v any) {
	t.Helper()
	obj, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s: settings are %T, want an object", where, v)
		return
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if err := lsp.CheckSettings(raw); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	if ep, _ := obj["endpoint"].(map[string]any); ep == nil || ep["url"] == nil {
		t.Errorf("%s: no endpoint.url", where)
	}
}
