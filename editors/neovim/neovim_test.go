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
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/genls/genls/editors/e2etest"
	"github.com/genls/genls/stream/streamtest"
)

// A scenario is one Neovim session.
type scenario struct {
	text     string         // the file's content before the session
	fileName string         // the file's name (default sample.txt)
	buffer   string         // "enew": the text goes into an unnamed buffer instead
	setup    string         // how genls starts: setup (default), setup-nosettings, start-empty
	steps    []string       // what the session does once attached: gen (default), undo, actions, health
	settings map[string]any // genls settings for setup (default: the fake endpoint, tgi)
	staleAt  int            // make the Nth workspace/applyEdit request stale
	name     string         // how gen runs: range, visual, here, typing, cancel
	lines    string         // range for :GenlsGenerate, e.g. "1,1"
	cursor   string         // "row,col" (1-based row, byte column) for "here"
	selected string         // "from,to" byte columns of a Visual selection on line 1
	cancelAt string         // text to wait for before :GenlsCancel
	typeAt   string         // text to wait for before typing (scenario "typing")
	typeKeys string         // the keys typed (default: a line above, text at the end)
	// instruction is what the steps rewrite, rewrite-inline, gen-ask and
	// gen-inline give as the instruction (typed into vim.ui.input, or
	// after the command).
	instruction string
	timeout     time.Duration // of the whole editor session
	// maxEdits and maxBytes (0: no bound) end the session early, as a
	// runaway, once Neovim has received more workspace/applyEdit requests
	// or the buffer holds more bytes than that.
	maxEdits int
	maxBytes int
}

// stepReport is what test/run.lua saw after one step.
type stepReport struct {
	Step       string   `json:"step"`
	Text       string   `json:"text"`        // the buffer's lines joined by "\n"
	Messages   string   `json:"messages"`    // :messages during the step
	Notified   []string `json:"notified"`    // vim.notify during the step
	Kinds      []string `json:"kinds"`       // actions: the code action kinds offered
	Lines      []string `json:"lines"`       // health: the report
	Marks      []mark   `json:"marks"`       // the genls diagnostics after the step
	ApplyEdits int      `json:"apply_edits"` // workspace/applyEdit requests during the step
	Result     *int     `json:"result"`      // accept, discard, regenerate: the server's answer
	Arguments  string   `json:"arguments"`   // and the command's arguments, as JSON
	Lenses     []lens   `json:"lenses"`      // lens: the code lenses
}

// mark is a genls diagnostic as vim.diagnostic.get returns it (0-based
// lines, byte columns).
type mark struct {
	Lnum     int    `json:"lnum"`
	Col      int    `json:"col"`
	EndLnum  int    `json:"end_lnum"`
	EndCol   int    `json:"end_col"`
	Severity int    `json:"severity"`
	Message  string `json:"message"`
	Code     string `json:"code"`
	Tags     []int  `json:"tags"` // the LSP diagnostic tags (user_data.lsp.tags)
}

// lens is a code lens as vim.lsp.codelens.get returns it.
type lens struct {
	Line    int    `json:"line"`
	Title   string `json:"title"`
	Command string `json:"command"`
}

// report is what test/run.lua writes.
type report struct {
	Nvim            string       `json:"nvim"`
	Code            int          `json:"code"`
	Error           string       `json:"error"`
	Commands        bool         `json:"commands"`
	OffsetEncoding  string       `json:"offset_encoding"`
	ProgressBegin   bool         `json:"progress_begin"`
	ProgressEnd     bool         `json:"progress_end"`
	Finished        bool         `json:"finished"`
	Statuses        []string     `json:"statuses"`
	StatusAfter     string       `json:"status_after"`
	ServerStopped   bool         `json:"server_stopped"`
	Changes         int          `json:"changes"`
	TypedAtChanges  int          `json:"typed_at_changes"`
	ApplyEdits      int          `json:"apply_edits"`
	Runaway         string       `json:"runaway"`
	FileFormat      string       `json:"fileformat"`
	FileType        string       `json:"filetype"`
	InitOptions     string       `json:"init_options"`
	Bytes           int          `json:"bytes"`
	RejectedEdits   int          `json:"rejected_edits"`
	ProgressEnds    int          `json:"progress_ends"`
	AttachedUnnamed int          `json:"attached_unnamed"`
	Prompts         []string     `json:"prompts"` // what vim.ui.input was asked
	Steps           []stepReport `json:"steps"`
	Messages        []struct {
		Msg   string `json:"msg"`
		Level int    `json:"level"`
	} `json:"messages"`
	// GenerateMS and LastChangeMS are when the last generation began
	// (:GenlsGenerate) and when the buffer last changed, in milliseconds on
	// Neovim's monotonic clock.
	GenerateMS   float64 `json:"generate_ms"`
	LastChangeMS float64 `json:"last_change_ms"`
}

