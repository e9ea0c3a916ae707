package stream

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
)

// Next releases together the text of the events that arrived together, and
// does not wait for more to release them.
func TestNextReleasesWhatArrived(t *testing.T) {
	tok := func(text string) string {
		return `data:{"token":{"text":"` + text + `","special":false},"generated_text":null}` + "\n\n"
	}
	body := &chunkReader{tok("a") + tok("b") + tok("c"), tok("d"), tok("e") + `data:{"token":{"text":"f","special":false},"generated_text":"abcdef"}` + "\n\n"}
	ctx, cancel := context.WithCancelCause(context.Background())
	s := newStream(ctx, context.Background(), cancel, io.NopCloser(body), sseData(body), parserFor(BackendTGI),
		Parameters{MaxNewTokens: 100}, zap.NewNop(), newIdleTimer(time.Minute, cancel))
	defer s.Close()
	var got []string
	for s.Next() {
		got = append(got, s.Text())
	}
	if want := []string{"abc", "d", "ef"}; !slices.Equal(got, want) || s.Err() != nil {
		t.Errorf("Next released %q, err %v; want %q", got, s.Err(), want)
	}
	if res := s.Result(); res.Text != "abcdef" || res.Tokens != 6 || res.FinishReason != FinishLength {
		t.Errorf("result %+v", res)
	}
}
