package lsp

import (
	"encoding/json"
	"strings"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"

	"github.com/genls/genls/commands"
)

// Code action kinds. Each action has its own kind so clients that pick an
// action by kind (eglot, Neovim's filter) find exactly one. The kinds place
// them in VS Code's Ctrl+. menu, which groups actions by kind: Accept,
// Discard and Regenerate resolve the generation's diagnostic, so they are
// quick fixes (the first group); Generate is a rewrite (the "Rewrite"
// group, above "More Actions…", where a kind VS Code does not know goes).
const (
	kindGenerate   protocol.CodeActionKind = "refactor.rewrite.genls.generate"
	kindContinue   protocol.CodeActionKind = "refactor.rewrite.genls.continue"
	kindCancel     protocol.CodeActionKind = "refactor.rewrite.genls.cancel"
	kindRewrite    protocol.CodeActionKind = "refactor.rewrite.genls.rewrite"
	kindAction     protocol.CodeActionKind = "refactor.rewrite.genls.action"
	kindAccept     protocol.CodeActionKind = "quickfix.genls.accept"
	kindDiscard    protocol.CodeActionKind = "quickfix.genls.discard"
	kindRegenerate protocol.CodeActionKind = "quickfix.genls.regenerate"
)

// codeAction offers, first, Accept, Discard and Regenerate for a
// generation the range touches, then Generate on any range, Generate here
// at a cursor, and Cancel generation while one runs in the document.
func (s *server) codeAction(params json.RawMessage) (any, error) {
	// What genls reads, not protocol.CodeActionParams: that canonicalises
	// the URI (see didOpen) and decodes context.diagnostics, which genls
	// ignores, failing the request on one it cannot read (another
	// extension's code 1.5 or 2^32, say).
	var p struct {
		TextDocument struct {
			URI string `json:"uri"`
		} `json:"textDocument"`
		Range   protocol.Range `json:"range"`
		Context struct {
			Only []protocol.CodeActionKind `json:"only"`
		} `json:"context"`
	}
	if err := protocol.Unmarshal(params, &p); err != nil {
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, err.Error())
	}
	uri := p.TextDocument.URI
	actions := []protocol.CodeAction{}
	for _, a := range s.reviewActions(uri, p.Range) {
		if wanted(*a.Kind, p.Context.Only) {
			actions = append(actions, a)
		}
	}
	var err error
	add := func(title string, kind protocol.CodeActionKind, cmd string, arg any) {
		if err != nil || !wanted(kind, p.Context.Only) {
			return
		}
		// The arguments are commands' types, tagged for encoding/json.
		var raw []byte
		if raw, err = json.Marshal(arg); err == nil {
			actions = append(actions, protocol.CodeAction{Title: title, Kind: &kind,
				Command: protocol.Command{Title: title, Command: cmd, Arguments: []protocol.LSPAny{raw}}})
		}
	}
	selection := p.Range.Start != p.Range.End
	add("Generate", kindGenerate, cmdGenerate, generateArgs{URI: uri, Range: p.Range})
	if !selection {
		add("Generate here", kindContinue, cmdGenerate, generateArgs{URI: uri, Range: p.Range, Here: true})
	} else {
		add("Rewrite", kindRewrite, cmdGenerate, generateArgs{URI: uri, Range: p.Range, Mode: string(commands.ModeRewrite)})
	}
	// The named actions that fit the document's language and the range:
	// a rewrite needs a selection, "here" a bare cursor.
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	languageID := s.docs.languageOf(uri)
	for _, a := range cfg.actions {
		if a.offered(languageID) && (a.mode != commands.ModeRewrite || selection) && (a.mode != commands.ModeHere || !selection) {
			add(a.title, kindAction, cmdGenerate, generateArgs{URI: uri, Range: p.Range, Action: a.title})
		}
	}
	if s.sessions.Running(uri) {
		add("Cancel generation", kindCancel, cmdCancel, cancelArgs{URI: uri})
	}
	if err != nil {
		return nil, jsonrpc2.NewError(jsonrpc2.InternalError, err.Error())
	}
	return actions, nil
}

// wanted applies the client's "only" filter: a kind matches a requested kind
// equal to it or a parent of it ("refactor" matches "refactor.genls.cancel").
func wanted(kind protocol.CodeActionKind, only []protocol.CodeActionKind) bool {
	if len(only) == 0 {
		return true
	}
	for _, o := range only {
		if kind == o || strings.HasPrefix(string(kind), string(o)+".") {
			return true
		}
	}
	return false
}
