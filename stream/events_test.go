package stream

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every protocol's events, decoded: tokens, final events, errors in band,
// and JSON that encoding/json reads its own way (names matched without
// regard to case, the last of two equal names, U+FFFD for bad UTF-8).
func TestParsers(t *testing.T) {
	tok := func(text string) event { return event{token: Token{Text: text}, hasToken: true} }
	tests := []struct {
		backend Backend
		data    string
		want    event
		err     string // a substring of the error, when one is wanted
	}{
		{backend: BackendTGI, data: `{"index":1,"token":{"id":5,"text":" is","logprob":-0.1,"special":false},"generated_text":null,"details":null}`, want: tok(" is")},
		{backend: BackendTGI, data: `{"token":{"id":1,"text":"</s>","logprob":-0.03,"special":true},"generated_text":null}`,
			want: event{token: Token{Text: "</s>", Special: true}, hasToken: true}},
		{backend: BackendTGI, data: ` { "token" : { "text" : "a\n\"b\"\u00e9\ud83d\ude00" , "special" : false , "id" : 7 } } `, want: tok("a\n\"b\"é😀")},
		{backend: BackendTGI, data: `{"token":{"id":2,"text":"日本","logprob":-1e-3,"special":false,"extra":[1,{"x":null}]},"top_tokens":[]}`, want: tok("日本")},
		{backend: BackendTGI, data: `{"token":{"id":2,"text":"x","special":false},"generated_text":"x","details":{"finish_reason":"length","generated_tokens":7}}`,
			want: event{token: Token{Text: "x"}, hasToken: true, final: true, reason: FinishLength, generated: 7}},
		{backend: BackendTGI, data: `{"token":{"id":3,"text":"</s>","special":true},"generated_text":"x","details":null}`,
			want: event{token: Token{Text: "</s>", Special: true}, hasToken: true, final: true, reason: FinishEOS}},
		{backend: BackendTGI, data: `{"error":"boom","error_type":"generation"}`, err: "the model failed while generating: boom"},
		{backend: BackendTGI, data: `{"Token":{"id":1,"text":"x","special":false}}`, want: tok("x")},
		{backend: BackendTGI, data: `{"token":{"text":"x","special":false},"token":{"text":"y","special":false}}`, want: tok("y")},
		{backend: BackendTGI, data: `{"token":{"text":"\ud800x","special":false}}`, want: tok("\ufffdx")},
		{backend: BackendTGI, data: "{\"token\":{\"text\":\"\xff\",\"special\":false}}", want: tok("\ufffd")},
		{backend: BackendTGI, data: `{"token":{"id":01,"text":"x","special":false}}`, err: "malformed event"},
		{backend: BackendTGI, data: `{"token":{"id":1,"text":"x","special":false}} trailing`, err: "malformed event"},
		{backend: BackendTGI, data: `{"token":{"id":1,"text":"x","special":"no"}}`, err: "malformed event"},
		{backend: BackendTGI, data: `{"index":1}`, err: "neither a token nor a final event"},

		{backend: BackendOpenAI, data: `{"id":"c","object":"chat.completion.chunk","created":1714879341,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":" is"},"logprobs":null,"finish_reason":null}]}`, want: tok(" is")},
		{backend: BackendOpenAI, data: `{"object":"chat.completion.chunk","id":"","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Deep"},"logprobs":null,"finish_reason":null}],"usage":null}`, want: tok("Deep")},
		{backend: BackendOpenAI, data: `{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`},
		{backend: BackendOpenAI, data: `{"choices":[{"delta":{"content":"x"},"finish_reason":""}]}`, want: tok("x")},
		{backend: BackendOpenAI, data: `{"choices":[{"delta":{"content":"x</s>"},"finish_reason":"eos_token"}]}`,
			want: event{token: Token{Text: "x"}, hasToken: true, final: true, reason: FinishEOS}},
		{backend: BackendOpenAI, data: `{"choices":[{"delta":{},"finish_reason":"length"}],"usage":{"completion_tokens":9}}`,
			want: event{final: true, reason: FinishLength, generated: 9}},
		{backend: BackendOpenAI, data: `{"choices":[],"usage":{"completion_tokens":9}}`, want: event{generated: 9}},
		{backend: BackendOpenAI, data: `{"choices":[{"delta":{"content":"\ufffd"},"logprobs":{"content":[{"bytes":[195]}]}}]}`, want: tok("\xc3")},
		{backend: BackendOpenAI, data: `{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"}}]}`, want: tok("a")},
		{backend: BackendOpenAI, data: `{"choices":[{"delta":{"Content":"a"}}]}`, want: tok("a")},
		{backend: BackendOpenAI, data: `{"error":{"message":"overloaded","type":"server_error"}}`, err: "server_error error: overloaded"},
		{backend: BackendOpenAI, data: `{"choices":[{"delta":{"content":1}}]}`, err: "malformed event"},
		{backend: BackendOpenAI, data: ` [DONE] `, want: event{final: true, reason: FinishEOS}},

		{backend: BackendOpenAICompletions, data: `{"id":"c","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" is","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}`, want: tok(" is")},
		{backend: BackendOpenAICompletions, data: `{"choices":[{"text":"","finish_reason":"stop"}]}`, want: event{final: true, reason: FinishEOS}},
		{backend: BackendOpenAICompletions, data: `{"choices":[{"delta":{"content":"ignored"},"text":"x"}]}`, want: tok("x")},

		{backend: BackendOllama, data: `{"model":"m","created_at":"2024-08-04T08:52:19.385406455-07:00","response":" is","done":false}`, want: tok(" is")},
		{backend: BackendOllama, data: `{"model":"m","response":"","done":true,"done_reason":"length","eval_count":20}`,
			want: event{final: true, reason: FinishLength, generated: 20}},
		{backend: BackendOllama, data: `{"error":"model 'm' not found"}`, err: "model 'm' not found"},
		{backend: BackendOllama, data: `{"response":"x","DONE":true}`, want: event{token: Token{Text: "x"}, hasToken: true, final: true, reason: FinishEOS}},
	}
	for _, tt := range tests {
		got, err := parserFor(tt.backend).parse([]byte(tt.data))
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s %s: err %v, want one containing %q", tt.backend, tt.data, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("%s %s: err %v", tt.backend, tt.data, err)
		case got != tt.want:
			t.Errorf("%s %s:\n got %+v\nwant %+v", tt.backend, tt.data, got, tt.want)
		}
	}
}

