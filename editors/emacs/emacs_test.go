//go:build unix

// End-to-end tests of genls.el: Emacs in batch mode loads eglot, genls.el
// and test/harness.el, starts genls through eglot-server-programs, runs
// genls-generate (a Generate code action) and writes the buffer; the written
// bytes must equal the original text plus exactly the scripted tokens at the
// right place.
package emacs_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/genls/genls/editors/e2etest"
	"github.com/genls/genls/stream/streamtest"
)

// eglotGlob is where Debian's elpa-eglot installs eglot.el.
const eglotGlob = "/usr/share/emacs/site-lisp/elpa/eglot-*/eglot.el"

type scenario struct {
	text     string        // the file's content before the session
	name     string        // harness scenario: range, here, cancel
	lines    string        // "FIRST,LAST" lines of the region
	point    string        // "LINE,COL" (character column) for "here"
	cancelAt string        // text to wait for before genls-cancel
	typeAt   string        // text to wait for before typing (scenario "typing")
	want     string        // the expected file, so the harness can stop early
	timeout  time.Duration // of the whole editor session
	// maxEdits and maxChars (0: no bound) end the session early, as a
	// runaway, once eglot has received more workspace/applyEdit requests or
	// the buffer holds more characters than that.
	maxEdits int
	maxChars int
	// settings, when set, replace the default settings (the fake TGI
	// endpoint srv, which may then be nil).
	settings map[string]any
	// steps, for runReview: what the interactive session does (see
	// test/review.el), and the text each step waits for.
	steps     []string
	stepTexts []any // strings, or nil for none
	// instruction is typed into the minibuffer when genls-rewrite (and
	// C-u genls-generate) asks for one.
	instruction string
}

type report struct {
	Emacs            string `json:"emacs"`
	Code             int    `json:"code"`
	Error            string `json:"error"`
	InitMS           int    `json:"init_ms"`
	CommandReturnMS  int    `json:"command_returned_ms"`
	FirstChangeMS    int    `json:"first_change_ms"`
	DoneMS           int    `json:"done_ms"`
	ReachedExpected  bool   `json:"reached_expected"`
	ServerStopped    bool   `json:"server_stopped"`
	Changes          int    `json:"changes"`
	CancelledMS      int    `json:"cancelled_ms"`
	TypedAtChanges   int    `json:"typed_at_changes"`
	ScenarioReported string `json:"scenario"`
	ApplyEdits       int    `json:"apply_edits"`
	Runaway          string `json:"runaway"`
	EOL              string `json:"eol"`
	// Steps is what test/review.el saw after each step.
	Steps []stepReport `json:"steps"`
}

type stepReport struct {
	Step       string   `json:"step"`
	Text       string   `json:"text"`
	Marks      []mark   `json:"marks"`       // the genls notes flymake has
	ApplyEdits int      `json:"apply_edits"` // workspace/applyEdit requests during the step
	Pokes      int      `json:"pokes"`       // commands run while text streamed in
	Result     *int     `json:"result"`      // a review command's answer
	Arguments  string   `json:"arguments"`   // and its arguments, as JSON
	Ran        []string `json:"ran"`         // the commands the command loop ran
	Inserted   string   `json:"inserted"`    // insert: the text right after the insertion
}

// mark is a flymake diagnostic of genls's (0-based lines, character
// columns).
type mark struct {
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	EndLine int    `json:"end_line"`
	EndCol  int    `json:"end_col"`
	Type    string `json:"type"`
	Text    string `json:"text"`
}

// run runs test/harness.el in batch Emacs and returns the bytes it wrote
// and its report.
func run(t *testing.T, srv *streamtest.Server, sc scenario) (string, report) {
	t.Helper()
	return session(t, srv, sc, false)
}

// runReview runs sc.steps with test/review.el in an interactive Emacs
// (-nw, in a terminal that `script` provides), whose command loop closes an
// undo step after every command as it does for a user.
func runReview(t *testing.T, srv *streamtest.Server, sc scenario) (string, report) {
	t.Helper()
	return session(t, srv, sc, true)
}

