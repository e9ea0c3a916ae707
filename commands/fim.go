package commands

import (
	"path"
	"slices"
	"strings"
)

// FIMPreset is one model family's fill-in-the-middle format.
type FIMPreset struct {
	// Name is the value of the prompt.fim.preset setting: "starcoder",
	// "codellama", "deepseek-coder", "qwen2.5-coder" or "codestral".
	Name string
	FIM  FIM
	// Stops are the family's end and separator tokens, which end a
	// completion when a server streams them as text instead of stopping
	// at them.
	Stops []string
}

// fimPresets are the presets in FIMPresets' order. Each string is the
// tokenizer's own; the comment above each preset says where it comes from.
// The prompts are text: the server's tokenizer turns each marker into its
// one special token (llama.cpp's /completion and OpenAI-style
// /v1/completions parse special tokens in a string prompt), and adds the
// BOS token itself when the model's tokenizer asks for one, so no preset
// writes a BOS.
var fimPresets = []FIMPreset{
	// StarCoder, StarCoderBase, StarCoderPlus and StarCoder2: <fim_prefix>,
	// <fim_suffix>, <fim_middle> are ids 1, 3, 2 of their tokenizers,
	// <|endoftext|> is 0, and StarCoder2's <file_sep> (6) separates files
	// in its repository-level format, after which a completion is over.
	// Sources: the StarCoder2 paper's prompt format as quoted in
	// https://github.com/bigcode-project/starcoder2/issues/21
	// ("<repo_name>…<file_sep><fim_prefix>…<fim_suffix>…<fim_middle>…<file_sep>…<|endoftext|>");
	// llama.cpp's src/llama-vocab.cpp FIM token tables (<fim_prefix> etc.);
	// and llama.cpp's models/ggml-vocab-starcoder.gguf (StarCoder2's
	// vocabulary), whose llama-server tokenizes each marker and stop as
	// one token (fim_llama_test.go). SantaCoder is not in this family: its
	// markers are <fim-prefix>, <fim-suffix>, <fim-middle>, with hyphens
	// (https://huggingface.co/bigcode/santacoder model card).
	{
		Name:  "starcoder",
		FIM:   FIM{Prefix: "<fim_prefix>", Suffix: "<fim_suffix>", Middle: "<fim_middle>"},
		Stops: []string{"<|endoftext|>", "<file_sep>"},
	},
	// Code Llama: Meta's reference implementation builds an infilling
	// prompt as [BOS, ▁<PRE>] + encode(prefix) + [▁<SUF>] +
	// encode_infilling(suffix) + [▁<MID>], commented 'format as "<PRE>
	// {pre} <SUF>{suf} <MID>"' (github.com/meta-llama/codellama,
	// llama/generation.py, infilling_prompt_tokens; the tokens are the
	// SentencePiece pieces "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>" of
	// llama/tokenizer.py). As text: a space after <PRE> (the prefix's
	// SentencePiece dummy prefix), a space before <SUF> and <MID> (the ▁
	// of their pieces), none after <SUF>. Ollama's docs/template.md
	// ("Example Fill-in-Middle": "<PRE> {{ .Prompt }} <SUF>{{ .Suffix }}
	// <MID>") and Continue's codeLlamaFimTemplate
	// (core/autocomplete/templating/AutocompleteTemplate.ts) write the
	// same; Meta's model card writes the token sequence as
	// "<s><PRE>{{ code_prefix }}<SUF>{{ code_suffix }}<MID>", BOS first.
	// The model ends an infill with <EOT> (llama.cpp's EOG table in
	// src/llama-vocab.cpp lists "<EOT>"; streamed as text it is " <EOT>").
	{
		Name:  "codellama",
		FIM:   FIM{Prefix: "<PRE> ", Suffix: " <SUF>", Middle: " <MID>"},
		Stops: []string{"<EOT>"},
	},
	// DeepSeek-Coder (v1 and V2): <｜fim▁begin｜>prefix<｜fim▁hole｜>suffix<｜fim▁end｜>,
	// with FULLWIDTH VERTICAL LINE (U+FF5C) and LOWER ONE EIGHTH BLOCK
	// (U+2581), not "|" and "_". Sources: the "Code Insertion" examples of
	// https://github.com/deepseek-ai/DeepSeek-Coder (README.md, with
	// deepseek-coder-6.7b-base) and
	// https://github.com/deepseek-ai/DeepSeek-Coder-V2 (README.md, with
	// DeepSeek-Coder-V2-Lite-Base); llama.cpp's src/llama-vocab.cpp FIM
	// tables ("<｜fim▁begin｜>" // DeepSeek, "<｜fim▁hole｜>", "<｜fim▁end｜>").
	// The end of sequence is <｜end▁of▁sentence｜> (the models'
	// tokenizer_config.json eos_token; Continue's deepseekFimTemplate
	// stops at it too). In llama.cpp's models/ggml-vocab-deepseek-coder.gguf
	// (DeepSeek-Coder v1's vocabulary) the four are the single tokens
	// 32016, 32015, 32017 and 32014.
	{
		Name:  "deepseek-coder",
		FIM:   FIM{Prefix: "<｜fim▁begin｜>", Suffix: "<｜fim▁hole｜>", Middle: "<｜fim▁end｜>"},
		Stops: []string{"<｜end▁of▁sentence｜>"},
	},
	// Qwen2.5-Coder: <|fim_prefix|>prefix<|fim_suffix|>suffix<|fim_middle|>.
	// Source: https://github.com/QwenLM/Qwen2.5-Coder
	// examples/Qwen2.5-Coder-fim.py (Qwen/Qwen2.5-Coder-32B), whose
	// eos_token_ids are 151643, 151645 and 151659-151664: in the models'
	// tokenizer_config.json added_tokens_decoder, <|endoftext|>,
	// <|im_end|>, <|fim_prefix|>, <|fim_middle|>, <|fim_suffix|>,
	// <|fim_pad|>, <|repo_name|> and <|file_sep|>: the Stops. llama.cpp's
	// src/llama-vocab.cpp FIM tables list the same markers
	// ("<|fim_prefix|>" // Qwen) and make <|fim_pad|>, <|repo_name|> and
	// <|file_sep|> end generation.
	{
		Name: "qwen2.5-coder",
		FIM:  FIM{Prefix: "<|fim_prefix|>", Suffix: "<|fim_suffix|>", Middle: "<|fim_middle|>"},
		Stops: []string{"<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>",
			"<|im_end|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"},
	},
	// Codestral (22B): suffix first, [SUFFIX]suffix[PREFIX]prefix, and the
	// model continues the prefix; there is no middle marker. Source:
	// mistral-common, the reference tokenizer, whose encode_fim gives
	// "<s>[SUFFIX]return▁a▁+▁b[PREFIX]▁def▁f(" for prompt "def f(" and
	// suffix "return a + b" (its FIM tokenizer test;
	// mistralai/cookbook concept-deep-dive/tokenization/chat_templates.md:
	// FIM "<s>[SUFFIX]suffix[PREFIX] prefix"); Continue's
	// codestralFimTemplate "[SUFFIX]{{{suffix}}}[PREFIX]{{{prefix}}}".
	// The BOS <s> is left out on purpose: llama.cpp (and so Ollama) and
	// vLLM add BOS to a completion prompt themselves when the model's
	// tokenizer asks for it, as Mistral's does, so writing it would give
	// two (llama.cpp warns: "the prompt also starts with a BOS token. So
	// now the final prompt starts with 2 BOS tokens"). An older version of
	// Continue's template began with "<s>"; the current one does not, and
	// Mistral's own FIM API takes prompt and suffix apart. The "▁" before
	// the prefix is SentencePiece's dummy prefix, which llama.cpp's
	// SentencePiece tokenizer adds to text after a special token itself
	// (src/llama-vocab.cpp: "prefix with space if previous is special",
	// when the model's add_space_prefix is set, as SentencePiece's
	// add_dummy_prefix is for Mistral's tokenizer), so no space is written
	// either: "[PREFIX] def" would read as two spaces there. Ollama's
	// docs/template.md does write one ("[SUFFIX]{{ .Suffix }}[PREFIX]
	// {{ .Prompt }}"); which of the two a given Ollama version's tokenizer
	// wants was not checked. Stops: </s> (the end of sequence) and the
	// markers Continue stops at.
	{
		Name:  "codestral",
		FIM:   FIM{Prefix: "[PREFIX]", Suffix: "[SUFFIX]", SuffixFirst: true},
		Stops: []string{"</s>", "[PREFIX]", "[SUFFIX]"},
	},
}