// run starts Neovim on a temporary copy of sc.text with genls pointed at
// srv, and returns the bytes Neovim wrote and its report.
func run(t testing.TB, srv *streamtest.Server, sc scenario) (string, report) {
	t.Helper()
	nvim := e2etest.LookPath(t, "nvim", "apt-get install neovim")
	bin := e2etest.Genls(t)
	pluginDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}

	if sc.fileName == "" {
		sc.fileName = "sample.txt"
	}
	// srv is nil when sc.settings name another endpoint (a real server).
	url := ""
	if srv != nil {
		url = srv.URL
	}
	ws := e2etest.NewWorkspace(t, sc.fileName, sc.text, sc.settings, url)
	dir, file, out, result, serverLog, settings := ws.Dir, ws.File, ws.Out, ws.Result, ws.ServerLog, ws.Settings
	state := filepath.Join(dir, "xdg")
	if sc.timeout == 0 {
		sc.timeout = 60 * time.Second
	}

	output, runErr := runNvim(t, nvim, dir, filepath.Join(pluginDir, "test", "run.lua"), sc.timeout,
		"GENLS_TEST_BIN="+bin,
		"GENLS_TEST_FILE="+file,
		"GENLS_TEST_OUT="+out,
		"GENLS_TEST_RESULT="+result,
		"GENLS_TEST_SERVER_LOG="+serverLog,
		"GENLS_TEST_SETTINGS="+settings,
		"GENLS_TEST_SCENARIO="+sc.name,
		"GENLS_TEST_SETUP="+sc.setup,
		"GENLS_TEST_BUFFER="+sc.buffer,
		"GENLS_TEST_STEPS="+strings.Join(sc.steps, ","),
		"GENLS_TEST_STALE_AT="+strconv.Itoa(sc.staleAt),
		"GENLS_TEST_RANGE="+sc.lines,
		"GENLS_TEST_CURSOR="+sc.cursor,
		"GENLS_TEST_SELECT="+sc.selected,
		"GENLS_TEST_CANCEL_AFTER="+sc.cancelAt,
		"GENLS_TEST_TYPE_AFTER="+sc.typeAt,
		"GENLS_TEST_TYPE_KEYS="+sc.typeKeys,
		"GENLS_TEST_INSTRUCTION="+sc.instruction,
		"GENLS_TEST_TIMEOUT_MS="+strconv.FormatInt((sc.timeout/3).Milliseconds(), 10),
		"GENLS_TEST_MAX_EDITS="+strconv.Itoa(sc.maxEdits),
		"GENLS_TEST_MAX_BYTES="+strconv.Itoa(sc.maxBytes),
		"GENLS_TEST_NVIM_LOGLEVEL=DEBUG",
	)

	var rep report
	data, readErr := os.ReadFile(result)
	if readErr == nil {
		readErr = json.Unmarshal(data, &rep)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("nvim output:\n%s", output)
		t.Logf("report: %s", data)
		e2etest.LogFile(t, "nvim lsp.log", filepath.Join(state, "state", "nvim", "lsp.log"))
		e2etest.LogFile(t, "nvim lsp.log", filepath.Join(state, "cache", "nvim", "lsp.log"))
		e2etest.LogFile(t, "genls log", serverLog)
	})
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
		t.Errorf(":GenlsGenerate, :GenlsCancel, :GenlsAccept, :GenlsDiscard and :GenlsRegenerate were not all created on attach")
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

// runNvim runs script in a headless Neovim with editors/neovim first in
// 'runtimepath', in dir, with XDG directories of its own under dir and env
// added to the environment, and returns what it printed.
func runNvim(t testing.TB, nvim, dir, script string, timeout time.Duration, env ...string) (string, error) {
	t.Helper()
	pluginDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "xdg")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n",
		"--cmd", "set rtp^="+pluginDir,
		"-c", "luafile "+script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(state, "config"),
		"XDG_DATA_HOME="+filepath.Join(state, "data"),
		"XDG_STATE_HOME="+filepath.Join(state, "state"),
		"XDG_CACHE_HOME="+filepath.Join(state, "cache"),
		// Nothing may reach the internet, even a session without settings
		// that falls back to the default endpoint.
		"HTTPS_PROXY=http://127.0.0.1:9",
		"HTTP_PROXY=http://127.0.0.1:9",
		"NO_PROXY=127.0.0.1",
	)
	cmd.Env = append(cmd.Env, env...)
	output, err := e2etest.RunSession(t, "nvim", cmd)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("did not finish within %v", timeout)
	}
	return output, err
}