func session(t *testing.T, srv *streamtest.Server, sc scenario, interactive bool) (string, report) {
	t.Helper()
	emacs := e2etest.LookPath(t, "emacs", "apt-get install emacs-nox elpa-eglot")
	eglot := findEglot(t)
	bin := e2etest.Genls(t)
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}

	// srv is nil when sc.settings name another endpoint (a real server).
	url := ""
	if srv != nil {
		url = srv.URL
	}
	ws := e2etest.NewWorkspace(t, "sample.txt", sc.text, sc.settings, url)
	dir, file, out, result, serverLog, settings := ws.Dir, ws.File, ws.Out, ws.Result, ws.ServerLog, ws.Settings
	expect := filepath.Join(dir, "expect.txt")
	events := filepath.Join(dir, "events.txt")
	if err := os.WriteFile(expect, []byte(sc.want), 0o644); err != nil {
		t.Fatal(err)
	}
	stepTexts, err := json.Marshal(sc.stepTexts)
	if err != nil {
		t.Fatal(err)
	}
	if sc.timeout == 0 {
		sc.timeout = 60 * time.Second
	}

	ctx, cancel := context.WithTimeout(context.Background(), sc.timeout)
	defer cancel()
	var cmd *exec.Cmd
	if interactive {
		script := e2etest.LookPath(t, "script", "apt-get install bsdutils")
		cmd = exec.CommandContext(ctx, script, "-qec",
			`exec "$GENLS_TEST_EMACS" -nw -Q -l "$GENLS_TEST_EGLOT_EL" -l "$GENLS_TEST_GENLS_EL" -l "$GENLS_TEST_SCRIPT"`,
			"/dev/null")
	} else {
		cmd = exec.CommandContext(ctx, emacs, "-Q", "--batch",
			"-l", eglot,
			"-l", filepath.Join(here, "genls.el"),
			"-l", filepath.Join(here, "test", "harness.el"))
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+dir, // keep ~/.emacs.d out of the way
		"LANG=C.UTF-8",
		"TERM=xterm",
		"GENLS_TEST_EMACS="+emacs,
		"GENLS_TEST_EGLOT_EL="+eglot,
		"GENLS_TEST_GENLS_EL="+filepath.Join(here, "genls.el"),
		"GENLS_TEST_SCRIPT="+filepath.Join(here, "test", "review.el"),
		"GENLS_TEST_BIN="+bin,
		"GENLS_TEST_FILE="+file,
		"GENLS_TEST_OUT="+out,
		"GENLS_TEST_RESULT="+result,
		"GENLS_TEST_EXPECT_FILE="+expect,
		"GENLS_TEST_EVENTS="+events,
		"GENLS_TEST_SERVER_LOG="+serverLog,
		"GENLS_TEST_SETTINGS="+settings,
		"GENLS_TEST_SCENARIO="+sc.name,
		"GENLS_TEST_RANGE="+sc.lines,
		"GENLS_TEST_POINT="+sc.point,
		"GENLS_TEST_CANCEL_AFTER="+sc.cancelAt,
		"GENLS_TEST_TYPE_AFTER="+sc.typeAt,
		"GENLS_TEST_TIMEOUT="+strconv.Itoa(int(sc.timeout.Seconds()/3)),
		"GENLS_TEST_MAX_EDITS="+strconv.Itoa(sc.maxEdits),
		"GENLS_TEST_MAX_BYTES="+strconv.Itoa(sc.maxChars),
		"GENLS_TEST_STEPS="+strings.Join(sc.steps, ","),
		"GENLS_TEST_EXPECT_STEPS="+string(stepTexts),
		"GENLS_TEST_INSTRUCTION="+sc.instruction,
	)
	output, runErr := e2etest.RunSession(t, "emacs", cmd)

	var rep report
	data, readErr := os.ReadFile(result)
	if readErr == nil {
		readErr = json.Unmarshal(data, &rep)
	}
	t.Logf("report: %s", data)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if !interactive { // the terminal's output is screen updates
			t.Logf("emacs output:\n%s", output)
		}
		e2etest.LogFile(t, "eglot events", events)
		e2etest.LogFile(t, "genls log", serverLog)
	})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("emacs did not finish within %v", sc.timeout)
	}
	if readErr != nil {
		t.Fatalf("reading the report: %v (emacs: %v)", readErr, runErr)
	}
	if rep.Code != 0 || runErr != nil {
		t.Fatalf("harness failed: %s (emacs: %v)", rep.Error, runErr)
	}
	if !rep.ServerStopped {
		t.Errorf("genls did not stop on eglot-shutdown")
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the buffer was not written: %v", err)
	}
	return string(got), rep
}

func findEglot(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GENLS_EGLOT_EL"); p != "" {
		return p
	}
	matches, _ := filepath.Glob(eglotGlob)
	if len(matches) == 0 {
		e2etest.Missing(t, "eglot.el not found at "+eglotGlob+" (apt-get install elpa-eglot, or set GENLS_EGLOT_EL)")
	}
	return matches[len(matches)-1]
}

func TestGenerateRegion(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(5*time.Millisecond, "length", ",", " world", "\n", "日本", "é!"))
	want := "Hello, world\n日本é!\nsecond line\n"
	got, rep := run(t, srv, scenario{
		text:  "Hello\nsecond line\n",
		name:  "range",
		lines: "1,1",
		want:  want,
	})
	if got != want {
		t.Errorf("buffer = %q, want %q", got, want)
	}
	if !rep.ReachedExpected {
		t.Errorf("the buffer did not reach the expected text while the harness waited")
	}
}

func TestGenerateHere(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(5*time.Millisecond, "length", " au", " lait ☕"))
	text := "Ünïcode: café and more\nnext\n"
	// Point right after "café" (Emacs's point is between characters).
	col := utf8.RuneCountInString(text[:strings.Index(text, " and")])
	want := "Ünïcode: café au lait ☕ and more\nnext\n"
	got, _ := run(t, srv, scenario{
		text:  text,
		name:  "here",
		point: "1," + strconv.Itoa(col),
		want:  want,
	})
	if got != want {
		t.Errorf("buffer = %q, want %q", got, want)
	}
}

