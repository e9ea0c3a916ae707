package lsp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
)

// FuzzServerMessages feeds arbitrary bytes to a server over a pipe: once as
// they are (headers and all), and once framed correctly as the body of a
// message after initialize. The server must not panic, and must not hang:
// once the client closes the connection, Serve returns within a bound. And
// after the framed body (unless it asked the server to shut down or exit), a
// well-formed request still gets its correct answer.
func FuzzServerMessages(f *testing.F) {
	f.Add([]byte(frame(rawInitialize)))
	f.Add([]byte(`{"jsonrpc":"2.0","id":2,"method":"textDocument/codeAction","params":{"textDocument":{"uri":"file:///a"},"range":{"start":{"line":0,"character":0},"end":{"line":0,"character":0}}}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///a","languageId":"go","version":1,"text":"x"}}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":3,"method":"workspace/executeCommand","params":{"command":"genls.generate","arguments":[{"uri":"file:///a","range":{"start":{"line":9,"character":9},"end":{"line":0,"character":0}}}]}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","method":"textDocument/didChange","params":{"textDocument":{"uri":"file:///a","version":2},"contentChanges":[{"range":{"start":{"line":5,"character":1},"end":{"line":0,"character":0}},"text":"y"}]}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":4,"method":"shutdown"}`))
	f.Add([]byte(`{"jsonrpc":"2.0","method":"exit"}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":5,"method":`))
	f.Add([]byte("Content-Length: 5\r\n\r\n{}{}{"))
	f.Add([]byte("Content-Length: -1\r\n\r\n"))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":6,"method":"shutdown"},{"jsonrpc":"2.0","method":"exit"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzServe(t, data, false)
		var framed bytes.Buffer
		framed.Write(frame(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{"window":{"workDoneProgress":true}},"initializationOptions":{"endpoint":{"url":"http://127.0.0.1:9","backend":"tgi"}}}}`))
		framed.Write(frame(`{"jsonrpc":"2.0","method":"initialized","params":{}}`))
		framed.Write(frame(`{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///a","languageId":"go","version":1,"text":"ab\ncd"}}}`))
		framed.Write(frame(string(data)))
		framed.Write(frame(rawPing(77)))
		answers := fuzzServe(t, framed.Bytes(), !bytes.Contains(data, []byte("exit")))
		if bytes.Contains(data, []byte("shutdown")) || bytes.Contains(data, []byte("exit")) {
			return
		}
		for _, m := range answers {
			if id, _ := m["id"].(float64); id == 77 && m["error"] == nil && m["result"] != nil {
				return
			}
		}
		t.Fatalf("after body %q, the request with id 77 got no correct answer; answers: %v", data, answers)
	})
}

// fuzzServe writes in to a fresh server, collects the responses it sends
// (when wait is set, until it answers the request with id 77 or a bound
// passes), closes the connection and checks that Serve returns.
func fuzzServe(t *testing.T, in []byte, wait bool) []map[string]any {
	clientSide, serverSide := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, Options{In: serverSide, Out: serverSide, Logger: zap.NewNop(), Version: "fuzz",
			Getenv: func(string) string { return "" }, HTTPClient: offlineHTTPClient()})
		serverSide.Close()
	}()
	c := &rawClient{t: t, conn: clientSide, msgs: make(chan map[string]any, 1024)}
	go c.readLoop()
	clientSide.SetWriteDeadline(time.Now().Add(2 * time.Second))
	clientSide.Write(in) // the server may stop reading early; that is fine
	var answers []map[string]any
	timeout := time.After(5 * time.Second)
collect:
	for wait {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				break collect // the server ended the connection
			}
			if m["method"] != nil {
				continue // a request or notification of the server's
			}
			answers = append(answers, m)
			if id, _ := m["id"].(float64); id == 77 {
				break collect
			}
		case <-timeout:
			break collect
		}
	}
	clientSide.Close()
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatalf("Serve did not return after the connection closed; input %q", in)
	}
	for range c.msgs { // drained once the pipe is closed
	}
	return answers
}

// offlineHTTPClient fails every request without touching the network, so
// whatever endpoint settings an input sets, nothing leaves the process.
func offlineHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nil, errors.New("fuzzing: no network")
		},
	}}
}
