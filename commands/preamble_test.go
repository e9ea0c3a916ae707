package commands

import (
	"strings"
	"testing"
)

func TestPreambleStripper(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"preamble before a fence", []string{"Here is the code:\n", "```go\n", "x\n```"}, "```go\nx\n```"},
		{"split anywhere", []string{"Here", " it is:", "\n\n", "``", "`\nx"}, "```\nx"},
		{"no fence after", []string{"Note:\n", "x = 1\n"}, "Note:\nx = 1\n"},
		{"code ending in a colon", []string{"def f():\n", "    return 1\n"}, "def f():\n    return 1\n"},
		{"starts with a fence", []string{"```\n", "x\n```"}, "```\nx\n```"},
		{"no line break at all", []string{"just text:"}, "just text:"},
		{"held fence start at the end", []string{"Code:\n", "``"}, "Code:\n``"},
	}
	for _, tt := range tests {
		var p preambleStripper
		var b strings.Builder
		for _, s := range tt.in {
			b.WriteString(p.Push(s))
		}
		b.WriteString(p.Finish())
		if got := b.String(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestBuildPromptModes(t *testing.T) {
	in := PromptInput{Selection: "a\r\nb\r\n", Prefix: "pre", Suffix: "suf", Language: "go"}
	fim := FIM{Prefix: "<P>", Suffix: "<S>", Middle: "<M>"}
	tests := []struct {
		name        string
		mode        Mode
		instruction string
		fim         FIM
		want        string
	}{
		{"insert with an instruction", ModeInsert, "Do it.", FIM{}, "Do it.\n\na\r\nb\r\n"},
		{"here with an instruction", ModeHere, "Do it.", FIM{}, "Do it.\n\npre"},
		{"FIM has no room for one", ModeHere, "Do it.", fim, "<P>pre<S>suf<M>"},
		{"rewrite", ModeRewrite, "Do it.", FIM{}, "Do it.\nReply with the rewritten text only.\n\n```go\na\nb\n```\n"},
		{"rewrite without instruction", ModeRewrite, "", FIM{}, defaultRewriteInstruction + "\nReply with the rewritten text only.\n\n```go\na\nb\n```\n"},
	}
	for _, tt := range tests {
		in := in
		in.Mode, in.Instruction = tt.mode, tt.instruction
		got, err := BuildPrompt(nil, tt.fim, in)
		if err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	tmpl, _ := ParseTemplate("{{.Mode}}:{{.Instruction}}")
	if got, _ := BuildPrompt(tmpl, FIM{}, PromptInput{Mode: ModeRewrite, Instruction: "i"}); got != "rewrite:i" {
		t.Errorf("template: %q", got)
	}
	for _, s := range []string{"", "insert", "here", "rewrite"} {
		if _, err := ParseMode(s); err != nil {
			t.Errorf("ParseMode(%q): %v", s, err)
		}
	}
	if _, err := ParseMode("sideways"); err == nil {
		t.Errorf("ParseMode accepted sideways")
	}
}