// unmarshalStd is encoding/json's Unmarshal, which unmarshalInPlace must
// agree with.
func unmarshalStd(data []byte, v any) error {
	return json.Unmarshal(data, v)
}

// FuzzParsers checks that every parser reads any data as it would with
// encoding/json: the same event, or an error of the same kind.
func FuzzParsers(f *testing.F) {
	for _, data := range edgeEvents {
		f.Add(data)
	}
	// Every event of the recorded streams.
	files, _ := filepath.Glob(filepath.Join("testdata", "fixtures", "*.sse"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		sc.Buffer(nil, MaxEventSize)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
				f.Add(strings.TrimPrefix(data, " "))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data string) {
		for _, b := range []Backend{BackendTGI, BackendOpenAI, BackendOpenAICompletions, BackendOllama} {
			got, err := parserFor(b).parse([]byte(data))
			want, wantErr := newParser(b, unmarshalStd).parse([]byte(data))
			var se, wantSE *ServerError
			var me, wantME *MalformedEventError
			switch {
			case errors.As(wantErr, &wantSE) && (!errors.As(err, &se) || *se != *wantSE),
				errors.As(wantErr, &wantME) && !errors.As(err, &me),
				wantErr == nil && (err != nil || got != want):
				t.Fatalf("%s: %q:\n         got %+v, %v\nencoding/json %+v, %v", b, data, got, err, want, wantErr)
			}
		}
	})
}

