package stream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/genls/genls/stream/streamtest"
)

var benchBackends = []Backend{BackendTGI, BackendOpenAI, BackendOpenAICompletions, BackendOllama}

// benchBody returns a body of n tokens in backend's wire format, as a server
// sends it. The texts are plain ASCII; a token whose text has to be decoded
// (an escape, non-ASCII) costs an allocation more.
func benchBody(b *testing.B, backend Backend, n int) []byte {
	body, err := streamtest.Load{Backend: string(backend), Tokens: n, Text: func(i int) string { return fmt.Sprintf(" tok%d", i%100) }}.Body()
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// events splits a body into events the way the client does.
func events(backend Backend) func(io.Reader) iter.Seq2[[]byte, error] {
	if backend == BackendOllama {
		return ndjsonLines
	}
	return sseData
}

// BenchmarkDecodeAndPipeline measures the client's whole per-token path, from
// response bytes to releasable text: SSE or NDJSON framing, JSON decoding of
// the event, and the pipeline (special tokens, stop matching with two stop
// sequences, UTF-8). The network is not involved.
func BenchmarkDecodeAndPipeline(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(string(backend), func(b *testing.B) {
			const n = 10000
			body := benchBody(b, backend, n)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				p := parserFor(backend)
				pipe := NewPipeline([]string{"\n\n\n", "<|endoftext|>"}, 0)
				tokens := 0
				for data, err := range events(backend)(bytes.NewReader(body)) {
					if err != nil {
						b.Fatal(err)
					}
					if len(data) == 0 {
						continue // a read follows
					}
					ev, err := p.parse(data)
					if err != nil {
						b.Fatal(err)
					}
					if ev.hasToken {
						pipe.Push(ev.token)
						tokens++
					}
				}
				if tokens != n {
					b.Fatalf("%d tokens", tokens)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkParse is the JSON decoding of one token event alone.
func BenchmarkParse(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(string(backend), func(b *testing.B) {
			var data []byte
			for d, err := range events(backend)(bytes.NewReader(benchBody(b, backend, 2))) {
				if err != nil {
					b.Fatal(err)
				}
				if len(d) > 0 {
					data = bytes.Clone(d)
					break
				}
			}
			p := parserFor(backend)
			if ev, err := p.parse(data); err != nil || ev.token.Text != " tok0" {
				b.Fatalf("%+v %v", ev, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				p.parse(data)
			}
		})
	}
}

// BenchmarkPipeline is the pipeline alone, per token.
func BenchmarkPipeline(b *testing.B) {
	texts := make([]string, 1000)
	for i := range texts {
		texts[i] = fmt.Sprintf(" tok%d", i)
	}
	texts[500] = "\n\n" // a partial stop to hold and release
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		pipe := NewPipeline([]string{"\n\n\n", "<|endoftext|>"}, 0)
		for _, t := range texts {
			pipe.Push(Token{Text: t})
		}
	}
	b.ReportMetric(float64(len(texts))*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkSSEData is the SSE framing alone, per event.
func BenchmarkSSEData(b *testing.B) {
	body := benchBody(b, BackendTGI, 10000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		for _, err := range sseData(strings.NewReader(string(body))) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(10000*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkStream is BenchmarkDecodeAndPipeline through the Stream type that
// callers use (pull iterator, result accounting), with the body in memory.
func BenchmarkStream(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(string(backend), func(b *testing.B) {
			const n = 10000
			body := benchBody(b, backend, n)
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithCancelCause(context.Background())
				r := io.NopCloser(bytes.NewReader(body))
				s := newStream(ctx, context.Background(), cancel, r, events(backend)(r), parserFor(backend),
					Parameters{MaxNewTokens: n + 1, StopSequences: []string{"\n\n\n"}}, zap.NewNop(), newIdleTimer(time.Minute, cancel))
				for s.Next() {
				}
				if s.Result().Tokens != n {
					b.Fatalf("%d tokens, err %v", s.Result().Tokens, s.Err())
				}
				s.Close()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