// FIMPresets returns the presets, in a fixed order. They are copies: the
// caller may change them.
func FIMPresets() []FIMPreset {
	out := make([]FIMPreset, len(fimPresets))
	for i, p := range fimPresets {
		out[i] = p.clone()
	}
	return out
}

// FIMPresetNamed returns the preset called name (case-insensitive).
func FIMPresetNamed(name string) (FIMPreset, bool) {
	for _, p := range fimPresets {
		if strings.EqualFold(p.Name, name) {
			return p.clone(), true
		}
	}
	return FIMPreset{}, false
}

func (p FIMPreset) clone() FIMPreset {
	p.Stops = slices.Clone(p.Stops)
	return p
}

// FIMPresetForModel recognises a fill-in-the-middle model family from a
// model's name as servers report it: Ollama ("qwen2.5-coder:7b",
// "codellama:7b-code"), Hugging Face ("Qwen/Qwen2.5-Coder-7B",
// "codellama/CodeLlama-7b-hf"), llama.cpp (the model file's path,
// "/models/qwen2.5-coder-1.5b-q8_0.gguf") and LM Studio
// ("qwen2.5-coder-7b-instruct", "lmstudio-community/…-GGUF"). It goes by
// the name alone, so a name that does not say which variant it is counts
// as the family's FIM-capable one, while a name that says "instruct" or
// "chat" is not recognised (Codestral apart, one model for both). Ollama's
// untagged "qwen2.5-coder:7b", "deepseek-coder:6.7b" and "codellama:7b" are
// in fact instruct weights (Ollama's own qwen2.5-coder template does
// fill-in-the-middle with them). Choosing a preset by name
// (FIMPresetNamed) is the way to use one with a model not recognised.
//
// Variants recognised and not:
//   - Qwen2.5-Coder: base models only; a name with "instruct" or "chat" is
//     not recognised. Qwen documents fill-in-the-middle with the base
//     models (examples/Qwen2.5-Coder-fim.py uses Qwen2.5-Coder-32B) and not
//     with the instruct ones. Qwen3-Coder is not recognised: its models are
//     all instruct, and its README does fill-in-the-middle inside the chat
//     template (a user message holding the FIM string), not as a raw
//     prompt; "qwen2.5-coder" can still be chosen by name for it. Plain
//     Qwen2.5 ("qwen2.5:7b") has the tokens but was not trained to use them.
//   - DeepSeek-Coder (v1, V2): base models only ("instruct" or "chat" in the
//     name is not recognised); both READMEs show code insertion with the
//     base models only.
//   - StarCoder, StarCoderBase, StarCoderPlus, StarCoder2: yes;
//     StarCoder2-Instruct (a chat fine-tune) no. SantaCoder no: its FIM
//     markers are spelled differently.
//   - Code Llama: 7B and 13B base models only; not 34B or 70B, not the
//     Python variants, and not Instruct. Meta's sources disagree about
//     Instruct: the github.com/meta-llama/codellama README ("Code
//     Infilling") says "Code Llama and Code Llama - Instruct 7B and 13B
//     models are capable of filling in code", but Meta's model card
//     (https://www.llama.com/docs/model-cards-and-prompt-formats/meta-code-llama/)
//     says "Infilling is only available in the 7B and 13B base models—not
//     in the Python, Instruct, 34B, or 70B models", and so does Ollama's
//     docs/template.md ("all instruct and Python fine-tuned models do not
//     support fill-in-middle"); the narrower statement wins here. A name
//     without a size counts as 7B (Ollama's codellama:latest).
//   - Codestral: Codestral-22B (instruct and FIM in one model) and the API's
//     codestral-latest / codestral-2501; not Mamba-Codestral, which has no
//     FIM (Mistral's answer on
//     https://huggingface.co/mistralai/Mamba-Codestral-7B-v0.1/discussions/2).
func FIMPresetForModel(model string) (FIMPreset, bool) {
	name := normalizeModelName(model)
	if name == "" {
		return FIMPreset{}, false
	}
	words := strings.FieldsFunc(name, func(r rune) bool { return strings.ContainsRune("-:@.", r) })
	has := func(want ...string) bool {
		for _, w := range words {
			if slices.Contains(want, w) {
				return true
			}
		}
		return false
	}
	chat := has("instruct", "chat")
	var preset string
	switch {
	case strings.Contains(name, "codestral"):
		if !strings.Contains(name, "mamba") {
			preset = "codestral"
		}
	case strings.Contains(name, "deepseek-coder"):
		if !chat {
			preset = "deepseek-coder"
		}
	case strings.Contains(name, "qwen2.5-coder"):
		if !chat {
			preset = "qwen2.5-coder"
		}
	case strings.Contains(name, "starcoder"):
		if !chat {
			preset = "starcoder"
		}
	case strings.Contains(name, "codellama"):
		if !chat && !has("python", "34b", "70b") {
			preset = "codellama"
		}
	}
	if preset == "" {
		return FIMPreset{}, false
	}
	return FIMPresetNamed(preset)
}

// normalizeModelName lowercases a model's name and keeps its last path
// element without a .gguf extension, with "_" and spaces read as "-":
// "/models/Qwen2.5_Coder-7B.Q4_K_M.gguf" is "qwen2.5-coder-7b.q4-k-m",
// "Qwen/Qwen2.5-Coder-7B" is "qwen2.5-coder-7b", "qwen2.5-coder:7b"
// stays as it is, and "code llama" is "codellama".
func normalizeModelName(model string) string {
	s := strings.ToLower(strings.TrimSpace(model))
	s = strings.ReplaceAll(s, `\`, "/")
	s = strings.TrimRight(s, "/")
	s = path.Base(s)
	if s == "." || s == "/" {
		return ""
	}
	s = strings.TrimSuffix(s, ".gguf")
	s = strings.NewReplacer("_", "-", " ", "-").Replace(s)
	s = strings.ReplaceAll(s, "code-llama", "codellama")
	return s
}