// edgeEvents are the token events servers send, and data on the edges of
// JSON and of what encoding/json accepts.
var edgeEvents = []string{
	`{"index":1,"token":{"id":5,"text":" is","logprob":-0.1,"special":false},"generated_text":null,"details":null}`,
	`{"token":{"text":"\u00e9\ud83d\ude00\n","special":true,"id":-3}}`,
	`{"token":{"text":"a","special":false,"id":1},"x":[1,2,{"y":"z"}]}`,
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" is"},"logprobs":null,"finish_reason":null}]}`,
	`{"id":"c","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" is","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}`,
	`{"model":"m","created_at":"2024-08-04T08:52:19.385406455-07:00","response":" is","done":false}`,
	"\ufeff{\"token\":{\"text\":\"x\",\"special\":false}}",
	`{"t\u006fken":{"text":"x","special":false}}`,
	`{"to\u212aen":{"text":"x","special":false}}`,
	`{"token":{"text":"x","\u017fpecial":true}}`,
	`{"token":{"text":"x","special":false},"generated_text":null,"Generated_text":"x"}`,
	`{"token":{"text":"x","special":true},"token":{"text":"y"}}`,
	`{"token":{"text":"x"},"token":null}`,
	`{"token":{"id":1.,"text":"x","special":false}}`,
	`{"token":{"id":-0,"text":"x","special":false}}`,
	`{"token":{"id":1e999,"text":"x","special":false}}`,
	`{"token":{"id":-,"text":"x","special":false}}`,
	`{"token":{"id":.5,"text":"x","special":false}}`,
	`{"token":{"id":+1,"text":"x","special":false}}`,
	`{"token":{"id":01,"text":"x","special":false}}`,
	"{\"token\":{\"text\":\"x\",\"special\":false}}\x00",
	"{\"token\":{\"text\":\"x\x01\",\"special\":false}}",
	"{\"token\":{\"text\":\"\xff\xfe\",\"special\":false}}",
	"{\"token\":{\"text\":\"x\",\"special\":false}\v}",
	`{"token":{"text":"x","special":false},}`,
	`{"token":{"text":"x","special":false},"a":[1,]}`,
	`{"token":{"text":"x","special":false},"a":{"b":}}`,
	`{"token":{"text":"x","special":false},"a":tru}`,
	`{"token":{"text":"x","special":false},"a":nul}`,
	`{"token":{"text":"x","special":nullx}}`,
	`{"token":{"text":"x","special":false},"a":"\x"}`,
	`{"token":{"text":"x","special":false},"a":"\u12"}`,
	`{"token":{"text":"x","special":false},"a":'x'}`,
	`{"token":{"text":"x","special":false},a:1}`,
	`{"token":{"text":"\/\b\f\r\t","special":false}}`,
	`{"token":{"text":"\ud83d\ude00\ud83d","special":false}}`,
	`{"token":{"text":"\ud800\u0041","special":false}}`,
	`{"token":{"text":"x","special":null}}`,
	`{"token":{"text":null,"special":false}}`,
	`{"token":{"text":"x","special":"false"}}`,
	`{"token":null}`,
	`{"token":[]}`,
	`{"token":{}}`,
	`{"token":5,"generated_text":"x"}`,
	`{"":1,"token":{"text":"x"}}`,
	`{"token":{"text":"x","special":false},"error_type":5}`,
	`{"token":{"text":"x","special":false},"error_type":"x","error":null}`,
	`{"error":"boom","error_type":"generation","token":{"text":5}}`,
	`{"choices":[{"delta":null,"text":null}]}`,
	`{"choices":[{"delta":{"content":"x"}}],"error":null}`,
	`{"choices":[{"delta":{"content":"x"}}],"error":false}`,
	`{"choices":[{"delta":{"content":"x"}}],"usage":{}}`,
	`{"choices":[{"delta":{"content":"x"}}],"usage":{"completion_tokens":1.5}}`,
	`{"choices":[null]}`,
	`{"choices":null}`,
	`{"choices":[{"delta":{"content":"x"},"logprobs":{}}]}`,
	`{"choices":[{"delta":{"content":"\ufffd"},"logprobs":{"content":[{"bytes":[195,300,-1]}]}}]}`,
	`{"choices":[{"delta":{"content":"x"},"finish_reason":"eos_token"},{"text":7}]}`,
	`{"response":"x","done":false,"eval_count":1.5}`,
	`{"response":"x","done":false,"eval_count":null}`,
	`{"response":"x","done":true,"eval_count":99999999999999999999}`,
	`{"response":"x","done":null,"done_reason":5}`,
	`{"response":"x","done":"false"}`,
	` {"response":"x"} `,
	"\t{\"response\":\"x\"}\r\n",
	`{"response":"x"}{}`,
	`{"response":"x"`,
	`[DONE]`,
	`null`,
	`"x"`,
	`[]`,
	``,
}

// Decoding the event of an ASCII token allocates nothing: its text is a
// substring of the event.
func TestTokenEventsDoNotAllocate(t *testing.T) {
	for _, tt := range []struct {
		backend Backend
		data    string
	}{
		{BackendTGI, `{"index":1,"token":{"id":5,"text":" is","logprob":-0.1,"special":false},"generated_text":null,"details":null}`},
		{BackendOpenAI, `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" is"},"logprobs":null,"finish_reason":null}]}`},
		{BackendOpenAICompletions, `{"id":"c","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" is","logprobs":null,"finish_reason":null}],"usage":null}`},
		{BackendOllama, `{"model":"m","created_at":"2024-08-04T08:52:19.385406455-07:00","response":" is","done":false}`},
	} {
		p, data := parserFor(tt.backend), []byte(tt.data)
		if allocs := testing.AllocsPerRun(100, func() {
			if ev, err := p.parse(data); err != nil || ev.token.Text != " is" {
				t.Fatalf("%s: %+v %v", tt.backend, ev, err)
			}
		}); allocs != 0 {
			t.Errorf("%s: %.0f allocations an event", tt.backend, allocs)
		}
	}
}

// What outlives an event, its error or an unknown finish reason, is a copy:
// the decoders reuse the event's buffer for the next one.
func TestParsedValuesOutliveTheirData(t *testing.T) {
	for _, tt := range []struct {
		backend Backend
		data    string
	}{
		{BackendTGI, `{"error":"boom","error_type":"generation"}`},
		{BackendTGI, `{"token":{"text":"x","special":false},"generated_text":"x","details":{"finish_reason":"content_filter"}}`},
		{BackendTGI, `{"token":`},
		{BackendOpenAI, `{"choices":[{"delta":{},"finish_reason":"content_filter"}]}`},
		{BackendOpenAI, `{"error":{"message":"overloaded","type":"server_error"}}`},
		{BackendOpenAICompletions, `{"error":"overloaded"}`},
		{BackendOllama, `{"error":"model 'm' not found"}`},
		{BackendOllama, `{"response":"","done":true,"done_reason":"content_filter"}`},
	} {
		data := []byte(tt.data)
		ev, err := parserFor(tt.backend).parse(data)
		before := fmt.Sprintf("%q %v", ev.reason, err)
		for i := range data {
			data[i] = '#'
		}
		if after := fmt.Sprintf("%q %v", ev.reason, err); after != before {
			t.Errorf("%s %s: %s became %s when the data was overwritten", tt.backend, tt.data, before, after)
		}
	}
}