func checkProgress(t testing.TB, rep report) {
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
		// genls turns U+2028, U+2029 and U+0085 into line breaks, drops NUL
		// and keeps other control characters such as ESC.
		name:   "lf file, unicode line separators, nul and esc",
		text:   "Hello\nnext\n",
		ff:     "unix",
		tokens: []string{"a\u2028b", "\u0085c", "d\x00e", "\x1bf", "\x00\x1bg"},
		want:   "Helloa\nb\ncde\x1bf\x1bg\nnext\n",
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
				t.Errorf("file = %q (%d bytes, %d workspace/applyEdit requests), want %q", e2etest.Clip(got), len(got), rep.ApplyEdits, tt.want)
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

// words returns n tokens " w001", " w002", … and their concatenation.
func words(n int) ([]string, string) {
	toks := make([]string, n)
	for i := range toks {
		toks[i] = fmt.Sprintf(" w%03d", i+1)
	}
	return toks, strings.Join(toks, "")
}

// quiet fails the test when a step printed anything: a generation must not
// fill the message area (:messages) or notify.
func quiet(t *testing.T, st stepReport) {
	t.Helper()
	if strings.TrimSpace(st.Messages) != "" || len(st.Notified) > 0 {
		t.Errorf("step %s printed :messages %q and notified %q; want nothing", st.Step, st.Messages, st.Notified)
	}
}

// TestUndo checks that each generation is one undo block, whatever the
// number of edits, that the user's own changes during a stream stay undo
// steps of their own, and that undoing a generation and generating again
// works. Each step's buffer text (lines joined by "\n") is compared.
func TestUndo(t *testing.T) {
	many, manyText := words(200)
	tests := []struct {
		name     string
		text     string
		scenario string // how gen runs
		typeAt   string
		typeKeys string
		scripts  []streamtest.Script // one per gen step
		steps    []string
		want     []string // the text after each step
		minEdits int      // at least this many workspace/applyEdit requests
	}{{
		// 200 tokens 10 ms apart: over 100 edits even on a loaded machine,
		// where edits carry more tokens each.
		name:     "one undo removes a 200-token generation of over 100 edits, which prints nothing",
		text:     "Hello\nnext\n",
		scripts:  []streamtest.Script{streamtest.TGI(10*time.Millisecond, "length", many...)},
		steps:    []string{"gen", "undo"},
		want:     []string{"Hello" + manyText + "\nnext", "Hello\nnext"},
		minEdits: 100,
	}, {
		name:     "typing during the stream is not merged into the generation",
		text:     "Hello\nlast line\n",
		scenario: "typing",
		typeAt:   "Hello one",
		scripts:  []streamtest.Script{streamtest.TGI(40*time.Millisecond, "length", " one", " two", " three", " four")},
		steps:    []string{"gen", "undo", "undo", "undo", "undo"},
		want: []string{
			"typed above\nHello one two three four\nlast line and below",
			"typed above\nHello one\nlast line and below",
			"typed above\nHello one\nlast line",
			"Hello one\nlast line",
			"Hello\nlast line",
		},
	}, {
		// After the user undoes their own change, seq_cur is back to what
		// it was after genls's last edit, but :undojoin would fail (E790).
		name:     "the user undoes their own typing during the stream",
		text:     "Hello\nlast line\n",
		scenario: "typing",
		typeAt:   "Hello one",
		typeKeys: "ggOtyped above<Esc>u",
		scripts:  []streamtest.Script{streamtest.TGI(40*time.Millisecond, "length", " one", " two", " three", " four")},
		steps:    []string{"gen", "undo", "undo"},
		want: []string{
			"Hello one two three four\nlast line",
			"Hello one\nlast line",
			"Hello\nlast line",
		},
	}, {
		name: "undo right after a generation, then generate again",
		text: "Hello\n",
		scripts: []streamtest.Script{
			streamtest.TGI(2*time.Millisecond, "length", " one", " two", " three"),
			streamtest.TGI(2*time.Millisecond, "length", " again", " and again"),
		},
		steps: []string{"gen", "undo", "gen", "undo"},
		want:  []string{"Hello one two three", "Hello", "Hello again and again", "Hello"},
	}, {
		name: "two generations are two undo steps",
		text: "Hello\n",
		scripts: []streamtest.Script{
			streamtest.TGI(2*time.Millisecond, "length", " one", " two"),
			streamtest.TGI(2*time.Millisecond, "length", " three", " four"),
		},
		steps: []string{"gen", "gen", "undo", "undo"},
		want:  []string{"Hello one two", "Hello one two three four", "Hello one two", "Hello"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.Script{Status: 500})
			srv.Push(tt.scripts...)
			name := tt.scenario
			if name == "" {
				name = "range"
			}
			_, rep := run(t, srv, scenario{
				text:     tt.text,
				name:     name,
				lines:    "1,1",
				typeAt:   tt.typeAt,
				typeKeys: tt.typeKeys,
				steps:    tt.steps,
				timeout:  30 * time.Second,
			})
			checkProgress(t, rep)
			if len(rep.Steps) != len(tt.steps) {
				t.Fatalf("%d steps reported, want %d", len(rep.Steps), len(tt.steps))
			}
			for i, st := range rep.Steps {
				if st.Text != tt.want[i] {
					t.Errorf("after step %d (%s): buffer = %q, want %q", i+1, st.Step, e2etest.Clip(st.Text), e2etest.Clip(tt.want[i]))
				}
				if st.Step == "gen" {
					quiet(t, st)
				}
			}
			if rep.ApplyEdits < tt.minEdits {
				t.Errorf("%d workspace/applyEdit requests, want at least %d", rep.ApplyEdits, tt.minEdits)
			}
			t.Logf("%d workspace/applyEdit requests", rep.ApplyEdits)
		})
	}
}

