package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/genls/genls/stream"
	"github.com/genls/genls/stream/streamtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestBuildPrompt(t *testing.T) {
	in := PromptInput{Selection: "sel", Prefix: "pre", Suffix: "suf", Language: "go", FileName: "a.go"}
	fim := FIM{Prefix: "<P>", Suffix: "<S>", Middle: "<M>"}
	tmpl, err := ParseTemplate("{{.FileName}}:{{.Language}}:{{.Selection}}|{{.Prefix}}|{{.Suffix}}")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tmpl bool
		fim  FIM
		here bool
		want string
	}{
		{"selection", false, FIM{}, false, "sel"},
		{"selection ignores FIM", false, fim, false, "sel"},
		{"here", false, FIM{}, true, "pre"},
		{"here with FIM", false, fim, true, "<P>pre<S>suf<M>"},
		{"template", true, fim, true, "a.go:go:sel|pre|suf"},
	}
	for _, tt := range tests {
		var tp = tmpl
		if !tt.tmpl {
			tp = nil
		}
		in := in
		in.Mode = ModeInsert
		if tt.here {
			in.Mode = ModeHere
		}
		got, err := BuildPrompt(tp, tt.fim, in)
		if err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := ParseTemplate("{{.Selection"); err == nil {
		t.Errorf("bad template accepted")
	}
	bad, _ := ParseTemplate("{{.Missing}}")
	if _, err := BuildPrompt(bad, FIM{}, in); err == nil || !strings.Contains(err.Error(), "prompt.template") {
		t.Errorf("template naming a missing field: %v", err)
	}
}

// recordingSink is a Sink that keeps what it was given, and can fail.
type recordingSink struct {
	mu     sync.Mutex
	text   strings.Builder
	failAt int // fail on this Write (1-based), 0 never
	writes int
	closed bool
}

func (s *recordingSink) Write(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.failAt > 0 && s.writes >= s.failAt {
		return errors.New("sink broke")
	}
	s.text.WriteString(text)
	return nil
}

func (s *recordingSink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func client(t *testing.T, url string) *stream.Client {
	t.Helper()
	c, err := stream.NewClient(stream.Config{Endpoint: stream.Endpoint{URL: url, Backend: stream.BackendTGI}, MaxLoadingWait: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRun(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "a", "b", "c"))
	sink := &recordingSink{}
	res, err := Run(context.Background(), Generation{Client: client(t, srv.URL), Prompt: "p"}, sink, nil)
	if err != nil || sink.text.String() != "abc" || !sink.closed || res.FinishReason != stream.FinishLength {
		t.Fatalf("text %q closed %v res %+v err %v", sink.text.String(), sink.closed, res, err)
	}

	// A failing sink stops the stream (and closes the upstream request),
	// which is left hanging: only the sink's failure can end it. (The
	// stream may release the text of events that arrived together as one
	// piece, so the sink fails at its first write.)
	srv.Push(streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b", "c").Chunks[:2], Hang: true})
	sink = &recordingSink{failAt: 1}
	_, err = Run(context.Background(), Generation{Client: client(t, srv.URL), Prompt: "p"}, sink, nil)
	if err == nil || err.Error() != "sink broke" || sink.text.String() != "" || !sink.closed {
		t.Fatalf("failing sink: text %q err %v", sink.text.String(), err)
	}
	if !srv.WaitDisconnect(5 * time.Second) {
		t.Errorf("upstream not closed after the sink failed")
	}

	// A request error still closes the sink.
	srv.Push(streamtest.Error(500, `{"error":"down"}`))
	sink = &recordingSink{}
	if _, err = Run(context.Background(), Generation{Client: client(t, srv.URL), Prompt: "p"}, sink, nil); err == nil || !sink.closed {
		t.Fatalf("500: err %v closed %v", err, sink.closed)
	}
}

func TestRunStripsFence(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.OpenAIChat(0, "stop", "```go\n", "x := 1\n", "```"))
	c, _ := stream.NewClient(stream.Config{Endpoint: stream.Endpoint{URL: srv.URL + "/v1", Backend: stream.BackendOpenAI}})
	sink := &recordingSink{}
	if _, err := Run(context.Background(), Generation{Client: c, Prompt: "p", System: "sys"}, sink, nil); err != nil {
		t.Fatal(err)
	}
	if sink.text.String() != "x := 1\n" {
		t.Errorf("text %q", sink.text.String())
	}
	req, _ := srv.LastRequest()
	if msgs := fmt.Sprint(req.JSON()["messages"]); !strings.Contains(msgs, "content:sys role:system") {
		t.Errorf("messages %s: want the system prompt", msgs)
	}
}

// A completion model is sent the prompt alone, and its fences are text.
func TestRunLeavesCompletionText(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", "```go\n", "x := 1\n", "```"))
	sink := &recordingSink{}
	if _, err := Run(context.Background(), Generation{Client: client(t, srv.URL), Prompt: "p", System: "sys"}, sink, nil); err != nil {
		t.Fatal(err)
	}
	if sink.text.String() != "```go\nx := 1\n```" {
		t.Errorf("text %q", sink.text.String())
	}
	if req, _ := srv.LastRequest(); strings.Contains(string(req.Body), "sys") {
		t.Errorf("request %s: a completion model got the system prompt", req.Body)
	}
}

func TestManager(t *testing.T) {
	var m Manager
	ctxA, doneA := m.Start(context.Background(), "file:///a", "tok-a")
	ctxB, doneB := m.Start(context.Background(), "file:///b", "tok-b")
	ctxB2, doneB2 := m.Start(context.Background(), "file:///b", "")
	if !m.Running("file:///a") || m.Running("file:///c") {
		t.Errorf("Running is wrong")
	}
	if n := m.CancelToken("tok-a"); n != 1 || ctxA.Err() == nil || ctxB.Err() != nil {
		t.Errorf("CancelToken cancelled %d", n)
	}
	if n := m.CancelToken(""); n != 0 {
		t.Errorf("an empty token cancelled %d", n)
	}
	if n := m.Cancel("file:///b"); n != 2 || ctxB.Err() == nil || ctxB2.Err() == nil {
		t.Errorf("Cancel(uri) cancelled %d", n)
	}
	doneA(nil)
	doneB(nil)
	// The end is reported only once the session no longer runs: an editor
	// told of it must not be offered "Cancel generation".
	doneB2(func() {
		if m.Running("file:///b") {
			t.Errorf("session still running when its end is reported")
		}
	})
	if m.Running("file:///b") {
		t.Errorf("ended sessions still running")
	}
	_, done := m.Start(context.Background(), "file:///c", "")
	if n := m.Cancel(""); n != 1 {
		t.Errorf("Cancel all cancelled %d", n)
	}
	done(nil)
	m.Wait()
}
