//go:build unix

// End-to-end tests of the Neovim plugin: a real headless Neovim loads
// editors/neovim from its runtimepath, starts genls through
// require('genls').setup, runs :GenlsGenerate / :GenlsCancel, and writes the
// buffer; the written bytes must equal the original text plus exactly the
// scripted tokens at the right place.
package neovim_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/genls/genls/editors/e2etest"
	"github.com/genls/genls/stream/streamtest"
)

// A scenario is one Neovim session.
type scenario struct {
	text     string        // the file's content before the session
	name     string        // run.lua scenario: range, here, cancel
	lines    string        // range for :GenlsGenerate, e.g. "1,1"
	cursor   string        // "row,col" (1-based row, byte column) for "here"
	selected string        // "from,to" byte columns of a Visual selection on line 1
	cancelAt string        // text to wait for before :GenlsCancel
	typeAt   string        // text to wait for before typing (scenario "typing")
	timeout  time.Duration // of the whole editor session
	// maxEdits and maxBytes (0: no bound) end the session early, as a
	// runaway, once Neovim has received more workspace/applyEdit requests
	// or the buffer holds more bytes than that.
	maxEdits int
	maxBytes int
}

// report is what test/run.lua writes.
type report struct {
	Nvim           string   `json:"nvim"`
	Code           int      `json:"code"`
	Error          string   `json:"error"`
	Commands       bool     `json:"commands"`
	OffsetEncoding string   `json:"offset_encoding"`
	ProgressBegin  bool     `json:"progress_begin"`
	ProgressEnd    bool     `json:"progress_end"`
	Finished       bool     `json:"finished"`
	Statuses       []string `json:"statuses"`
	StatusAfter    string   `json:"status_after"`
	ServerStopped  bool     `json:"server_stopped"`
	Changes        int      `json:"changes"`
	TypedAtChanges int      `json:"typed_at_changes"`
	ApplyEdits     int      `json:"apply_edits"`
	Runaway        string   `json:"runaway"`
	FileFormat     string   `json:"fileformat"`
	Bytes          int      `json:"bytes"`
	Messages       []struct {
		Msg   string `json:"msg"`
		Level int    `json:"level"`
	} `json:"messages"`
}

// run starts Neovim on a temporary copy of sc.text with genls pointed at
// srv, and returns the bytes Neovim wrote and its report.
func run(t *testing.T, srv *streamtest.Server, sc scenario) (string, report) {
	t.Helper()
	nvim := e2etest.LookPath(t, "nvim", "apt-get install neovim")
	bin := e2etest.Genls(t)
	pluginDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "work", "sample.txt")
	out := filepath.Join(dir, "out.txt")
	result := filepath.Join(dir, "result.json")
	serverLog := filepath.Join(dir, "genls.log")
	state := filepath.Join(dir, "xdg")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(sc.text), 0o644); err != nil {
		t.Fatal(err)
	}
	settings, err := json.Marshal(map[string]any{
		"endpoint": map[string]any{"url": srv.URL, "backend": "tgi"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sc.timeout == 0 {
		sc.timeout = 60 * time.Second
	}

	ctx, cancel := context.WithTimeout(context.Background(), sc.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n",
		"--cmd", "set rtp^="+pluginDir,
		"-c", "luafile "+filepath.Join(pluginDir, "test", "run.lua"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(state, "config"),
		"XDG_DATA_HOME="+filepath.Join(state, "data"),
		"XDG_STATE_HOME="+filepath.Join(state, "state"),
		"XDG_CACHE_HOME="+filepath.Join(state, "cache"),
		"GENLS_TEST_BIN="+bin,
		"GENLS_TEST_FILE="+file,
		"GENLS_TEST_OUT="+out,
		"GENLS_TEST_RESULT="+result,
		"GENLS_TEST_SERVER_LOG="+serverLog,
		"GENLS_TEST_SETTINGS="+string(settings),
		"GENLS_TEST_SCENARIO="+sc.name,
		"GENLS_TEST_RANGE="+sc.lines,
		"GENLS_TEST_CURSOR="+sc.cursor,
		"GENLS_TEST_SELECT="+sc.selected,
		"GENLS_TEST_CANCEL_AFTER="+sc.cancelAt,
		"GENLS_TEST_TYPE_AFTER="+sc.typeAt,
		"GENLS_TEST_TIMEOUT_MS="+strconv.FormatInt((sc.timeout/3).Milliseconds(), 10),
		"GENLS_TEST_MAX_EDITS="+strconv.Itoa(sc.maxEdits),
		"GENLS_TEST_MAX_BYTES="+strconv.Itoa(sc.maxBytes),
		"GENLS_TEST_NVIM_LOGLEVEL=DEBUG",
	)
	// Neovim and the genls it spawns share a process group, killed as a
	// whole on timeout and again after exit so that nothing outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var output strings.Builder
	cmd.Stdout = &output
	cmd.Stderr = &output
	start := time.Now()
	runErr := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	t.Logf("nvim session: %v", time.Since(start).Round(time.Millisecond))

	var rep report
	data, readErr := os.ReadFile(result)
	if readErr == nil {
		readErr = json.Unmarshal(data, &rep)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("nvim output:\n%s", output.String())
		t.Logf("report: %s", data)
		logFile(t, "nvim lsp.log", filepath.Join(state, "state", "nvim", "lsp.log"))
		logFile(t, "nvim lsp.log", filepath.Join(state, "cache", "nvim", "lsp.log"))
		logFile(t, "genls log", serverLog)
	})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("nvim did not finish within %v", sc.timeout)
	}
	if runErr != nil {
		t.Fatalf("nvim: %v", runErr)
	}
	if readErr != nil {
		t.Fatalf("reading the report: %v", readErr)
	}
	if rep.Code != 0 {
		t.Fatalf("run.lua failed: %s", rep.Error)
	}
	if !rep.Commands {
		t.Errorf(":GenlsGenerate / :GenlsCancel were not created on attach")
	}
	if !rep.ServerStopped {
		t.Errorf("genls did not stop when the client was stopped")
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the buffer was not written: %v", err)
	}
	return string(got), rep
}

func logFile(t *testing.T, what, path string) {
	if data, err := os.ReadFile(path); err == nil {
		t.Logf("%s (%s):\n%s", what, path, data)
	}
}

func checkProgress(t *testing.T, rep report) {
	t.Helper()
	if !rep.ProgressBegin || !rep.ProgressEnd || !rep.Finished {
		t.Errorf("progress: begin=%v end=%v finished=%v; want all true", rep.ProgressBegin, rep.ProgressEnd, rep.Finished)
	}
	if rep.StatusAfter != "" {
		t.Errorf("require('genls').status() after the end = %q, want empty", rep.StatusAfter)
	}
}

func TestGenerateRange(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(5*time.Millisecond, "length", ",", " world", "\n", "日本", "é!"))
	got, rep := run(t, srv, scenario{
		text:  "Hello\nsecond line\n",
		name:  "range",
		lines: "1,1",
	})
	if want := "Hello, world\n日本é!\nsecond line\n"; got != want {
		t.Errorf("buffer = %q, want %q", got, want)
	}
	checkProgress(t, rep)
	if len(rep.Statuses) == 0 {
		t.Errorf("require('genls').status() never reported progress")
	}
	if p := prompt(srv); !strings.Contains(p, "Hello") {
		t.Errorf("endpoint request strings = %q, want a prompt with the selected text", p)
	}
}