// lines returns n tokens " w001", " w002", …, every tenth a line break
// instead, and their concatenation.
func lines(n int) ([]string, string) {
	toks, _ := words(n)
	for i := 9; i < n; i += 10 {
		toks[i] = "\n"
	}
	return toks, strings.Join(toks, "")
}

// TestReview generates, then accepts, discards or regenerates the pending
// generation with :GenlsAccept, :GenlsDiscard and :GenlsRegenerate, at the
// cursor or (with !) in the whole buffer, and undoes. After each step it
// compares the buffer's text, the genls diagnostics (the marks) and the
// server's answer; at the end, the written file byte for byte.
func TestReview(t *testing.T) {
	gen, genText := words(60)
	again, againText := words(30)
	for i := range again {
		again[i] = strings.Replace(again[i], "w", "r", 1)
	}
	againText = strings.ReplaceAll(againText, "w", "r")
	broken, brokenText := lines(60)
	second := []string{" two", " three"}
	// 60 tokens 20 ms apart: at least 20 edits even on a loaded machine,
	// where an edit carries the tokens that arrived while Neovim was busy.
	const genDelay = 20 * time.Millisecond
	type want struct {
		text   string
		marks  int // the number of genls diagnostics; -1: not checked
		result int // the server's answer to a review command; -1: none
	}
	tests := []struct {
		name    string
		text    string // the file
		ff      string // its fileformat as Neovim must detect it
		scripts []streamtest.Script
		steps   []string
		want    []want
		file    string // the written file
	}{{
		name:    "accept keeps the text and clears the mark",
		text:    "Hello\nnext\n",
		scripts: []streamtest.Script{streamtest.TGI(genDelay, "length", gen...)},
		steps:   []string{"gen=1", "lens", "accept@1:10=0"},
		want: []want{
			{"Hello" + genText + "\nnext", 1, -1},
			{"Hello" + genText + "\nnext", 1, -1},
			{"Hello" + genText + "\nnext", 0, 1},
		},
		file: "Hello" + genText + "\nnext\n",
	}, {
		name:    "discard restores the file byte for byte",
		text:    "Hello\nnext\n",
		scripts: []streamtest.Script{streamtest.TGI(genDelay, "length", broken...)},
		steps:   []string{"gen=1", "discard@3:2=0"},
		want: []want{
			{"Hello" + brokenText + "\nnext", 1, -1},
			{"Hello\nnext", 0, 1},
		},
		file: "Hello\nnext\n",
	}, {
		name:    "discard restores a CRLF file byte for byte",
		text:    "Hello\r\nnext\r\n",
		ff:      "dos",
		scripts: []streamtest.Script{streamtest.TGI(genDelay, "length", broken...)},
		steps:   []string{"gen=1", "discard@3:2=0"},
		want: []want{
			{"Hello" + brokenText + "\nnext", 1, -1},
			{"Hello\nnext", 0, 1},
		},
		file: "Hello\r\nnext\r\n",
	}, {
		// The discard is an undo step of its own: u brings the text back
		// (no longer pending: genls forgot it), a second u removes it.
		name:    "undo after a discard brings the text back",
		text:    "Hello\nnext\n",
		scripts: []streamtest.Script{streamtest.TGI(genDelay, "length", gen...)},
		steps:   []string{"gen=1", "discard@1:10=0", "undo=0", "undo=0"},
		want: []want{
			{"Hello" + genText + "\nnext", 1, -1},
			{"Hello\nnext", 0, 1},
			{"Hello" + genText + "\nnext", 0, -1},
			{"Hello\nnext", 0, -1},
		},
		file: "Hello\nnext\n",
	}, {
		name:    "one u removes a generation and its mark",
		text:    "Hello\nnext\n",
		scripts: []streamtest.Script{streamtest.TGI(genDelay, "length", gen...)},
		steps:   []string{"gen=1", "undo=0"},
		want: []want{
			{"Hello" + genText + "\nnext", 1, -1},
			{"Hello\nnext", 0, -1},
		},
		file: "Hello\nnext\n",
	}, {
		// Regenerate replaces the text in place, once; one u undoes the
		// Regenerate (the old text is back), the next the generation. The
		// old text may stay marked: Neovim reports the undo as a change
		// inside the new text (it leaves out the characters the two texts
		// begin and end with), which the server takes for the user's.
		name: "regenerate writes the text again in place, one undo step",
		text: "Hello\nnext\n",
		scripts: []streamtest.Script{
			streamtest.TGI(genDelay, "length", gen...),
			streamtest.TGI(genDelay, "length", again...),
		},
		steps: []string{"gen=1", "regenerate@1:10=1", "undo", "undo=0"},
		want: []want{
			{"Hello" + genText + "\nnext", 1, -1},
			{"Hello" + againText + "\nnext", 1, 1},
			{"Hello" + genText + "\nnext", -1, -1},
			{"Hello\nnext", 0, -1},
		},
		file: "Hello\nnext\n",
	}, {
		// Two pending generations: :GenlsAccept at the cursor takes the
		// one there, :GenlsDiscard! the other.
		name: "at the cursor one of two, with ! the rest",
		text: "Hello\nnext\n",
		scripts: []streamtest.Script{
			streamtest.TGI(genDelay, "length", gen...),
			streamtest.TGI(2*time.Millisecond, "length", second...),
		},
		steps: []string{"gen:1-1=1", "gen:2-2=2", "accept@1:10=1", "discard!=0"},
		want: []want{
			{"Hello" + genText + "\nnext", 1, -1},
			{"Hello" + genText + "\nnext two three", 2, -1},
			{"Hello" + genText + "\nnext two three", 1, 1},
			{"Hello" + genText + "\nnext", 0, 1},
		},
		file: "Hello" + genText + "\nnext\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.Script{Status: 500})
			srv.Push(tt.scripts...)
			got, rep := run(t, srv, scenario{
				text:    tt.text,
				name:    "range",
				lines:   "1,1",
				steps:   tt.steps,
				timeout: 40 * time.Second,
			})
			if tt.ff != "" && rep.FileFormat != tt.ff {
				t.Fatalf("Neovim read the file as fileformat=%s, want %s", rep.FileFormat, tt.ff)
			}
			checkProgress(t, rep)
			if len(rep.Steps) != len(tt.steps) {
				t.Fatalf("%d steps reported, want %d", len(rep.Steps), len(tt.steps))
			}
			for i, st := range rep.Steps {
				w := tt.want[i]
				if st.Text != w.text {
					t.Errorf("after step %d (%s): buffer = %q, want %q", i+1, st.Step, e2etest.Clip(st.Text), e2etest.Clip(w.text))
				}
				if w.marks >= 0 && len(st.Marks) != w.marks {
					t.Errorf("after step %d (%s): %d genls diagnostics %+v, want %d", i+1, st.Step, len(st.Marks), st.Marks, w.marks)
				}
				for _, m := range st.Marks {
					if m.Severity != 4 || m.Code != "genls.pending" {
						t.Errorf("after step %d (%s): diagnostic %+v, want severity 4 (Hint), code genls.pending", i+1, st.Step, m)
					}
				}
				switch {
				case w.result >= 0 && (st.Result == nil || *st.Result != w.result):
					t.Errorf("step %d (%s): the server answered %s (arguments %s), want %d", i+1, st.Step, answer(st.Result), st.Arguments, w.result)
				case w.result < 0 && st.Result != nil:
					t.Errorf("step %d (%s): a review command ran, answered %d", i+1, st.Step, *st.Result)
				}
				if strings.HasPrefix(st.Step, "gen") || strings.HasPrefix(st.Step, "regenerate") {
					quiet(t, st)
				}
				if st.Step == "lens" {
					checkLenses(t, st.Lenses)
				}
			}
			if got != tt.file {
				t.Errorf("file = %q, want %q", e2etest.Clip(got), e2etest.Clip(tt.file))
			}
			// A generation of many edits: the undo and discard steps
			// must handle each of them.
			if first := rep.Steps[0]; first.ApplyEdits < 20 {
				t.Errorf("the first generation came in %d workspace/applyEdit requests, want at least 20", first.ApplyEdits)
			}
			t.Logf("workspace/applyEdit requests per step: %v", editsPerStep(rep))
		})
	}
}

