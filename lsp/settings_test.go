package lsp

import (
	"encoding/json"
	"testing"
)

// Lua-configured clients send an empty table as [] wherever it stands; that
// means "no settings", not a type error.
func TestSettingsFromEmptyLuaTables(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		wantErr bool
		stops   int
	}{
		{`[]`, false, 0},
		{`null`, false, 0},
		{``, false, 0},
		{`{"genls": []}`, false, 0},
		{`{"endpoint": [], "prompt": {"fim": []}, "parameters": {"stop_sequences": []}}`, false, 0},
		{`{"genls": {"endpoint": [], "parameters": {"stop_sequences": ["\n\n"]}}}`, false, 1},
		{`{"parameters": {"stop_sequences": {}}}`, true, 0},
		{`{"endpoint": [1]}`, true, 0},
		{`[1]`, true, 0},
	}
	for _, tt := range tests {
		cfg, err := parseSettings(json.RawMessage(tt.raw))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: error %v, want error %v", tt.raw, err, tt.wantErr)
			continue
		}
		if err == nil && len(cfg.params.StopSequences) != tt.stops {
			t.Errorf("%s: %d stop sequences, want %d", tt.raw, len(cfg.params.StopSequences), tt.stops)
		}
		if err == nil {
			if keys := unknownKeys(json.RawMessage(tt.raw)); len(keys) > 0 {
				t.Errorf("%s: unknown keys %v", tt.raw, keys)
			}
		}
	}
}
