package lsp

import (
	"encoding/json"

	"go.lsp.dev/jsonrpc2"

	"github.com/genls/genls/commands"
)

// Code action kinds. Each action has its own kind so clients that pick an
// action by kind (eglot, Neovim's filter) find exactly one.
const (
	kindGenerate = "refactor.genls.generate"
	kindContinue = "refactor.genls.continue"
	kindCancel   = "refactor.genls.cancel"
)

type codeAction struct {
	Title   string  `json:"title"`
	Kind    string  `json:"kind"`
	Command command `json:"command"`
}

type command struct {
	Title     string `json:"title"`
	Command   string `json:"command"`
	Arguments []any  `json:"arguments,omitempty"`
}

// codeAction offers Generate on any range, Generate here at a cursor, and
// Cancel generation while one runs in the document.
func (s *server) codeAction(params json.RawMessage) (any, error) {
	var p struct {
		TextDocument struct {
			URI string `json:"uri"`
		} `json:"textDocument"`
		Range   Range `json:"range"`
		Context struct {
			Only []string `json:"only"`
		} `json:"context"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, err.Error())
	}
	uri := p.TextDocument.URI
	actions := []codeAction{}
	add := func(title, kind, cmd string, arg any) {
		if !wanted(kind, p.Context.Only) {
			return
		}
		c := command{Title: title, Command: cmd}
		if arg != nil {
			c.Arguments = []any{arg}
		}
		actions = append(actions, codeAction{Title: title, Kind: kind, Command: c})
	}
	add("Generate", kindGenerate, commands.Generate, commands.GenerateArgs{URI: uri, Range: p.Range})
	if p.Range.Start == p.Range.End {
		add("Generate here", kindContinue, commands.Generate, commands.GenerateArgs{URI: uri, Range: p.Range, Here: true})
	}
	if s.sessions.Running(uri) {
		add("Cancel generation", kindCancel, commands.Cancel, commands.CancelArgs{URI: uri})
	}
	return actions, nil
}

// wanted applies the client's "only" filter: a kind matches a requested kind
// equal to it or a parent of it ("refactor" matches "refactor.genls.cancel").
func wanted(kind string, only []string) bool {
	if len(only) == 0 {
		return true
	}
	for _, o := range only {
		if kind == o || len(kind) > len(o) && kind[:len(o)] == o && kind[len(o)] == '.' {
			return true
		}
	}
	return false
}
