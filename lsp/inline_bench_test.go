package lsp

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.lsp.dev/protocol"

	"github.com/genls/genls/stream/streamtest"
)

// completionTokens is a typical one-line completion, token by token.
var completionTokens = []string{"return", " fib", "(", "n", " -", " 1", ")", " +", " fib", "(", "n", " -", " 2", ")", "\n"}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0, 0
	}
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

// BenchmarkInlineCompletionLatency: an inline completion request from a
// client that debounces itself (VS Code) against a fake TGI endpoint that
// answers at once with a 15-token line; reports p50/p99 from sending the
// request to reading the reply (JSON-RPC both ways, loopback HTTP, the
// endpoint's own work), and, as the baseline, the same for the bare HTTP
// request to the endpoint. Each request follows a keystroke the last
// completion did not predict, so none is answered from memory.
func BenchmarkInlineCompletionLatency(b *testing.B) {
	srv := streamtest.NewServer(b, streamtest.TGI(0, "eos_token", completionTokens...)).Route("/info", `{"model_id":"gpt2"}`).DiscardRequests()
	ed := newFakeEditor(b, editorOptions{clientName: "Visual Studio Code", settings: tgiSettings(srv.URL)})
	doc := "def fib(n):\n    if n < 2:\n        return n\n    "
	ed.open(uri, doc)
	end := len(doc)
	ask := func() (string, time.Duration) {
		ed.typeAt(uri, end, "z")
		end++
		var res wireInline
		pos := fakePosition(ed.text(uri), end, encUTF16)
		start := time.Now()
		err := ed.call(methodInlineCompletion, map[string]any{"textDocument": map[string]any{"uri": uri}, "position": pos,
			"context": map[string]any{"triggerKind": protocol.InlineCompletionTriggerKindAutomatic}}, &res)
		took := time.Since(start)
		if err != nil || len(res.Items) != 1 {
			b.Fatalf("inline completion: %v, %v", res, err)
		}
		return res.Items[0].InsertText, took
	}
	ask() // the endpoint's backend and limits are learned once
	body, _ := io.ReadAll(bytes.NewReader([]byte(`{"inputs":"def fib(n):","parameters":{"max_new_tokens":128},"stream":true}`)))
	bare := func() time.Duration {
		start := time.Now()
		resp, err := http.Post(srv.URL+"/generate_stream", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start)
	}
	var lat, base []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Interleaved, so that both see the same machine.
		_, took := ask()
		lat = append(lat, took)
		b.StopTimer()
		base = append(base, bare())
		b.StartTimer()
	}
	b.StopTimer()
	p50, p99 := percentiles(lat)
	b50, b99 := percentiles(base)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b50.Microseconds())/1000, "endpoint-p50-ms")
	b.ReportMetric(float64(b99.Microseconds())/1000, "endpoint-p99-ms")
}

// BenchmarkInlineCompletionTyping: 20 keystrokes 10 ms apart, each asking
// for a completion, against an endpoint whose first token takes 50 ms, from
// a client that debounces itself (VS Code: genls does not) and from one
// that does not (genls waits 50 ms); reports the upstream requests per
// keystroke, how many of them were closed before they finished because a
// newer one replaced them, and the completions shown.
func BenchmarkInlineCompletionTyping(b *testing.B) {
	for _, client := range []string{"Visual Studio Code", "Kate"} {
		b.Run("client="+strings.Fields(client)[0], func(b *testing.B) {
			slow := streamtest.TGI(0, "eos_token", completionTokens...)
			slow.Chunks[0].Delay = 50 * time.Millisecond
			srv := streamtest.NewServer(b, slow).Route("/info", `{"model_id":"gpt2"}`)
			ed := newFakeEditor(b, editorOptions{clientName: client, settings: tgiSettings(srv.URL)})
			const keystrokes = 20
			var answered, empty int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ed.open(uri, "x = ")
				end := len("x = ")
				var reqs []*inlineRequest
				for range keystrokes {
					ed.typeAt(uri, end, "q")
					end++
					reqs = append(reqs, ed.askInline(uri, end, true))
					time.Sleep(10 * time.Millisecond)
				}
				for _, r := range reqs {
					res, err := r.wait(b)
					if err != nil {
						b.Fatal(err)
					}
					answered++
					if len(res.Items) == 0 {
						empty++
					}
				}
				ed.notify("textDocument/didClose", map[string]any{"textDocument": map[string]any{"uri": uri}})
			}
			b.StopTimer()
			b.ReportMetric(float64(generations(srv))/float64(b.N*keystrokes), "upstream/keystroke")
			b.ReportMetric(float64(srv.Disconnects())/float64(b.N*keystrokes), "closed-early/keystroke")
			b.ReportMetric(float64(answered-empty)/float64(b.N*keystrokes), "completions/keystroke")
		})
	}
}
