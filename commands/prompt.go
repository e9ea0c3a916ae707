package commands

import (
	"fmt"
	"strings"
	"text/template"
)

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
}

// FIM names a model's fill-in-the-middle tokens, e.g. StarCoder's
// <fim_prefix>, <fim_suffix>, <fim_middle>.
type FIM struct {
	Prefix, Suffix, Middle string
}

// Enabled reports whether all three tokens are set.
func (f FIM) Enabled() bool { return f.Prefix != "" && f.Suffix != "" && f.Middle != "" }

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

// BuildPrompt returns the prompt for in. A template, when set, decides
// everything. Otherwise a selection is the prompt as it is; without one the
// prompt is the text before the cursor, wrapped in fill-in-the-middle tokens
// (with the text after it) when the model has them.
func BuildPrompt(tmpl *template.Template, fim FIM, in PromptInput, here bool) (string, error) {
	if tmpl != nil {
		var b strings.Builder
		if err := tmpl.Execute(&b, in); err != nil {
			return "", fmt.Errorf("prompt.template: %w", err)
		}
		return b.String(), nil
	}
	if !here {
		return in.Selection, nil
	}
	if fim.Enabled() {
		return fim.Prefix + in.Prefix + fim.Suffix + in.Suffix + fim.Middle, nil
	}
	return in.Prefix, nil
}