// TestTypingWhileGenerating edits the buffer above and below the insertion
// point while tokens stream in. eglot only applies an edit addressed to the
// buffer's exact version, so the server has to follow every change.
func TestTypingWhileGenerating(t *testing.T) {
	srv := streamtest.NewServer(t, streamtest.TGI(40*time.Millisecond, "length", " one", " two", " three", " four", " five"))
	want := "typed above\nHello one two three four five\nlast line and below\n"
	got, rep := run(t, srv, scenario{
		text:   "Hello\nlast line\n",
		name:   "typing",
		lines:  "1,1",
		typeAt: "Hello one",
		want:   want,
	})
	if got != want {
		t.Errorf("buffer = %q, want %q", got, want)
	}
	if rep.Changes <= rep.TypedAtChanges {
		t.Errorf("no generated text arrived after the typing (%d changes, typed after %d)", rep.Changes, rep.TypedAtChanges)
	}
}

// TestLineEndings streams generated line breaks into files. A file with
// CRLF line ends on disk is visited as utf-8-dos: the buffer, and so what
// eglot tells the server, has "\n" line breaks, and saving writes "\r\n". A
// "\r" that reaches the buffer stays a character of its own and is saved as
// "\r\r\n"; the bounds on edits and size make a runaway fail fast.
func TestLineEndings(t *testing.T) {
	const crlf = "def fib(n):\r\n    pass\r\n"
	const crlfWant = "def fib(n):\r\n    if n < 2:\r\n        return n\r\n    pass\r\n"
	tests := []struct {
		name   string
		text   string   // the file on disk
		eol    string   // the line ends Emacs must detect
		tokens []string // the model's stream
		want   string   // the written file
	}{
		{"lf tokens", crlf, "dos", []string{"\n", "    if", " n < 2:", "\n", "        return n"}, crlfWant},
		{"crlf tokens", crlf, "dos", []string{"\r\n", "    if n < 2:\r\n", "        return n"}, crlfWant},
		{"cr and lf in separate tokens", crlf, "dos", []string{"\r", "\n", "    if n < 2:\r", "\n        return n"}, crlfWant},
		{"lone cr", crlf, "dos", []string{"\r    if n < 2:", "\r        return n"}, crlfWant},
		// genls turns U+2028, U+2029 and U+0085 into line breaks, drops NUL
		// and keeps other control characters such as ESC.
		{"unicode line separators, nul and esc", "Hello\nnext\n", "unix",
			[]string{"a\u2028b", "\u0085c", "d\x00e", "\x1bf", "\x00\x1bg"}, "Helloa\nb\ncde\x1bf\x1bg\nnext\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamtest.NewServer(t, streamtest.TGI(5*time.Millisecond, "length", tt.tokens...))
			got, rep := run(t, srv, scenario{
				text:  tt.text,
				name:  "range",
				lines: "1,1",
				want:  tt.want,
				// The harness waits a third of this for the expected text:
				// enough for a correct run (under a second), short for a
				// wrong one, whose text never matches.
				timeout:  12 * time.Second,
				maxEdits: 4*len(tt.tokens) + 10,
				maxChars: 2 * len(tt.want),
			})
			if rep.EOL != tt.eol {
				t.Fatalf("Emacs visited the file with %s line ends, want %s", rep.EOL, tt.eol)
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
			if !rep.ReachedExpected {
				t.Errorf("the buffer did not reach the expected text while the harness waited")
			}
		})
	}
}

func TestCancel(t *testing.T) {
	hang := streamtest.Script{Chunks: streamtest.TGI(0, "length", "a", "b").Chunks[:2], Hang: true}
	srv := streamtest.NewServer(t, hang)
	want := "Helloab\n"
	got, _ := run(t, srv, scenario{
		text:     "Hello\n",
		name:     "cancel",
		lines:    "1,1",
		cancelAt: "Helloab",
		want:     want,
	})
	if got != want {
		t.Errorf("buffer = %q, want %q", got, want)
	}
	if srv.Disconnects() == 0 && !srv.WaitDisconnect(5*time.Second) {
		t.Errorf("the endpoint request was not abandoned after genls-cancel")
	}
}

// TestByteCompile compiles genls.el with warnings as errors, which catches
// wrong arities, unknown functions and free variables without a server.
func TestByteCompile(t *testing.T) {
	emacs := e2etest.LookPath(t, "emacs", "apt-get install emacs-nox elpa-eglot")
	eglot := findEglot(t)
	dir := t.TempDir()
	src, err := os.ReadFile("genls.el")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "genls.el"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, emacs, "-Q", "--batch",
		"-L", filepath.Dir(eglot), "-l", eglot,
		"--eval", "(setq byte-compile-error-on-warn t)",
		"-f", "batch-byte-compile", "genls.el")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("byte-compile genls.el: %v\n%s", err, out)
	}
}