// checkLenses checks the code lenses of one pending generation on the
// first line: Accept, Discard and Regenerate, running genls's commands.
func checkLenses(t *testing.T, lenses []lens) {
	t.Helper()
	want := []lens{{0, "Accept", "genls.accept"}, {0, "Discard", "genls.discard"}, {0, "Regenerate", "genls.regenerate"}}
	got := slices.Clone(lenses)
	slices.SortFunc(got, func(a, b lens) int { return strings.Compare(a.Title, b.Title) })
	if !slices.Equal(got, want) {
		t.Errorf("code lenses %+v, want %+v", got, want)
	}
}

func editsPerStep(rep report) []int {
	n := make([]int, len(rep.Steps))
	for i, st := range rep.Steps {
		n[i] = st.ApplyEdits
	}
	return n
}

// TestStaleEdit makes Neovim receive an edit addressed to a version of the
// buffer older than its own (the user typed meanwhile): the plugin answers
// applied: false, silently, the server sends the text again for the new
// version, and it lands once.
func TestStaleEdit(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(20*time.Millisecond, "length", " one", " two", " three"))
	got, rep := run(t, srv, scenario{
		text:     "Hello\nnext\n",
		name:     "range",
		lines:    "1,1",
		staleAt:  2,
		maxEdits: 20,
		maxBytes: 200,
	})
	if want := "typed above\nHello one two three\nnext\n"; got != want {
		t.Errorf("buffer = %q, want %q", got, want)
	}
	if rep.RejectedEdits == 0 {
		t.Errorf("no edit was answered applied: false (%d workspace/applyEdit requests)", rep.ApplyEdits)
	}
	if rep.Runaway != "" {
		t.Errorf("runaway: %s", rep.Runaway)
	}
	checkProgress(t, rep)
	for _, st := range rep.Steps {
		quiet(t, st)
	}
}

