package stream

import (
	"context"
	"errors"
	"io"
	"iter"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Result summarises a finished stream.
type Result struct {
	// Text is everything Next released, concatenated.
	Text         string
	FinishReason FinishReason
	// Tokens is the number of tokens generated: the server's own count when
	// it reports one (TGI's generated_tokens, an OpenAI usage, Ollama's
	// eval_count), else the tokens received, special ones included. The
	// two differ where a server sends several tokens in one event, or a
	// token in none.
	Tokens int
	// TimeToFirstToken and Duration run from the first attempt of the
	// request, retries while the model loads included.
	TimeToFirstToken time.Duration
	Duration         time.Duration
}

// TokensPerSecond is the rate of the whole generation, from the request to
// the end. The rate after the first token would leave out the prompt's
// processing, but it is not measurable: servers and proxies that buffer
// deliver the tokens in bursts, and a burst has no duration.
func (r Result) TokensPerSecond() float64 {
	if r.Tokens == 0 || r.Duration <= 0 {
		return 0
	}
	return float64(r.Tokens) / r.Duration.Seconds()
}

// Stream is one running generation. Use it like bufio.Scanner:
//
//	for s.Next() {
//		write(s.Text())
//	}
//	if err := s.Err(); err != nil { … }
//	res := s.Result()
//
// Next blocks until text is ready, and then returns the text of all the
// events that had arrived: a token's when tokens come one by one, many at
// once when they come faster than the caller reads them. Text is already
// filtered: no special tokens, no stop sequences, valid UTF-8. A Stream is not safe for concurrent
// use, except Close, which may be called from any goroutine to abort it; the
// goroutine reading the stream then calls Next until it returns false,
// which releases the reader (it returns false at once after Close).
type Stream struct {
	ctx    context.Context // the request's context, cancelled on Close
	parent context.Context // the caller's, to tell cancellation from failure
	cancel context.CancelCauseFunc
	body   io.Closer
	url    string
	idle   *idleTimer
	log    *zap.Logger

	next   func() ([]byte, error, bool)
	stop   func()
	parser parser
	pipe   *Pipeline

	text  string
	err   error
	ended bool
	final bool
	out   strings.Builder
	res   Result
	start time.Time
	// received counts the token events; generated is the server's own
	// count, 0 until it reports one.
	received, generated int
}

func newStream(ctx, parent context.Context, cancel context.CancelCauseFunc, body io.Closer,
	data iter.Seq2[[]byte, error], p parser, params Parameters, log *zap.Logger, idle *idleTimer) *Stream {
	next, stop := iter.Pull2(data)
	return &Stream{
		ctx: ctx, parent: parent, cancel: cancel, body: body, idle: idle, log: log,
		next: next, stop: stop, parser: p,
		pipe:  NewPipeline(params.StopSequences, params.maxNewTokens()),
		start: time.Now(),
	}
}

// Next advances to the next piece of text, returning false at the end of
// the stream or on error.
func (s *Stream) Next() bool {
	// The text released by this call is what it adds to out.
	start := s.out.Len()
	for !s.ended {
		data, err, ok := s.next()
		if !ok {
			if s.final {
				s.end(FinishEOS, nil)
			} else {
				s.end(FinishError, ErrNoFinalEvent)
			}
			break
		}
		if err != nil {
			s.end(FinishError, s.readError(err))
			break
		}
		if len(data) == 0 { // the decoder is about to read: what had arrived is decoded
			if s.out.Len() > start {
				break
			}
			continue
		}
		if ce := s.log.Check(zap.DebugLevel, "stream event"); ce != nil {
			ce.Write(zap.String("data", string(data)))
		}
		ev, err := s.parser.parse(data)
		if err != nil {
			s.end(FinishError, err)
			break
		}
		if ev.generated > 0 {
			s.generated = ev.generated
		}
		if ev.hasToken {
			if s.received == 0 {
				s.res.TimeToFirstToken = time.Since(s.start)
			}
			s.received++
			text, done := s.pipe.Push(ev.token)
			s.emit(text)
			if done {
				s.end(s.pipe.Reason(), nil)
			}
		}
		if ev.final && !s.ended {
			s.final = true
			s.drain()
			s.end(ev.reason, nil)
		}
	}
	s.text = s.out.String()[start:]
	return s.text != ""
}

// Text returns the text released by the last call to Next.
func (s *Stream) Text() string { return s.text }

// Err returns the error that ended the stream, nil when it ended normally.
// A stream cancelled through its context reports the context's error.
func (s *Stream) Err() error { return s.err }

// Result returns the summary; complete once Next has returned false.
func (s *Stream) Result() Result {
	r := s.res
	r.Text = s.out.String()
	r.Tokens = s.received
	if s.generated > 0 {
		r.Tokens = s.generated
	}
	return r
}

// Close aborts the stream if it is still running and releases the upstream
// connection at once. It is safe to call more than once, from any goroutine.
func (s *Stream) Close() error {
	s.cancel(context.Canceled)
	s.idle.stop()
	return s.body.Close()
}

func (s *Stream) emit(text string) {
	s.out.WriteString(text)
}

// end finishes the stream: releases what the pipeline held, records the
// reason, and closes the upstream request (so a server that keeps sending
// after a stop sequence or the token limit stops costing anything).
func (s *Stream) end(reason FinishReason, err error) {
	if s.ended {
		return
	}
	if err != nil && s.cancelled() {
		reason, err = FinishCancelled, context.Canceled
	}
	s.emit(s.pipe.Finish(reason))
	s.ended = true
	s.err = err
	s.res.FinishReason = s.pipe.Reason()
	s.res.Duration = time.Since(s.start)
	s.stop()
	s.cancel(errStreamDone)
	s.idle.stop()
	s.body.Close()
	if err != nil {
		s.log.Debug("stream ended with error", zap.Error(err), zap.String("reason", string(s.res.FinishReason)))
	}
}

var errStreamDone = errors.New("stream done")

// After its last event a server sends a little more (the end of TGI's
// chunked body, OpenAI's [DONE] and usage chunk, Ollama's end of body).
// Reading it, briefly, lets the connection go back to the pool instead of
// being closed: the next request (inline completion asks at every pause in
// typing) then needs no new connection, which to a remote endpoint means
// no new TLS handshake. A server that sends more, or keeps the connection
// open, loses it as before.
const (
	drainTimeout   = 25 * time.Millisecond
	maxDrainEvents = 8
)

var errDrainTimeout = errors.New("nothing more came after the last event")

// drain reads what follows the last event, up to the end of the body.
func (s *Stream) drain() {
	t := time.AfterFunc(drainTimeout, func() { s.cancel(errDrainTimeout) })
	defer t.Stop()
	for range maxDrainEvents {
		data, err, ok := s.next()
		if !ok || err != nil {
			return
		}
		if len(data) == 0 {
			continue // the decoder is about to read
		}
		if ev, err := s.parser.parse(data); err == nil && ev.generated > 0 {
			s.generated = ev.generated // a usage chunk after the last token
		}
	}
}

// readError explains why reading the body failed.
func (s *Stream) readError(err error) error {
	if s.cancelled() {
		return context.Canceled
	}
	if ite, ok := context.Cause(s.ctx).(*IdleTimeoutError); ok {
		return ite
	}
	if errors.Is(err, ErrEventTooLarge) {
		return err
	}
	return &ConnectionError{URL: s.url, MidStream: true, Err: err}
}

// cancelled reports whether the caller cancelled the stream, through the
// context given to Generate or by calling Close.
func (s *Stream) cancelled() bool {
	return s.parent.Err() != nil || errors.Is(context.Cause(s.ctx), context.Canceled) && !s.ended
}
