package commands

import (
	"slices"
	"testing"
)

// The expected strings are written out here from the sources cited in
// fim.go, not computed by the code under test. DeepSeek's markers are
// spelled with escapes so that an ASCII look-alike ("|" for U+FF5C, "_"
// for U+2581) cannot pass.
const (
	dsBegin = "<\uFF5Cfim\u2581begin\uFF5C>"
	dsHole  = "<\uFF5Cfim\u2581hole\uFF5C>"
	dsEnd   = "<\uFF5Cfim\u2581end\uFF5C>"
	dsEOS   = "<\uFF5Cend\u2581of\u2581sentence\uFF5C>"
)

func TestFIMPresetPrompts(t *testing.T) {
	const prefix, suffix = "def f(x):\n    ", "\n    return y\n"
	cases := []struct {
		name   string
		prompt string
		stops  []string
	}{
		{"starcoder",
			"<fim_prefix>def f(x):\n    <fim_suffix>\n    return y\n<fim_middle>",
			[]string{"<|endoftext|>", "<file_sep>"}},
		// A space after <PRE>, one before <SUF> (so five after the
		// prefix's four) and one before <MID>; none after <SUF>.
		{"codellama",
			"<PRE> def f(x):\n     <SUF>\n    return y\n <MID>",
			[]string{"<EOT>"}},
		{"deepseek-coder",
			dsBegin + "def f(x):\n    " + dsHole + "\n    return y\n" + dsEnd,
			[]string{dsEOS}},
		{"qwen2.5-coder",
			"<|fim_prefix|>def f(x):\n    <|fim_suffix|>\n    return y\n<|fim_middle|>",
			[]string{"<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>",
				"<|im_end|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"}},
		// Suffix first, the prompt ending with the prefix; no BOS.
		{"codestral",
			"[SUFFIX]\n    return y\n[PREFIX]def f(x):\n    ",
			[]string{"</s>", "[PREFIX]", "[SUFFIX]"}},
	}
	var names []string
	for _, p := range FIMPresets() {
		names = append(names, p.Name)
	}
	var want []string
	for _, c := range cases {
		want = append(want, c.name)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("FIMPresets() names %q, want %q", names, want)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ok := FIMPresetNamed(c.name)
			if !ok {
				t.Fatalf("no preset %q", c.name)
			}
			if !p.FIM.Enabled() {
				t.Errorf("%+v is not enabled", p.FIM)
			}
			if got := p.FIM.Wrap(prefix, suffix); got != c.prompt {
				t.Errorf("Wrap:\n got %q\nwant %q", got, c.prompt)
			}
			got, err := BuildPrompt(nil, p.FIM, PromptInput{Prefix: prefix, Suffix: suffix, Mode: ModeHere, Instruction: "ignored"})
			if err != nil || got != c.prompt {
				t.Errorf("BuildPrompt: %q, %v\nwant %q", got, err, c.prompt)
			}
			if !slices.Equal(p.Stops, c.stops) {
				t.Errorf("Stops %q, want %q", p.Stops, c.stops)
			}
		})
	}
}

func TestFIMEnabledAndWrap(t *testing.T) {
	cases := []struct {
		name    string
		fim     FIM
		enabled bool
		wrap    string
	}{
		{"none", FIM{}, false, "PS"},
		{"all three", FIM{Prefix: "<p>", Suffix: "<s>", Middle: "<m>"}, true, "<p>P<s>S<m>"},
		{"no middle", FIM{Prefix: "<p>", Suffix: "<s>"}, false, "<p>P<s>S"},
		{"no suffix", FIM{Prefix: "<p>", Middle: "<m>"}, false, "<p>PS<m>"},
		{"suffix first without middle", FIM{Prefix: "<p>", Suffix: "<s>", SuffixFirst: true}, true, "<s>S<p>P"},
		{"suffix first with middle", FIM{Prefix: "<p>", Suffix: "<s>", Middle: "<m>", SuffixFirst: true}, true, "<s>S<p>P<m>"},
		{"suffix first without prefix", FIM{Suffix: "<s>", SuffixFirst: true}, false, "<s>SP"},
		{"suffix first without suffix", FIM{Prefix: "<p>", SuffixFirst: true}, false, "S<p>P"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.fim.Enabled(); got != c.enabled {
				t.Errorf("Enabled() = %v, want %v", got, c.enabled)
			}
			if got := c.fim.Wrap("P", "S"); got != c.wrap {
				t.Errorf("Wrap = %q, want %q", got, c.wrap)
			}
		})
	}
	// A FIM that is not enabled leaves BuildPrompt to the plain prefix.
	got, err := BuildPrompt(nil, FIM{Prefix: "<p>", Suffix: "<s>"}, PromptInput{Prefix: "P", Suffix: "S", Mode: ModeHere})
	if err != nil || got != "P" {
		t.Errorf("BuildPrompt with an incomplete FIM: %q, %v; want %q", got, err, "P")
	}
}

