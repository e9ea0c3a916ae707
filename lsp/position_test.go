package lsp

import (
	"fmt"
	"testing"

	"go.lsp.dev/protocol"
)

// Positions pinned by hand: the server's conversion and the fake editor's
// own must both agree with these columns, counted on paper.
func TestPositionsPinned(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text             string
		off              int // byte offset
		line             uint32
		utf8, utf16, u32 uint32
	}{
		{"a😀b", 5, 0, 5, 3, 2},          // emoji: 4 bytes, 2 UTF-16 units, 1 code point
		{"a😀b", 6, 0, 6, 4, 3},          // after the b
		{"日本語x", 6, 0, 6, 2, 2},         // CJK: 3 bytes, 1 unit each
		{"e\u0301x", 3, 0, 3, 2, 2},     // e + combining acute: two code points
		{"x\r\ny😀z", 3, 1, 0, 0, 0},     // CRLF is one line break
		{"x\r\ny😀z", 8, 1, 5, 3, 2},     // after the emoji on line 1
		{"a\rb\nc\r\nd", 2, 1, 0, 0, 0}, // a lone CR ends a line
		{"a\rb\nc\r\nd", 4, 2, 0, 0, 0},
		{"a\rb\nc\r\nd", 7, 3, 0, 0, 0},
		{"😀\n😀😀", 13, 1, 8, 4, 2},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			enc  encoding
			char uint32
		}{{encUTF8, tt.utf8}, {encUTF16, tt.utf16}, {encUTF32, tt.u32}} {
			name := fmt.Sprintf("%q@%d/%s", tt.text, tt.off, c.enc)
			want := protocol.Position{Line: tt.line, Character: c.char}
			if got := c.enc.position(tt.text, tt.off); got != want {
				t.Errorf("%s: server position = %v, want %v", name, got, want)
			}
			if got := c.enc.offset(tt.text, want); got != tt.off {
				t.Errorf("%s: server offset = %d, want %d", name, got, tt.off)
			}
			if got := fakePosition(tt.text, tt.off, c.enc); got != want {
				t.Errorf("%s: fake editor position = %v, want %v", name, got, want)
			}
			if got := fakeOffset(tt.text, want, c.enc); got != tt.off {
				t.Errorf("%s: fake editor offset = %d, want %d", name, got, tt.off)
			}
		}
	}
}
