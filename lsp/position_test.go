package lsp

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

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

// The server's position of every offset agrees with the fake editor's own
// conversion, in every encoding, for texts of any line breaks; offsets
// inside a character or between the CR and LF of a CRLF name no position
// and are left out.
func FuzzPosition(f *testing.F) {
	for _, s := range []string{"a\nb", "a\r\nb\r\n", "a\rb\r\nc\nd", "😀\r\n日本\r", "\r\n\r\n", "x\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			return
		}
		for off := 0; off <= len(text); off++ {
			if off < len(text) && !utf8.RuneStart(text[off]) || off > 0 && off < len(text) && text[off-1] == '\r' && text[off] == '\n' {
				continue
			}
			for _, enc := range []encoding{encUTF8, encUTF16, encUTF32} {
				want := fakePosition(text, off, enc)
				if got := enc.position(text, off); got != want {
					t.Fatalf("%q@%d/%s: position %v, fake editor %v", text, off, enc, got, want)
				}
				if got := enc.offset(text, want); got != off {
					t.Fatalf("%q@%d/%s: offset of %v = %d", text, off, enc, want, got)
				}
			}
		}
	})
}

// BenchmarkPosition: the position of the end of a 4 MiB document of
// 40-byte lines, LF and CRLF (the marks compute two per generation ten
// times a second while one streams), and the offset of its last line's
// position (every request that names a position).
func BenchmarkPosition(b *testing.B) {
	for _, eol := range []string{"\n", "\r\n"} {
		text := strings.Repeat(strings.Repeat("x", 39)+eol, 4<<20/40)
		last := encUTF16.position(text, len(text)-1)
		b.Run(fmt.Sprintf("position/eol=%q", eol), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				encUTF16.position(text, len(text)-1)
			}
		})
		b.Run(fmt.Sprintf("offset/eol=%q", eol), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				encUTF16.offset(text, last)
			}
		})
	}
}
