package lsp

import (
	"encoding/json"
	"testing"

	"go.lsp.dev/protocol"
	"go.uber.org/zap"
)

// The per-edit payloads of the hot path, one at a time: the server encodes
// one workspace/applyEdit, decodes its answer, and handles the didChange
// that echoes it. The text is eight tokens, as an edit carries at 1 ms per
// edit.

const benchEditText = " tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7"

// BenchmarkEncodeApplyEdit builds one versioned applyEdit's params and
// encodes them with the connection's codec.
func BenchmarkEncodeApplyEdit(b *testing.B) {
	b.ReportAllocs()
	pos := protocol.Position{Line: 41, Character: 17}
	for b.Loop() {
		if _, err := (protocolCodec{}).Marshal(insertEdit(uri, 1234, true, pos, benchEditText)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeApplyEditValue is BenchmarkEncodeApplyEdit with the params
// passed by value: the protocol package's generated encoders have pointer
// receivers, so a value goes through reflection.
func BenchmarkEncodeApplyEditValue(b *testing.B) {
	b.ReportAllocs()
	pos := protocol.Position{Line: 41, Character: 17}
	for b.Loop() {
		if _, err := (protocolCodec{}).Marshal(*insertEdit(uri, 1234, true, pos, benchEditText)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeApplyEditResult decodes the editor's answer to one edit.
func BenchmarkDecodeApplyEditResult(b *testing.B) {
	b.ReportAllocs()
	data := []byte(`{"applied":true}`)
	for b.Loop() {
		var res protocol.ApplyWorkspaceEditResult
		if err := (protocolCodec{}).Unmarshal(data, &res); err != nil || !res.Applied {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeDidChange decodes one didChange's params as the server does
// (protocol.Unmarshal), and with encoding/json.
func BenchmarkDecodeDidChange(b *testing.B) {
	for _, c := range []struct {
		name   string
		decode func([]byte, any) error
	}{{"protocol", protocol.Unmarshal}, {"encoding-json", json.Unmarshal}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			params := benchDidChange(b)
			for b.Loop() {
				var p didChangeParams
				if err := c.decode(params, &p); err != nil || len(p.ContentChanges) != 1 {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDidChange handles one didChange as an editor sends it for an
// applied edit: decoding it and applying it to a one-line document (the
// change replaces the text with itself, so the document stays the same).
func BenchmarkDidChange(b *testing.B) {
	b.ReportAllocs()
	s := &server{log: zap.NewNop(), docs: newStore(), caps: clientCaps{encoding: encUTF16}}
	s.docs.open(uri, "go", benchEditText, 1)
	params := benchDidChange(b)
	for b.Loop() {
		if err := s.didChange(params); err != nil {
			b.Fatal(err)
		}
	}
}

// benchDidChange is a didChange's params as an editor sends them for an
// applied edit of benchEditText, replacing the whole one-line document.
func benchDidChange(b *testing.B) []byte {
	params, err := json.Marshal(map[string]any{
		"textDocument": map[string]any{"uri": uri, "version": 1235},
		"contentChanges": []any{map[string]any{
			"range":       protocol.Range{End: protocol.Position{Character: uint32(len(benchEditText))}},
			"rangeLength": len(benchEditText),
			"text":        benchEditText,
		}},
	})
	if err != nil {
		b.Fatal(err)
	}
	return params
}
