package commands

import "strings"

// Temporary: replaced by the fim branch.
type FIMPreset struct {
	Name  string
	FIM   FIM
	Stops []string
}

func (f FIM) Wrap(prefix, suffix string) string {
	return f.Prefix + prefix + f.Suffix + suffix + f.Middle
}

func FIMPresets() []FIMPreset {
	return []FIMPreset{{Name: "starcoder", FIM: FIM{Prefix: "<fim_prefix>", Suffix: "<fim_suffix>", Middle: "<fim_middle>"}, Stops: []string{"<|endoftext|>", "<file_sep>"}}}
}

func FIMPresetNamed(name string) (FIMPreset, bool) {
	for _, p := range FIMPresets() {
		if strings.EqualFold(p.Name, name) {
			return p, true
		}
	}
	return FIMPreset{}, false
}

func FIMPresetForModel(model string) (FIMPreset, bool) {
	if strings.Contains(strings.ToLower(model), "starcoder") {
		return FIMPresets()[0], true
	}
	return FIMPreset{}, false
}