// TestAttach starts genls in the ways a configuration can, in buffers with
// and without a file type or a name, and checks that the buffer gets the
// code actions and that the server took the settings without a complaint.
// Sessions without settings never generate: their endpoint would be the
// default one on the internet.
func TestAttach(t *testing.T) {
	tests := []struct {
		name     string
		sc       scenario
		filetype string
		want     string // the text after the last step ("" if there is no gen step)
	}{{
		name:     "setup() without settings",
		sc:       scenario{setup: "setup-nosettings", steps: []string{"actions", "settle"}},
		filetype: "text",
	}, {
		name:     "the client started from config(), init_options = {}",
		sc:       scenario{setup: "start-empty", steps: []string{"actions", "settle"}},
		filetype: "text",
	}, {
		name:     "a file with no filetype",
		sc:       scenario{fileName: "notes", steps: []string{"actions", "gen"}},
		filetype: "",
		want:     "Hello there",
	}, {
		name:     "an unnamed buffer (:enew)",
		sc:       scenario{buffer: "enew", steps: []string{"actions", "gen"}},
		filetype: "",
		want:     "Hello there",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.TGI(0, "length", " there"))
			sc := tt.sc
			sc.text, sc.name, sc.lines, sc.timeout = "Hello\n", "range", "1,1", 20*time.Second
			_, rep := run(t, srv, sc)
			if rep.FileType != tt.filetype {
				t.Fatalf("filetype = %q, want %q", rep.FileType, tt.filetype)
			}
			if sc.buffer == "enew" && rep.AttachedUnnamed < 2 {
				t.Errorf("%d unnamed buffers attached, want the one Neovim started with and the :enew one", rep.AttachedUnnamed)
			}
			if sc.setup == "start-empty" && rep.InitOptions != "[]" {
				t.Errorf("init_options were sent as %s, want [] (an empty Lua table)", rep.InitOptions)
			}
			st := rep.Steps[0]
			if !slices.Contains(st.Kinds, "refactor.rewrite.genls.generate") || !slices.Contains(st.Kinds, "refactor.rewrite.genls.continue") {
				t.Errorf("code actions offered: %q, want Generate and Generate here", st.Kinds)
			}
			for _, st := range rep.Steps {
				for _, m := range append([]string{st.Messages}, st.Notified...) {
					if strings.Contains(m, "setting") || strings.Contains(m, "genls") {
						t.Errorf("step %s: message %q, want none about genls or its settings", st.Step, m)
					}
				}
			}
			if last := rep.Steps[len(rep.Steps)-1]; tt.want != "" && last.Text != tt.want {
				t.Errorf("buffer = %q, want %q", last.Text, tt.want)
			}
			if tt.want == "" && len(srv.Requests()) > 0 {
				t.Errorf("the endpoint got %d requests, want none", len(srv.Requests()))
			}
		})
	}
}

