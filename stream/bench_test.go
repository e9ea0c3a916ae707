package stream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// tgiBody returns a TGI /generate_stream body of n token events, as a
// server sends it.
func benchBody(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `data:{"index":%d,"token":{"id":%d,"text":" tok%d","logprob":-0.25,"special":false},"generated_text":null,"details":null}`+"\n\n", i+1, 1000+i, i%100)
	}
	return b.Bytes()
}

// BenchmarkDecodeAndPipeline measures the client's whole per-token path, from
// response bytes to releasable text: SSE framing, JSON decoding of the TGI
// event, and the pipeline (special tokens, stop matching with two stop
// sequences, UTF-8). The network is not involved.
func BenchmarkDecodeAndPipeline(b *testing.B) {
	const n = 10000
	body := benchBody(n)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p := &tgiParser{}
		pipe := NewPipeline([]string{"\n\n\n", "<|endoftext|>"}, 0)
		tokens := 0
		for data, err := range sseData(bytes.NewReader(body)) {
			if err != nil {
				b.Fatal(err)
			}
			ev, err := p.parse(data)
			if err != nil {
				b.Fatal(err)
			}
			pipe.Push(ev.token)
			tokens++
		}
		if tokens != n {
			b.Fatalf("%d tokens", tokens)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
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
	body := benchBody(10000)
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
	const n = 10000
	body := benchBody(n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctx, cancel := context.WithCancelCause(context.Background())
		r := io.NopCloser(bytes.NewReader(body))
		s := newStream(ctx, context.Background(), cancel, r, sseData(r), &tgiParser{},
			Parameters{MaxNewTokens: n + 1, StopSequences: []string{"\n\n\n"}}, zap.NewNop(), newIdleTimer(time.Minute, cancel))
		for s.Next() {
		}
		if s.Result().Tokens != n {
			b.Fatalf("%d tokens, err %v", s.Result().Tokens, s.Err())
		}
		s.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
