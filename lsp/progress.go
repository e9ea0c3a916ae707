package lsp

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

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
	if _, err := s.conn.Call(ctx, "window/workDoneProgress/create", map[string]any{"token": token}, nil); err != nil {
		s.log.Debug("workDoneProgress/create failed", zap.Error(err))
		return nil
	}
	p := &progress{s: s, token: token}
	p.send(map[string]any{"kind": "begin", "title": title, "cancellable": true, "message": message})
	return p
}

func (p *progress) Report(message string) {
	if p == nil {
		return
	}
	p.send(map[string]any{"kind": "report", "message": message})
}

func (p *progress) End(message string) {
	if p == nil {
		return
	}
	p.send(map[string]any{"kind": "end", "message": message})
}

func (p *progress) Token() string {
	if p == nil {
		return ""
	}
	return p.token
}

func (p *progress) send(value map[string]any) {
	if err := p.s.conn.Notify(p.s.ctx, "$/progress", map[string]any{"token": p.token, "value": value}); err != nil {
		p.s.log.Debug("$/progress failed", zap.Error(err))
	}
}

// tokenKey normalises a progress token (a string or an integer) to the
// string genls created it as.
func tokenKey(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}