// TestHealth runs :checkhealth genls against a working endpoint and a dead
// one.
func TestHealth(t *testing.T) {
	tests := []struct {
		name     string
		dead     bool           // the endpoint's port is closed
		settings map[string]any // added to the endpoint settings (and waited for: they are wrong)
		want     []string       // lines the report must contain
	}{{
		name: "working endpoint",
		want: []string{"genls (devel)", `"url": "URL"`, "accepted them", "genls doctor: Everything works."},
	}, {
		name:     "rejected settings",
		settings: map[string]any{"log": map[string]any{"level": "loud"}},
		want:     []string{"ERROR", "the server (client 1) reported: genls: invalid setting log.level"},
	}, {
		name: "dead endpoint",
		dead: true,
		want: []string{"genls (devel)", "accepted them", "ERROR", "genls doctor: the endpoint does not work", "FAIL"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.TGI(0, "length", " ok"))
			srv.Route("/info", `{"model_id":"test-model","max_input_tokens":1000,"max_total_tokens":2000}`)
			url := srv.URL
			if tt.dead {
				url = "http://127.0.0.1:9"
			}
			settings := map[string]any{"endpoint": map[string]any{"url": url, "backend": "tgi"}}
			maps.Copy(settings, tt.settings)
			steps := []string{"health"}
			if tt.settings != nil {
				// The server's complaint arrives on its own time.
				steps = []string{"await-message", "health"}
			}
			_, rep := run(t, srv, scenario{
				text:     "Hello\n",
				steps:    steps,
				settings: settings,
				timeout:  30 * time.Second,
			})
			report := strings.Join(rep.Steps[len(rep.Steps)-1].Lines, "\n")
			t.Logf("report:\n%s", report)
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "URL", url)
				if !strings.Contains(strings.ReplaceAll(report, `":"`, `": "`), w) {
					t.Errorf("the report lacks %q:\n%s", w, report)
				}
			}
			if !tt.dead && tt.settings == nil && strings.Contains(report, "ERROR") {
				t.Errorf("the report has errors:\n%s", report)
			}
		})
	}
}

