package lsp

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"go.lsp.dev/protocol"
	"go.uber.org/zap"
)

// progress reports one generation through $/progress. A nil *progress is
// valid and does nothing, so callers never ask whether the client supports
// progress.
type progress struct {
	s     *server
	token string
}

var progressSeq atomic.Int64

// beginProgress creates a cancellable progress token and sends begin, or
// returns nil when the client does not support work-done progress.
func (s *server) beginProgress(ctx context.Context, title, message string) *progress {
	s.mu.Lock()
	supported := s.caps.progress
	s.mu.Unlock()
	if !supported {
		return nil
	}
	token := fmt.Sprintf("genls-%d", progressSeq.Add(1))
	if _, err := s.conn.Call(ctx, "window/workDoneProgress/create", &protocol.WorkDoneProgressCreateParams{Token: protocol.String(token)}, nil); err != nil {
		s.log.Debug("workDoneProgress/create failed", zap.Error(err))
		return nil
	}
	p := &progress{s: s, token: token}
	p.send(&protocol.WorkDoneProgressBegin{Kind: "begin", Title: title, Cancellable: new(true), Message: &message})
	return p
}

func (p *progress) Report(message string) {
	if p == nil {
		return
	}
	p.send(&protocol.WorkDoneProgressReport{Kind: "report", Message: &message})
}

func (p *progress) End(message string) {
	if p == nil {
		return
	}
	p.send(&protocol.WorkDoneProgressEnd{Kind: "end", Message: &message})
}

func (p *progress) Token() string {
	if p == nil {
		return ""
	}
	return p.token
}

// send sends one $/progress value: a WorkDoneProgressBegin, Report or End.
func (p *progress) send(value any) {
	raw, err := protocol.Marshal(value)
	if err == nil {
		err = p.s.conn.Notify(p.s.ctx, "$/progress", &protocol.ProgressParams{Token: protocol.String(p.token), Value: raw})
	}
	if err != nil {
		p.s.log.Debug("$/progress failed", zap.Error(err))
	}
}

// tokenKey is a progress token as the string genls created it as; an
// integer token is spelled in decimal.
func tokenKey(token protocol.ProgressToken) string {
	switch t := token.(type) {
	case protocol.String:
		return string(t)
	case protocol.Integer:
		return strconv.Itoa(int(t))
	}
	return ""
}
