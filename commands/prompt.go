package commands

import (
	"fmt"
	"strings"
	"text/template"
)

// Mode is what a generation does with the document.
type Mode string

const (
	// ModeInsert writes after the selection (or the cursor's line), which
	// is the prompt.
	ModeInsert Mode = "insert"
	// ModeHere continues the document at the cursor.
	ModeHere Mode = "here"
	// ModeRewrite writes a new version of the selection after it; the
	// original goes when the rewrite is accepted.
	ModeRewrite Mode = "rewrite"
)

// ParseMode reads a mode's name; "" is ModeInsert.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeInsert, nil
	case ModeInsert, ModeHere, ModeRewrite:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q (want insert, here or rewrite)", s)
}

// PromptInput is what a prompt template can use.
type PromptInput struct {
	// Selection is the selected text (or the cursor's line for Generate
	// without a selection); empty for Generate here.
	Selection string
	// Prefix and Suffix are the document text before and after the
	// insertion point.
	Prefix, Suffix string
	Language       string
	FileName       string
	// Instruction is what the user asked for ("add memoization"), if
	// anything.
	Instruction string
	// Mode is the generation's mode, for templates that serve several.
	Mode Mode
}

// FIM names a model's fill-in-the-middle tokens, e.g. StarCoder's
// <fim_prefix>, <fim_suffix>, <fim_middle>. Each is written exactly as
// given, spaces included (CodeLlama's " <SUF>").
type FIM struct {
	Prefix, Suffix, Middle string
	// SuffixFirst puts the suffix part before the prefix part (Codestral:
	// [SUFFIX]…[PREFIX]…); Middle, if any, still goes last.
	SuffixFirst bool
}

// Enabled reports whether the tokens make a prompt: Prefix and Suffix set,
// and Middle set unless SuffixFirst (a suffix-first prompt ends with the
// prefix, which the model continues).
func (f FIM) Enabled() bool {
	return f.Prefix != "" && f.Suffix != "" && (f.Middle != "" || f.SuffixFirst)
}

// Wrap returns the fill-in-the-middle prompt for the text before (prefix)
// and after (suffix) the cursor: Prefix+prefix+Suffix+suffix+Middle, or
// Suffix+suffix+Prefix+prefix+Middle when SuffixFirst.
func (f FIM) Wrap(prefix, suffix string) string {
	if f.SuffixFirst {
		return f.Suffix + suffix + f.Prefix + prefix + f.Middle
	}
	return f.Prefix + prefix + f.Suffix + suffix + f.Middle
}

// DefaultSystemPrompt asks chat models for text to insert, not a
// conversation about it.
const DefaultSystemPrompt = "You are a code and text completion engine inside an editor. " +
	"Reply only with the text to insert after the user's text: no explanations, no repetition of the input, no markdown fences."

// ParseTemplate checks a prompt template; "" means none.
func ParseTemplate(src string) (*template.Template, error) {
	if src == "" {
		return nil, nil
	}
	return template.New("prompt").Option("missingkey=error").Parse(src)
}

// DefaultRewriteSystemPrompt asks chat models for the rewritten text alone.
const DefaultRewriteSystemPrompt = "You rewrite code and text inside an editor. " +
	"Reply only with the complete rewritten text, in the same language and style: no explanations, no markdown fences."

// defaultRewriteInstruction is a rewrite's instruction when the user gave
// none.
const defaultRewriteInstruction = "Improve this code: make it clearer and correct, keeping its behaviour."

// BuildPrompt returns the prompt for in (whose Mode says what it is for). A
// template, when set, decides everything. Otherwise a selection is the
// prompt as it is; without one the prompt is the text before the cursor,
// wrapped in fill-in-the-middle tokens (with the text after it) when the
// model has them. An instruction goes first, on its own paragraph (FIM
// prompts have no room for one). A rewrite asks for the selection
// rewritten as instructed.
func BuildPrompt(tmpl *template.Template, fim FIM, in PromptInput) (string, error) {
	if tmpl != nil {
		var b strings.Builder
		if err := tmpl.Execute(&b, in); err != nil {
			return "", fmt.Errorf("prompt.template: %w", err)
		}
		return b.String(), nil
	}
	instructed := func(text string) string {
		if in.Instruction == "" {
			return text
		}
		return in.Instruction + "\n\n" + text
	}
	switch in.Mode {
	case ModeRewrite:
		instruction := in.Instruction
		if instruction == "" {
			instruction = defaultRewriteInstruction
		}
		// One kind of line break in the prompt; the reply's are written as
		// the document's anyway.
		selection := strings.ReplaceAll(strings.TrimRight(in.Selection, "\r\n"), "\r\n", "\n")
		return fmt.Sprintf("%s\nReply with the rewritten text only.\n\n```%s\n%s\n```\n", instruction, in.Language, selection), nil
	case ModeHere:
		if fim.Enabled() {
			return fim.Wrap(in.Prefix, in.Suffix), nil
		}
		return instructed(in.Prefix), nil
	}
	return instructed(in.Selection), nil
}