func TestFIMPresetForModel(t *testing.T) {
	cases := []struct {
		model string
		want  string // "" when not recognised
	}{
		// Ollama.
		{"qwen2.5-coder:7b", "qwen2.5-coder"},
		{"qwen2.5-coder:1.5b-base-q8_0", "qwen2.5-coder"},
		{"codellama:7b-code", "codellama"},
		{"codellama:13b-code", "codellama"},
		{"codellama:latest", "codellama"},
		{"deepseek-coder:6.7b-base", "deepseek-coder"},
		{"deepseek-coder-v2:16b-lite-base-q4_0", "deepseek-coder"},
		{"starcoder2:3b", "starcoder"},
		{"starcoder:1b", "starcoder"},
		{"codestral:latest", "codestral"},
		{"codestral:22b", "codestral"},
		// Hugging Face.
		{"bigcode/starcoder2-15b", "starcoder"},
		{"bigcode/starcoderbase-1b", "starcoder"},
		{"Qwen/Qwen2.5-Coder-7B", "qwen2.5-coder"},
		{"deepseek-ai/deepseek-coder-6.7b-base", "deepseek-coder"},
		{"deepseek-ai/DeepSeek-Coder-V2-Lite-Base", "deepseek-coder"},
		{"codellama/CodeLlama-7b-hf", "codellama"},
		{"codellama/CodeLlama-13b-hf", "codellama"},
		{"mistralai/Codestral-22B-v0.1", "codestral"},
		{"codestral-latest", "codestral"},
		// llama.cpp (the model's path) and LM Studio.
		{"/models/qwen2.5-coder-1.5b-q8_0.gguf", "qwen2.5-coder"},
		{"starcoder-tiny.gguf", "starcoder"},
		{`C:\models\StarCoder2-3B-Q8_0.gguf`, "starcoder"},
		{"/srv/models/codellama-7b.Q4_K_M.gguf", "codellama"},
		{"/srv/models/deepseek-coder-1.3b-base.Q8_0.gguf", "deepseek-coder"},
		{"lmstudio-community/Qwen2.5-Coder-7B-GGUF", "qwen2.5-coder"},
		{"  Qwen2.5-Coder-7B  ", "qwen2.5-coder"},

		// Not fill-in-the-middle models.
		{"gpt-4o", ""},
		{"llama3.1:8b", ""},
		{"mistral:7b", ""},
		{"qwen2.5:7b", ""},
		{"Qwen/Qwen2.5-7B", ""},
		{"deepseek-r1:7b", ""},
		{"codegemma:2b", ""},
		{"", ""},
		{"/", ""},
		// Only the file's name counts, not its directories.
		{"/srv/starcoder2/llama3.1-8b.gguf", ""},
		{`C:\models\qwen2.5-coder\Llama-3.1-8B.gguf`, ""},
		// Instruct and chat variants: FIM is documented for the base
		// models only (Code Llama's sources disagree; see fim.go).
		{"qwen2.5-coder:7b-instruct", ""},
		{"Qwen/Qwen2.5-Coder-7B-Instruct", ""},
		{"qwen2.5-coder-7b-instruct", ""},
		{"/models/Qwen2.5-Coder-7B-Instruct.Q4_K_M.gguf", ""},
		{"deepseek-coder:6.7b-instruct", ""},
		{"deepseek-ai/deepseek-coder-6.7b-instruct", ""},
		{"deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", ""},
		{"bigcode/starcoder2-15b-instruct-v0.1", ""},
		{"codellama:13b-instruct", ""},
		{"codellama/CodeLlama-7b-Instruct-hf", ""},
		{"qwen3-coder:30b", ""},
		{"Qwen/Qwen3-Coder-30B-A3B-Instruct", ""},
		// Code Llama without infilling: 34B, 70B, Python.
		{"codellama:34b", ""},
		{"codellama:70b-code", ""},
		{"codellama:7b-python", ""},
		{"codellama/CodeLlama-13b-Python-hf", ""},
		// Different markers (<fim-prefix>) or no FIM at all.
		{"bigcode/santacoder", ""},
		{"mistralai/Mamba-Codestral-7B-v0.1", ""},
	}
	for _, c := range cases {
		p, ok := FIMPresetForModel(c.model)
		if ok != (c.want != "") || p.Name != c.want {
			t.Errorf("FIMPresetForModel(%q) = %q, %v; want %q", c.model, p.Name, ok, c.want)
		}
	}
}

func TestFIMPresetNamed(t *testing.T) {
	for _, name := range []string{"starcoder", "StarCoder", "CODELLAMA", "DeepSeek-Coder", "Qwen2.5-Coder", "Codestral"} {
		if p, ok := FIMPresetNamed(name); !ok || !p.FIM.Enabled() {
			t.Errorf("FIMPresetNamed(%q) = %+v, %v", name, p, ok)
		}
	}
	for _, name := range []string{"", "star coder", "starcoder2", "qwen", "qwen2.5", "deepseek", " codestral", "codestral "} {
		if p, ok := FIMPresetNamed(name); ok {
			t.Errorf("FIMPresetNamed(%q) = %+v; want none", name, p)
		}
	}
}

func TestFIMPresetsAreCopies(t *testing.T) {
	mutate := func(p *FIMPreset) {
		p.Name = "changed"
		p.FIM.Prefix = "changed"
		p.Stops[0] = "changed"
		p.Stops = append(p.Stops, "extra")
	}
	ps := FIMPresets()
	for i := range ps {
		mutate(&ps[i])
	}
	ps[0] = FIMPreset{}
	named, _ := FIMPresetNamed("qwen2.5-coder")
	mutate(&named)
	recognised, _ := FIMPresetForModel("starcoder2:3b")
	mutate(&recognised)

	again := FIMPresets()
	if again[0].Name != "starcoder" || again[0].FIM.Prefix != "<fim_prefix>" || !slices.Equal(again[0].Stops, []string{"<|endoftext|>", "<file_sep>"}) {
		t.Errorf("starcoder changed through a copy: %+v", again[0])
	}
	if q := again[3]; q.Name != "qwen2.5-coder" || q.FIM.Prefix != "<|fim_prefix|>" || q.Stops[0] != "<|endoftext|>" || len(q.Stops) != 8 {
		t.Errorf("qwen2.5-coder changed through a copy: %+v", q)
	}
	for _, p := range again {
		if p.Name == "changed" || p.FIM.Prefix == "changed" || slices.Contains(p.Stops, "changed") || slices.Contains(p.Stops, "extra") {
			t.Errorf("a preset changed through a copy: %+v", p)
		}
	}
}
