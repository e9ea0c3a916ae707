// Package commands runs generations: it builds the prompt, shapes the
// request for the endpoint's backend (a chat model's system message and
// code fence), joins the stream to a sink that puts text into a document,
// and tracks running sessions so they can be cancelled.
//
// It uses stream for the endpoint and knows nothing of JSON-RPC: lsp
// decodes the editor's requests and supplies the sink.
package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/genls/genls/stream"
)

// Sink receives generated text and puts it into the document.
type Sink interface {
	// Write queues text to be inserted after everything written so far. It
	// does not wait for the editor; it fails once the sink cannot go on
	// (the user edited the generated text, the editor keeps rejecting edits).
	Write(text string) error
	// Close waits until everything written is in the document (bounded) and
	// reports the sink's failure, if any.
	Close(ctx context.Context) error
}

// Progress shows a running generation to the user. Implementations are
// nil-safe, so sessions never ask whether the client supports progress.
type Progress interface {
	Report(message string)
}

// Generation is one genls.generate request, ready to run. How it is sent
// depends on the endpoint's backend: a chat model gets System as its system
// message, and the markdown code fence it wraps its reply in is removed.
type Generation struct {
	Client *stream.Client
	Prompt string
	System string
	Params stream.Parameters
	// Rewrite says the prompt asks for a fenced rewrite of a selection:
	// any model's wrapping fence and a line of preamble before it ("Here
	// is the rewritten code:") are removed.
	Rewrite bool
	// EndWithLineBreak ends non-empty text with a line break if the model
	// did not (a rewrite of whole lines must not join the next line).
	EndWithLineBreak bool
	// Started, if set, is told the backend once it is known.
	Started func(stream.Backend)
}

// request shapes g for backend and says whether the reply's wrapping code
// fence is to be removed: chat models answer in markdown.
func (g Generation) request(backend stream.Backend) (req stream.Request, stripFence bool) {
	req = stream.Request{Prompt: g.Prompt, Params: g.Params}
	if backend == stream.BackendOpenAI {
		req.System = g.System
		return req, true
	}
	return req, g.Rewrite
}

// reportInterval bounds how often progress is reported: often enough to
// look live, rarely enough not to compete with the edits themselves.
const reportInterval = 200 * time.Millisecond

// Run streams g into sink until the stream ends, ctx is cancelled or the sink
// fails. Whatever happens, the text generated so far is written to the sink
// and the sink is closed; the returned error says why the session ended early.
func Run(ctx context.Context, g Generation, sink Sink, progress Progress) (stream.Result, error) {
	backend, err := g.Client.Backend(ctx)
	if err != nil {
		closeErr := sink.Close(context.WithoutCancel(ctx))
		return stream.Result{FinishReason: reasonFor(err)}, errors.Join(err, closeErr)
	}
	if g.Started != nil {
		g.Started(backend)
	}
	req, stripFence := g.request(backend)
	if progress != nil {
		req.OnRetry = func(wait time.Duration, err error) {
			progress.Report(fmt.Sprintf("model is loading, retrying in %.0f s", wait.Seconds()))
		}
	}
	s, err := g.Client.Generate(ctx, req)
	if err != nil {
		closeErr := sink.Close(context.WithoutCancel(ctx))
		return stream.Result{FinishReason: reasonFor(err)}, errors.Join(err, closeErr)
	}
	defer s.Close()

	var fence *stream.FenceStripper
	if stripFence {
		fence = &stream.FenceStripper{}
	}
	var preamble *preambleStripper
	if g.Rewrite {
		preamble = &preambleStripper{}
	}
	var sinkErr error
	last := ""
	write := func(text string) error {
		if text == "" {
			return nil
		}
		last = text
		return sink.Write(text)
	}
	start := time.Now()
	lastReport := start
	for s.Next() {
		text := s.Text()
		if preamble != nil {
			text = preamble.Push(text)
		}
		if fence != nil {
			text = fence.Push(text)
		}
		if text != "" {
			if sinkErr = write(text); sinkErr != nil {
				s.Close()
				for s.Next() { // releases the stream's reader
				}
				break
			}
		}
		if now := time.Now(); now.Sub(lastReport) >= reportInterval && progress != nil {
			lastReport = now
			// The stream counts tokens (special and held-back ones too);
			// pieces of released text may carry several.
			tokens := s.Result().Tokens
			progress.Report(fmt.Sprintf("%d tokens, %.0f tokens/s", tokens, float64(tokens)/now.Sub(start).Seconds()))
		}
	}
	if preamble != nil && sinkErr == nil {
		rest := preamble.Finish()
		if fence != nil {
			rest = fence.Push(rest)
		}
		sinkErr = write(rest)
	}
	if fence != nil && sinkErr == nil {
		sinkErr = write(fence.Finish())
	}
	if g.EndWithLineBreak && sinkErr == nil && last != "" && !strings.HasSuffix(last, "\n") && !strings.HasSuffix(last, "\r") {
		sinkErr = write("\n")
	}
	res := s.Result()
	closeErr := sink.Close(context.WithoutCancel(ctx))
	if sinkErr == nil {
		sinkErr = closeErr
	}
	if sinkErr != nil {
		res.FinishReason = stream.FinishError
		return res, sinkErr
	}
	return res, s.Err()
}

func reasonFor(err error) stream.FinishReason {
	if errors.Is(err, context.Canceled) {
		return stream.FinishCancelled
	}
	return stream.FinishError
}

// Manager tracks running sessions so they can be cancelled by document, by
// progress token, or all at once.
type Manager struct {
	mu       sync.Mutex
	sessions map[*session]struct{}
	wg       sync.WaitGroup
}

type session struct {
	uri    string
	token  string
	cancel context.CancelFunc
}

// Start registers a session for uri (with an optional progress token) and
// returns its context, derived from parent, and end, to call once when the
// session is over. end unregisters the session before it calls report (if
// not nil), so that whoever learns of the end from report (an editor asking
// for code actions when the progress ends) no longer sees it running.
func (m *Manager) Start(parent context.Context, uri string, token string) (ctx context.Context, end func(report func())) {
	ctx, cancel := context.WithCancel(parent)
	s := &session{uri: uri, token: token, cancel: cancel}
	m.mu.Lock()
	if m.sessions == nil {
		m.sessions = map[*session]struct{}{}
	}
	m.sessions[s] = struct{}{}
	m.wg.Add(1)
	m.mu.Unlock()
	return ctx, func(report func()) {
		cancel()
		m.mu.Lock()
		delete(m.sessions, s)
		m.mu.Unlock()
		if report != nil {
			report()
		}
		m.wg.Done()
	}
}

// Cancel cancels the sessions of uri, or all sessions when uri is empty, and
// returns how many it cancelled.
func (m *Manager) Cancel(uri string) int {
	return m.cancelWhere(func(s *session) bool { return uri == "" || s.uri == uri })
}

// CancelToken cancels the session reporting progress under token.
func (m *Manager) CancelToken(token string) int {
	return m.cancelWhere(func(s *session) bool { return token != "" && s.token == token })
}

func (m *Manager) cancelWhere(match func(*session) bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for s := range m.sessions {
		if match(s) {
			s.cancel()
			n++
		}
	}
	return n
}

// Running reports whether a session runs in uri.
func (m *Manager) Running(uri string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := range m.sessions {
		if s.uri == uri {
			return true
		}
	}
	return false
}

// Wait waits for every session to end.
func (m *Manager) Wait() { m.wg.Wait() }
