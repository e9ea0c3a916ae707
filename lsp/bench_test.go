package lsp

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/streamtest"
)

// timestampEndpoint is a TGI endpoint whose every token is the nanosecond
// time it was written ("<ns>|", and a newline after every tenth), so the
// editor can tell how long each token took to reach it. interval paces the
// tokens (0: as fast as possible).
func timestampEndpoint(b *testing.B, n int, interval time.Duration) *streamtest.Server {
	return streamtest.NewServer(b, streamtest.TGIFunc(n, interval, "length", func(i int) string {
		text := strconv.FormatInt(time.Now().UnixNano(), 10) + "|"
		if i%10 == 9 {
			text += "\n" // lines of ten tokens, like code
		}
		return text
	})).DiscardRequests()
}

// latencyRecorder collects, for every token in applied edits, the time from
// the endpoint writing it to the editor applying it.
type latencyRecorder struct {
	mu     sync.Mutex
	lat    []time.Duration
	edits  int
	tokens int
}

func (l *latencyRecorder) onApply(text string) {
	now := time.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.edits++
	for _, f := range strings.Split(text, "|") {
		if ts, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64); err == nil {
			l.lat = append(l.lat, time.Duration(now-ts))
			l.tokens++
		}
	}
}

func (l *latencyRecorder) percentile(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := slices.Clone(l.lat)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkTokenToEditLatency: tokens at 1,000/s, an editor answering edits
// in 0 ms or 1 ms; reports the p50/p99 time from the endpoint writing a token
// to the editor applying it (loopback HTTP included).
func BenchmarkTokenToEditLatency(b *testing.B) {
	for _, editorDelay := range []time.Duration{0, time.Millisecond} {
		b.Run(fmt.Sprintf("editor=%s", editorDelay), func(b *testing.B) {
			const n = 1000
			rec := &latencyRecorder{}
			srv := timestampEndpoint(b, n, time.Millisecond)
			ed := newFakeEditor(b, editorOptions{versioned: true, editLatency: editorDelay, onApply: rec.onApply,
				settings: tgiSettings(srv.URL, func(s map[string]any) { s["parameters"] = map[string]any{"max_new_tokens": n} })})
			ed.open(uri, "x")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
				ed.awaitEnded(i + 1)
			}
			b.StopTimer()
			b.ReportMetric(float64(rec.percentile(0.50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(rec.percentile(0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(rec.tokens)/float64(rec.edits), "tokens/edit")
		})
	}
}

// BenchmarkBurst: 20,000 tokens as fast as the endpoint can send them;
// reports edits/s and how many tokens each edit carried.
func BenchmarkBurst(b *testing.B) {
	for _, editorDelay := range []time.Duration{0, time.Millisecond} {
		b.Run(fmt.Sprintf("editor=%s", editorDelay), func(b *testing.B) {
			const n = 20000
			rec := &latencyRecorder{}
			srv := timestampEndpoint(b, n, 0)
			ed := newFakeEditor(b, editorOptions{versioned: true, editLatency: editorDelay, onApply: rec.onApply,
				settings: tgiSettings(srv.URL, func(s map[string]any) { s["parameters"] = map[string]any{"max_new_tokens": n} })})
			ed.open(uri, "x")
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
				ed.awaitEnded(i + 1)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(rec.edits)/elapsed.Seconds(), "edits/s")
			b.ReportMetric(float64(rec.tokens)/elapsed.Seconds(), "tokens/s")
			b.ReportMetric(float64(rec.tokens)/float64(rec.edits), "tokens/edit")
		})
	}
}

// BenchmarkLongGenerationMemory: one 100,000-token generation; reports the
// heap in use after it beyond the document itself (held twice: by the
// server and by the fake editor), which stays flat if nothing accumulates
// per token.
func BenchmarkLongGenerationMemory(b *testing.B) {
	const n = 100000
	for i := 0; i < b.N; i++ {
		srv := timestampEndpoint(b, n, 0)
		ed := newFakeEditor(b, editorOptions{versioned: true,
			settings: tgiSettings(srv.URL, func(s map[string]any) { s["parameters"] = map[string]any{"max_new_tokens": n} })})
		ed.open(uri, "x")
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ed.run(uri, rangeOf(encUTF16, "x", 0, 1), "Generate")
		ed.awaitEnded(1)
		runtime.GC()
		runtime.ReadMemStats(&after)
		doc := len(ed.text(uri))
		b.ReportMetric(float64(doc)/1e6, "doc-MB")
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse)-2*int64(doc))/1e6, "heap-beyond-doc-MB")
	}
}

// BenchmarkLineEndings measures what writing line breaks in the document's
// spelling adds to each token's path: the client's pipeline and the edit
// sink's batching alone, then with lineBreaks and toLineEnding as the sink
// applies them, for an LF and a CRLF document. Every tenth token ends a line, half of them "\r\n"
// from the model.
func BenchmarkLineEndings(b *testing.B) {
	tokens := make([]stream.Token, 1000)
	for i := range tokens {
		text := fmt.Sprintf(" tok%d", i)
		switch {
		case i%20 == 9:
			text += "\n"
		case i%20 == 19:
			text += "\r\n"
		}
		tokens[i] = stream.Token{Text: text}
	}
	for _, c := range []struct {
		name string
		eol  string // "" for the pipeline alone
	}{{"pipeline", ""}, {"pipeline+LF", "\n"}, {"pipeline+CRLF", "\r\n"}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p := stream.NewPipeline([]string{"\n\n\n"}, 0)
				var lb lineBreaks
				var pending strings.Builder
				sent := 0
				for i, tok := range tokens {
					text, _ := p.Push(tok)
					if c.eol != "" {
						text = lb.Push(text)
					}
					pending.WriteString(text)
					if i%8 == 7 { // an edit carries a few tokens
						edit := pending.String()
						if c.eol != "" {
							edit = toLineEnding(edit, c.eol)
						}
						sent += len(edit)
						pending.Reset()
					}
				}
				_ = sent
			}
			b.ReportMetric(float64(b.N*len(tokens))/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