func TestGenerateMultiLineRange(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", " → ok", "\n"))
	got, rep := run(t, srv, scenario{
		text:  "alpha\nbeta\ngamma\n",
		name:  "range",
		lines: "1,2",
	})
	if want := "alpha\nbeta → ok\n\ngamma\n"; got != want {
		t.Errorf("buffer = %q, want %q", got, want)
	}
	checkProgress(t, rep)
	if p := prompt(srv); !strings.Contains(p, "alpha\nbeta") {
		t.Errorf("endpoint request strings = %q, want a prompt with both selected lines", p)
	}
}

func TestGenerateVisualSelection(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(0, "length", " crème"))
	text := "un café noir\n"
	// v from the "c" to the "é" of café: the selection ends inside the line,
	// on a two-byte character.
	from, to := strings.Index(text, "café"), strings.Index(text, "é")
	got, rep := run(t, srv, scenario{
		text:     text,
		name:     "visual",
		selected: strconv.Itoa(from) + "," + strconv.Itoa(to),
	})
	if want := "un café crème noir\n"; got != want {
		t.Errorf("buffer = %q, want %q", got, want)
	}
	checkProgress(t, rep)
	if p := prompt(srv); !strings.Contains(p, "café") || strings.Contains(p, "noir") || strings.Contains(p, "un ") {
		t.Errorf("endpoint request strings = %q, want a prompt of the selected characters only", p)
	}
}

func TestGenerateHere(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(5*time.Millisecond, "length", " au", " lait ☕"))
	text := "Ünïcode: café and more\nnext\n"
	// Normal-mode cursor on the "é" of café: "Generate here" continues
	// right after the character under the cursor.
	col := strings.Index(text, "é")
	got, rep := run(t, srv, scenario{
		text:   text,
		name:   "here",
		cursor: "1," + strconv.Itoa(col),
	})
	if want := "Ünïcode: café au lait ☕ and more\nnext\n"; got != want {
		t.Errorf("buffer = %q, want %q", got, want)
	}
	checkProgress(t, rep)
	if p := prompt(srv); !strings.Contains(p, "Ünïcode: café") || strings.Contains(p, "and more") {
		t.Errorf("endpoint request strings = %q, want a prompt of the text before the cursor", p)
	}
}

