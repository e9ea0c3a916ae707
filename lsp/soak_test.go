package lsp

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/genls/genls/stream/streamtest"
)

// soakState is what must not grow over a soak: goroutines, and the heap in
// use after a full collection.
type soakState struct {
	goroutines int
	heap       uint64
}

// measure waits for finished goroutines to exit and idle connections to
// close (the goroutine count at or below atMost, or steady for 50 ms when
// atMost is 0; at most 5 s), then measures.
func measure(atMost int) soakState {
	last, steady := runtime.NumGoroutine(), 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n := runtime.NumGoroutine()
		if atMost > 0 && n <= atMost || atMost == 0 && steady >= 5 {
			break
		}
		if n == last {
			steady++
		} else {
			last, steady = n, 0
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for an event
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return soakState{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc}
}

func (s soakState) String() string {
	return fmt.Sprintf("%d goroutines, heap %.0f KiB", s.goroutines, float64(s.heap)/1024)
}

// checkFlat fails when goroutines or heap grew beyond a tolerance.
func checkFlat(t *testing.T, before, after soakState) {
	t.Helper()
	t.Logf("before: %s; after: %s", before, after)
	if after.goroutines > before.goroutines+3 {
		t.Errorf("goroutines grew from %d to %d", before.goroutines, after.goroutines)
	}
	const slack = 256 << 10
	if after.heap > before.heap+slack {
		t.Errorf("heap grew from %d to %d bytes (more than %d)", before.heap, after.heap, slack)
	}
}

// soakTokens is one generation's script: a few tokens, some multi-byte.
var soakTokens = []string{"a", "β", "😀", " c", "\n"}

// soakEndpoint is a fake TGI endpoint that answers every generation with
// soakTokens and keeps no record of the requests, so that what it holds
// does not count as growth.
func soakEndpoint(t *testing.T, delay time.Duration) *streamtest.Server {
	return streamtest.NewServer(t, streamtest.TGI(delay, "length", soakTokens...)).DiscardRequests()
}

// TestSoakSequential runs 1,000 generations back to back through the fake
// editor against the fake endpoint, and checks that goroutines and heap end
// where they started. Each generation replaces the text the previous one
// wrote, so the document itself does not grow. Skipped with -short.
func TestSoakSequential(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	n := 1000
	if os.Getenv("GENLS_SOAK_N") != "" {
		fmt.Sscan(os.Getenv("GENLS_SOAK_N"), &n)
	}
	srv := soakEndpoint(t, 0)
	// Not the test log: it keeps every line in memory until the test ends.
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, zap.NewNop())
	generated := strings.Join(soakTokens, "")
	ed.open(uri, "p")
	run := func() {
		ed.generateAndWait(uri, 0, 1)
		if got := ed.text(uri); got != "p"+generated {
			t.Fatalf("text %q", got)
		}
		ed.replace(uri, 1, len(ed.text(uri)), "")
		ed.mu.Lock()
		ed.edits, ed.applied = 0, 0
		ed.mu.Unlock()
		ed.recMu.Lock()
		ed.received = nil
		ed.recMu.Unlock()
	}
	for i := 0; i < 20; i++ { // warm up pools, connections and caches
		run()
	}
	before := measure(0)
	start := time.Now()
	for i := 0; i < n; i++ {
		run()
	}
	elapsed := time.Since(start)
	after := measure(before.goroutines)
	t.Logf("%d generations in %s (%.1f ms each)", n, elapsed.Round(time.Millisecond), float64(elapsed.Microseconds())/1000/float64(n))
	checkFlat(t, before, after)
}

// TestSoakConcurrent runs rounds of 20 generations at once, each in its own
// document, and checks every document's text and that goroutines and heap
// stay flat across rounds.
func TestSoakConcurrent(t *testing.T) {
	const width, rounds = 20, 25
	srv := soakEndpoint(t, time.Millisecond)
	// Not the test log: it keeps every line in memory until the test ends.
	ed := newFaultyEditor(t, editorOptions{versioned: true, settings: tgiSettings(srv.URL)}, zap.NewNop())
	generated := strings.Join(soakTokens, "")
	uris := make([]string, width)
	for i := range uris {
		uris[i] = fmt.Sprintf("file:///soak/%d.go", i)
		ed.open(uris[i], "p")
	}
	round := func() {
		ed.reset()
		var wg sync.WaitGroup
		for _, u := range uris {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ed.run(u, rangeOf(encUTF16, "p", 0, 1), "Generate")
			}()
		}
		wg.Wait()
		ed.awaitEnded(width)
		for _, u := range uris {
			if got := ed.text(u); got != "p"+generated {
				t.Fatalf("%s: text %q", u, got)
			}
			ed.replace(u, 1, len(ed.text(u)), "")
		}
		ed.recMu.Lock()
		ed.received = nil
		ed.recMu.Unlock()
	}
	// Warm up until the connection pool holds what 20 concurrent
	// generations (and their limit and token-count requests) open.
	for range 3 {
		round()
	}
	before := measure(0)
	start := time.Now()
	for i := 0; i < rounds; i++ {
		round()
	}
	elapsed := time.Since(start)
	after := measure(before.goroutines)
	t.Logf("%d rounds of %d concurrent generations in %s", rounds, width, elapsed.Round(time.Millisecond))
	checkFlat(t, before, after)
}
