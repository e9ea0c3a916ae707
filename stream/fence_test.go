package stream

import (
	"strings"
	"testing"
)

func TestFenceStripper(t *testing.T) {
	tests := []struct {
		name   string
		pieces []string
		want   string
	}{
		{"no fence", []string{"x = 1", "\ny = 2"}, "x = 1\ny = 2"},
		{"fence with language", []string{"```go\n", "x := 1\n", "```"}, "x := 1\n"},
		{"fence split everywhere", []string{"`", "``", "py", "thon", "\nprint(", "1)\n`", "`", "`\n"}, "print(1)\n"},
		{"fence without closing", []string{"```\n", "a\nb"}, "a\nb"},
		{"leading blank line", []string{"\n```js\n", "f()\n```"}, "f()\n"},
		{"backticks inside code kept", []string{"```md\n", "use ``` to fence\n", "```\n"}, "use ``` to fence\n"},
		{"text after the closing fence kept", []string{"```\n", "a\n", "```\n", "More text"}, "a\n```\nMore text"},
		{"inline backticks are not a fence", []string{"``x``", " y"}, "``x`` y"},
		{"short reply", []string{"`"}, "`"},
		{"text before a fence is not stripped", []string{"Here:\n```\na\n```"}, "Here:\n```\na\n```"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f FenceStripper
			var got strings.Builder
			for _, p := range tt.pieces {
				got.WriteString(f.Push(p))
			}
			got.WriteString(f.Finish())
			if got.String() != tt.want {
				t.Errorf("got %q, want %q", got.String(), tt.want)
			}
		})
	}
}

// Code inside the fence is released as it arrives, not at the end.
func TestFenceStripperStreams(t *testing.T) {
	var f FenceStripper
	if got := f.Push("```go\nfunc main() {\n"); got != "func main() {\n" {
		t.Errorf("first push released %q", got)
	}
	if got := f.Push("\tprintln()"); got != "\tprintln()" {
		t.Errorf("second push released %q", got)
	}
}