// TestTypingWhileGenerating edits the buffer above and below the insertion
// point while tokens stream in: with debounce_text_changes = 0 the server
// sees each change at once and keeps inserting at the right place.
func TestTypingWhileGenerating(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(40*time.Millisecond, "length", " one", " two", " three", " four", " five"))
	got, rep := run(t, srv, scenario{
		text:   "Hello\nlast line\n",
		name:   "typing",
		lines:  "1,1",
		typeAt: "Hello one",
	})
	if want := "typed above\nHello one two three four five\nlast line and below\n"; got != want {
		t.Errorf("buffer = %q, want %q", got, want)
	}
	checkProgress(t, rep)
	// typed_at_changes counts the changes up to and including the typing.
	if rep.Changes <= rep.TypedAtChanges {
		t.Errorf("no generated text arrived after the typing (%d changes, typed after %d)", rep.Changes, rep.TypedAtChanges)
	}
}

// TestLineEndings streams generated line breaks into files whose line
// endings differ from the model's. Neovim applies an edit's "\r\n" and lone
// "\r" as "\n", and describes a fileformat=dos buffer's changes to the server
// with "\r\n", so the server cannot recognise its own edits by their bytes;
// a server that re-sends text it does not recognise fills the buffer with
// copies, which the bounds on edits and size turn into a quick failure.
func TestLineEndings(t *testing.T) {
	tests := []struct {
		name   string
		text   string   // the file on disk
		ff     string   // the fileformat Neovim must detect
		tokens []string // the model's stream
		want   string   // the written file
	}{{
		name:   "crlf file, lf tokens",
		text:   "def fib(n):\r\n    pass\r\n",
		ff:     "dos",
		tokens: []string{"\n", "    if", " n < 2:", "\n", "        return n", "\n", "    return fib(n-1) + fib(n-2)"},
		want:   "def fib(n):\r\n    if n < 2:\r\n        return n\r\n    return fib(n-1) + fib(n-2)\r\n    pass\r\n",
	}, {
		name:   "crlf file, crlf tokens",
		text:   "def fib(n):\r\n    pass\r\n",
		ff:     "dos",
		tokens: []string{"\r\n", "    if n < 2:\r\n", "        return n"},
		want:   "def fib(n):\r\n    if n < 2:\r\n        return n\r\n    pass\r\n",
	}, {
		name: "lf file, crlf tokens",
		text: "ATTRS = {\n}\n",
		ff:   "unix",
		// "__':\r\n" is a real token of llama.cpp's vocabularies.
		tokens: []string{"\r\n", "    '", "__", "init", "__':\r\n", "        1,"},
		want:   "ATTRS = {\n    '__init__':\n        1,\n}\n",
	}, {
		name:   "lf file, cr and lf in separate tokens",
		text:   "def fib(n):\n    pass\n",
		ff:     "unix",
		tokens: []string{"\r", "\n", "    if n < 2:\r", "\n        return n"},
		want:   "def fib(n):\n    if n < 2:\n        return n\n    pass\n",
	}, {
		name:   "lf file, lone cr",
		text:   "def fib(n):\n    pass\n",
		ff:     "unix",
		tokens: []string{"\r    if n < 2:", "\r        return n"},
		want:   "def fib(n):\n    if n < 2:\n        return n\n    pass\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.TGI(5*time.Millisecond, "length", tt.tokens...))
			got, rep := run(t, srv, scenario{
				text:     tt.text,
				name:     "range",
				lines:    "1,1",
				timeout:  20 * time.Second,
				maxEdits: 4*len(tt.tokens) + 10,
				maxBytes: 2 * len(tt.want),
			})
			if rep.FileFormat != tt.ff {
				t.Fatalf("Neovim read the file as fileformat=%s, want %s", rep.FileFormat, tt.ff)
			}
			if got != tt.want {
				t.Errorf("file = %q (%d bytes, %d workspace/applyEdit requests), want %q", clip(got), len(got), rep.ApplyEdits, tt.want)
			}
			if rep.Runaway != "" {
				t.Fatalf("runaway: %s", rep.Runaway)
			}
			if rep.ApplyEdits == 0 {
				t.Errorf("the harness counted no workspace/applyEdit requests, so it cannot bound them")
			}
			checkProgress(t, rep)
		})
	}
}

// clip shortens a runaway buffer for the failure message.
func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func TestCancel(t *testing.T) {
	hang := streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b").Chunks[:2], Hang: true}
	srv := streamtest.NewServer(t, hang)
	got, rep := run(t, srv, scenario{
		text:     "Hello\n",
		name:     "cancel",
		lines:    "1,1",
		cancelAt: "Helloab",
	})
	if want := "Helloab\n"; got != want {
		t.Errorf("buffer = %q, want %q", got, want)
	}
	if !rep.Finished || !rep.ProgressEnd {
		t.Errorf("after :GenlsCancel: progress end=%v finished=%v; want both", rep.ProgressEnd, rep.Finished)
	}
	if srv.Disconnects() == 0 && !srv.WaitDisconnect(5*time.Second) {
		t.Errorf("the endpoint request was not abandoned after :GenlsCancel")
	}
}

// prompt returns the strings of the last generation request's JSON body,
// joined, so that checks do not depend on how the body escapes text.
func prompt(srv *streamtest.Server) string {
	req, ok := srv.LastRequest()
	if !ok {
		return ""
	}
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			b.WriteString(v)
			b.WriteByte(0)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(req.JSON())
	return b.String()
}
