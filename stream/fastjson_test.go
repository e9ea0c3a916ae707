package stream

import (
	"encoding/json"
	"testing"
)

func TestParseTGIToken(t *testing.T) {
	tests := []struct {
		in   string
		want Token
		ok   bool
	}{
		{`{"index":1,"token":{"id":5,"text":" is","logprob":-0.1,"special":false},"generated_text":null,"details":null}`, Token{Text: " is"}, true},
		{`{"token":{"id":1,"text":"</s>","logprob":-0.03,"special":true},"generated_text":null}`, Token{Text: "</s>", Special: true}, true},
		{` { "token" : { "text" : "a\n\"b\"\u00e9\ud83d\ude00" , "special" : false , "id" : 7 } } `, Token{Text: "a\n\"b\"é😀"}, true},
		{`{"token":{"id":2,"text":"日本","logprob":-1e-3,"special":false,"extra":[1,{"x":null}]},"top_tokens":[]}`, Token{Text: "日本"}, true},
		// Not the fast path's business: decoded by encoding/json instead.
		{`{"token":{"id":2,"text":"x","special":false},"generated_text":"x","details":{"finish_reason":"length"}}`, Token{}, false},
		{`{"error":"boom","error_type":"generation"}`, Token{}, false},
		{`{"token":{"id":01,"text":"x","special":false}}`, Token{}, false},
		{`{"Token":{"id":1,"text":"x","special":false}}`, Token{}, false},
		{`{"token":{"id":1,"text":"x","special":false}} trailing`, Token{}, false},
		{`{"token":{"id":1,"text":"x"}}`, Token{}, false},
		{`{"token":{"id":1,"text":"x","special":false},}`, Token{}, false},
	}
	for _, tt := range tests {
		got, ok := parseTGIToken(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseTGIToken(%s) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// The fast path must agree with encoding/json wherever it answers.
func FuzzTGIFastPath(f *testing.F) {
	f.Add(`{"index":1,"token":{"id":5,"text":" is","logprob":-0.1,"special":false},"generated_text":null,"details":null}`)
	f.Add(`{"token":{"text":"\u00e9\ud83d\ude00\n","special":true,"id":-3}}`)
	f.Add(`{"token":{"text":"a","special":false,"id":1},"x":[1,2,{"y":"z"}]}`)
	f.Fuzz(func(t *testing.T, data string) {
		tok, ok := parseTGIToken(data)
		if !ok {
			return
		}
		var ev tgiEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", data, err)
		}
		if ev.Token == nil || ev.GeneratedText != nil || ev.Error != nil || ev.Details != nil {
			t.Fatalf("fast path accepted a non-token event %q", data)
		}
		want := Token{Text: ev.Token.Text, Special: ev.Token.Special}
		if tok != want {
			t.Fatalf("%q: fast %+v, encoding/json %+v", data, tok, want)
		}
	})
}