// TestVersionPaths runs test/unit.lua: unit tests of the plugin's paths
// for Neovim 0.8, 0.10, 0.11 and 0.12, with vim.fn.has and the vim.lsp
// functions of those versions stubbed, in the installed Neovim.
func TestVersionPaths(t *testing.T) {
	nvim := e2etest.LookPath(t, "nvim", "apt-get install neovim")
	dir := t.TempDir()
	result := filepath.Join(dir, "result.json")
	script, err := filepath.Abs(filepath.Join("test", "unit.lua"))
	if err != nil {
		t.Fatal(err)
	}
	output, err := runNvim(t, nvim, dir, script, 30*time.Second, "GENLS_TEST_RESULT="+result)
	var rep struct {
		Tests []struct {
			Name  string `json:"name"`
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		} `json:"tests"`
	}
	data, readErr := os.ReadFile(result)
	if readErr == nil {
		readErr = json.Unmarshal(data, &rep)
	}
	if err != nil || readErr != nil {
		t.Fatalf("nvim: %v; report: %v\n%s", err, readErr, output)
	}
	if len(rep.Tests) == 0 {
		t.Fatalf("test/unit.lua ran no tests\n%s", output)
	}
	for _, tt := range rep.Tests {
		t.Run(tt.Name, func(t *testing.T) {
			if !tt.OK {
				t.Error(tt.Error)
			}
		})
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

// answer formats a review command's answer, nil when none was recorded.
func answer(n *int) string {
	if n == nil {
		return "nothing"
	}
	return strconv.Itoa(*n)
}

// TestRewrite rewrites the first line with :'<,'>GenlsRewrite (the
// instruction typed into vim.ui.input) or :GenlsRewrite {instruction}, then
// accepts or discards the rewrite. The instruction must reach the
// endpoint; the original must be marked genls.original (Hint, tag
// Deprecated) and the new text genls.pending, each over its whole lines;
// Accept leaves only the new text, Discard the file byte for byte as it
// was. One reply comes fenced as a chat model writes it: the fences go.
func TestRewrite(t *testing.T) {
	fenced := streamtest.TGI(5*time.Millisecond, "length", "```\n", "HELLO", " THERE\n", "```\n")
	plain := streamtest.TGI(5*time.Millisecond, "length", "HELLO", " THERE")
	rewritten := "Hello\nHELLO THERE\nnext"
	marks := []mark{
		{Lnum: 0, Col: 0, EndLnum: 1, EndCol: 0, Severity: 4, Code: "genls.original", Tags: []int{2}},
		{Lnum: 1, Col: 0, EndLnum: 2, EndCol: 0, Severity: 4, Code: "genls.pending"},
	}
	tests := []struct {
		name        string
		text        string
		script      streamtest.Script
		steps       []string
		instruction string
		prompted    bool   // whether vim.ui.input asked for the instruction
		reviewed    string // the buffer after the review step
		file        string
	}{{
		name:        "asked for the instruction, accepted",
		text:        "Hello\nnext\n",
		script:      fenced,
		steps:       []string{"rewrite:1-1=2", "accept@2:1=0"},
		instruction: "shout it",
		prompted:    true,
		reviewed:    "HELLO THERE\nnext",
		file:        "HELLO THERE\nnext\n",
	}, {
		name:        "instruction given inline, discarded",
		text:        "Hello\nnext\n",
		script:      plain,
		steps:       []string{"rewrite-inline:1-1=2", "discard@1:1=0"},
		instruction: "make it loud",
		reviewed:    "Hello\nnext",
		file:        "Hello\nnext\n",
	}, {
		name:        "a CRLF file discarded byte for byte",
		text:        "Hello\r\nnext\r\n",
		script:      fenced,
		steps:       []string{"rewrite:1-1=2", "discard@2:3=0"},
		instruction: "shout it",
		prompted:    true,
		reviewed:    "Hello\nnext",
		file:        "Hello\r\nnext\r\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.Script{Status: 500})
			srv.Push(tt.script)
			got, rep := run(t, srv, scenario{
				text:        tt.text,
				name:        "range",
				lines:       "1,1",
				steps:       tt.steps,
				instruction: tt.instruction,
				timeout:     40 * time.Second,
			})
			checkProgress(t, rep)
			if len(rep.Steps) != 2 {
				t.Fatalf("%d steps reported, want 2", len(rep.Steps))
			}
			if p := prompt(srv); !strings.Contains(p, tt.instruction) || !strings.Contains(p, "Hello") {
				t.Errorf("the request to the endpoint %q lacks the instruction %q or the original", p, tt.instruction)
			}
			generations := 0
			for _, r := range srv.Requests() {
				if r.Path == "/generate_stream" {
					generations++
				}
			}
			if generations != 1 {
				t.Errorf("%d generation requests to the endpoint, want 1", generations)
			}
			switch {
			case tt.prompted && (len(rep.Prompts) != 1 || !strings.Contains(rep.Prompts[0], "Rewrite")):
				t.Errorf("vim.ui.input asked %q, want one prompt for the Rewrite instruction", rep.Prompts)
			case !tt.prompted && len(rep.Prompts) != 0:
				t.Errorf("vim.ui.input asked %q, though the instruction came with the command", rep.Prompts)
			}
			rewrite, review := rep.Steps[0], rep.Steps[1]
			if rewrite.Text != rewritten {
				t.Errorf("after the rewrite: buffer = %q, want %q", rewrite.Text, rewritten)
			}
			quiet(t, rewrite)
			got1 := slices.Clone(rewrite.Marks)
			for i := range got1 {
				got1[i].Message = ""
			}
			slices.SortFunc(got1, func(a, b mark) int { return a.Lnum - b.Lnum })
			if !slices.EqualFunc(got1, marks, func(a, b mark) bool {
				return a.Lnum == b.Lnum && a.Col == b.Col && a.EndLnum == b.EndLnum && a.EndCol == b.EndCol &&
					a.Severity == b.Severity && a.Code == b.Code && slices.Equal(a.Tags, b.Tags)
			}) {
				t.Errorf("after the rewrite: genls diagnostics %+v, want %+v", got1, marks)
			}
			if review.Text != tt.reviewed || len(review.Marks) != 0 {
				t.Errorf("after %s: buffer = %q with %d genls diagnostics, want %q and none", review.Step, review.Text, len(review.Marks), tt.reviewed)
			}
			if review.Result == nil || *review.Result != 1 {
				t.Errorf("%s: the server answered %s (arguments %s), want 1", review.Step, answer(review.Result), review.Arguments)
			}
			if got != tt.file {
				t.Errorf("file = %q, want %q", got, tt.file)
			}
		})
	}
}

// TestGenerateInstruction generates after the second line with
// :GenlsGenerate! (the instruction typed into vim.ui.input) and
// :GenlsGenerate {instruction}: the instruction reaches the endpoint with
// the line alone (a Generate, not a "Generate here", whose prompt would be
// the text before it), and the text goes in after the line.
func TestGenerateInstruction(t *testing.T) {
	for _, step := range []string{"gen-ask", "gen-inline"} {
		t.Run(step, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.TGI(5*time.Millisecond, "length", " and", " more"))
			got, rep := run(t, srv, scenario{
				text:        "Hello\nnext\n",
				name:        "range",
				lines:       "2,2",
				steps:       []string{step + "=1"},
				instruction: "continue in French",
			})
			checkProgress(t, rep)
			if p := prompt(srv); !strings.Contains(p, "continue in French") || !strings.Contains(p, "next") || strings.Contains(p, "Hello") {
				t.Errorf("the request to the endpoint %q: want the instruction and the second line only", p)
			}
			if want := step == "gen-ask"; want != (len(rep.Prompts) == 1) {
				t.Errorf("vim.ui.input asked %q", rep.Prompts)
			}
			if len(rep.Steps) == 1 {
				if st := rep.Steps[0]; len(st.Marks) != 1 || st.Marks[0].Code != "genls.pending" {
					t.Errorf("genls diagnostics %+v, want one genls.pending", st.Marks)
				}
				quiet(t, rep.Steps[0])
			}
			if want := "Hello\nnext and more\n"; got != want {
				t.Errorf("file = %q, want %q", got, want)
			}
		})
	}
}
