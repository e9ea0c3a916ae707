// Command genls is a language server that streams text from a large language
// model endpoint into the editor's document as it is generated.
//
// Usage:
//
//	genls [--stdio] [--log-level L] [--log-file F]   serve LSP on stdin/stdout
//	genls generate [flags] PROMPT                     stream a generation to stdout
//	genls doctor [flags]                              check the setup
//	genls version                                     print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/genls/genls/lsp"
	"github.com/genls/genls/stream"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the module version recorded by `go install` is used.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "generate":
			return runGenerate(args[1:], stdin, stdout, stderr)
		case "doctor":
			return runDoctor(args[1:], stdout, stderr)
		case "version", "--version", "-version":
			fmt.Fprintln(stdout, "genls", versionString())
			return 0
		case "help", "-h", "-help", "--help":
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	return runServe(args, stdin, stdout, stderr)
}

const usage = `genls — stream text from a language model into your editor.

Usage:
  genls [--stdio] [--log-level L] [--log-file F]  serve the Language Server Protocol on stdin/stdout
  genls generate [flags] PROMPT                    stream a generation to stdout ("-" reads the prompt from stdin)
  genls doctor [flags]                             check the endpoint, token and settings, and say how to fix problems
  genls version                                    print the version

Run "genls generate -h" or "genls doctor -h" for their flags.
`

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func runServe(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("genls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("stdio", true, "serve on stdin/stdout (the default; accepted for editors that pass it)")
	fs.Int("clientProcessId", 0, "accepted for editors that pass it; genls exits when stdin closes")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	file := fs.String("log-file", "", "write the log to this file instead of stderr")
	if code, ok := parseFlags(fs, args, func(w io.Writer) { fmt.Fprint(w, usage) }, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "genls: unknown command %q\n%s", fs.Arg(0), usage)
		return 2
	}
	log, atom, sink, err := newLogger(*level, *file, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "genls:", err)
		return 2
	}
	defer sink.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = lsp.Serve(ctx, lsp.Options{
		In: stdin, Out: stdout, Logger: log, LogLevel: &atom, Version: versionString(),
		SetLogFile: sink.SetFile,
	})
	if err != nil {
		log.Error("server stopped", zap.Error(err))
		return 1
	}
	return 0
}

// newLogger logs to stderr or a file, never stdout (the protocol's channel).
// The returned sink can be redirected to a file later (the log.file setting).
func newLogger(level, file string, stderr io.Writer) (*zap.Logger, zap.AtomicLevel, *logSink, error) {
	atom := zap.NewAtomicLevel()
	if err := atom.UnmarshalText([]byte(level)); err != nil {
		return nil, atom, nil, fmt.Errorf("bad --log-level %q: %w", level, err)
	}
	sink := &logSink{w: stderr}
	if file != "" {
		if err := sink.SetFile(file); err != nil {
			return nil, atom, nil, err
		}
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout(time.TimeOnly + ".000")
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), sink, atom)
	return zap.New(core), atom, sink, nil
}

// logSink is where log lines go: stderr until a log file is set.
type logSink struct {
	mu   sync.Mutex
	w    io.Writer
	file *os.File
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *logSink) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil {
		return s.file.Sync()
	}
	return nil
}

// SetFile sends the log to path (appending), closing a previous log file.
func (s *logSink) SetFile(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil && s.file.Name() == path {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	if s.file != nil {
		s.file.Close()
	}
	s.file, s.w = f, f
	return nil
}

// Close closes the log file, if any.
func (s *logSink) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil {
		s.file.Close()
	}
}

// parseFlags parses the flags of a command. Help asked for with -h or
// --help goes to stdout and the command exits 0; a bad flag is reported on
// stderr, with the usage, and the command exits 2. ok is true when the
// command should run.
func parseFlags(fs *flag.FlagSet, args []string, usage func(io.Writer), stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, on the stream that fits
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return 0, false
	case err != nil:
		usage(stderr)
		return 2, false
	}
	return 0, true
}

// printDefaults prints the flags of fs on w.
func printDefaults(fs *flag.FlagSet, w io.Writer) {
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// stopFlags collects repeated --stop flags.
type stopFlags []string

func (s *stopFlags) String() string     { return strings.Join(*s, ",") }
func (s *stopFlags) Set(v string) error { *s = append(*s, v); return nil }

// optional is a flag without a default value: unset, it is not sent and the
// server's own default applies. Unlike a sentinel default (-1), it does not
// show up in the help as "(default -1)".
type optional[T int | uint64 | float64] struct {
	value *T
}

func (o *optional[T]) String() string {
	if o == nil || o.value == nil {
		return ""
	}
	return fmt.Sprint(*o.value)
}

func (o *optional[T]) Set(s string) error {
	var v T
	var err error
	want := "a number"
	switch p := any(&v).(type) {
	case *int:
		*p, err = strconv.Atoi(s)
		want = "a whole number"
	case *uint64:
		*p, err = strconv.ParseUint(s, 10, 64)
		want = "a whole number, 0 or more"
	case *float64:
		*p, err = strconv.ParseFloat(s, 64)
	}
	if err != nil {
		return errors.New("want " + want)
	}
	o.value = &v
	return nil
}

// endpointFlags are the flags generate and doctor share.
type endpointFlags struct {
	url, backend, model string
	logLevel            string
}

func (e *endpointFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.url, "endpoint", "", "endpoint `URL` (default $GENLS_ENDPOINT, else a model server on this machine,\n"+
		"else "+stream.DefaultURL+" with your Hugging Face token)")
	fs.StringVar(&e.backend, "backend", "", "wire `protocol`: "+backendNames()+" (default auto)")
	fs.StringVar(&e.model, "model", "", "model `name` (default $GENLS_MODEL, else one the server lists, preferring a code model;\n"+
		stream.DefaultModel+" on Hugging Face's router)")
	fs.StringVar(&e.logLevel, "log-level", "warn", "log `level` on stderr: debug, info, warn, error")
}

// backendNames lists the accepted --backend values.
func backendNames() string {
	names := make([]string, len(stream.Backends))
	for i, b := range stream.Backends {
		names[i] = string(b)
	}
	return strings.Join(names, ", ")
}

// endpoint returns the endpoint the flags and the environment configure:
// --endpoint, else GENLS_ENDPOINT; --model, else GENLS_MODEL. With no URL
// the client chooses the endpoint (stream.Choose).
func (e *endpointFlags) endpoint(getenv func(string) string) stream.Endpoint {
	ep := stream.Endpoint{URL: e.url, Backend: stream.Backend(e.backend), Model: e.model}
	if ep.URL == "" {
		ep.URL = getenv("GENLS_ENDPOINT")
	}
	if ep.Model == "" {
		ep.Model = getenv("GENLS_MODEL")
	}
	if ep.Backend == "" {
		ep.Backend = stream.BackendAuto
	}
	return ep
}

func runGenerate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("genls generate", flag.ContinueOnError)
	var ef endpointFlags
	ef.register(fs)
	var stops stopFlags
	var temperature, topP, repPenalty optional[float64]
	var topK optional[int]
	var seed optional[uint64]
	maxNew := fs.Int("max-new-tokens", stream.DefaultMaxNewTokens, "generate at most `n` tokens")
	fs.Var(&temperature, "temperature", "sampling `temperature`, 0 for greedy (unset: the server's default)")
	fs.Var(&topK, "top-k", "sample from the `k` most likely tokens (unset: the server's default)")
	fs.Var(&topP, "top-p", "sample from the most likely tokens whose probabilities add up to `p` (unset: the server's default)")
	fs.Var(&repPenalty, "repetition-penalty", "repetition `penalty`, 1 for none (unset: the server's default)")
	fs.Var(&seed, "seed", "random `seed`, for repeatable sampling (unset: none)")
	system := fs.String("system", "", "system `prompt` (chat backends)")
	quiet := fs.Bool("quiet", false, "do not print statistics, or the endpoint chosen when none is configured, on stderr")
	idle := fs.Duration("idle-timeout", stream.DefaultIdleTimeout, "give up when the endpoint sends nothing for this `duration`")
	fs.Var(&stops, "stop", "stop `sequence` (repeatable)")
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "Usage: genls generate [flags] PROMPT   (PROMPT \"-\" reads stdin)")
		printDefaults(fs, w)
	}
	if code, ok := parseFlags(fs, args, usage, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() != 1 {
		usage(stderr)
		return 2
	}
	if *maxNew < 1 {
		fmt.Fprintf(stderr, "genls: --max-new-tokens must be at least 1, got %d\n", *maxNew)
		return 2
	}
	prompt, err := readPrompt(fs.Arg(0), stdin)
	if err != nil {
		fmt.Fprintln(stderr, "genls:", err)
		return 2
	}
	params := stream.Parameters{
		MaxNewTokens: *maxNew, StopSequences: stops,
		Temperature: temperature.value, TopK: topK.value, TopP: topP.value,
		RepetitionPenalty: repPenalty.value, Seed: seed.value,
	}

	log, _, sink, err := newLogger(ef.logLevel, "", stderr)
	if err != nil {
		fmt.Fprintln(stderr, "genls:", err)
		return 2
	}
	defer sink.Close()
	ep := ef.endpoint(os.Getenv)
	ep.Token, _ = stream.ResolveToken("", os.Getenv)
	ports, err := stream.LocalPorts(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "genls:", err)
		return 2
	}
	client, err := stream.NewClient(stream.Config{
		Endpoint: ep, Logger: log, IdleTimeout: *idle,
		OnRetry: func(wait time.Duration, err error) {
			fmt.Fprintf(stderr, "genls: model is loading, retrying in %.0f s\n", wait.Seconds())
		},
		Discovery: stream.DiscoverOptions{Ports: ports, OnChoice: func(c stream.Choice) {
			if !*quiet {
				fmt.Fprintln(stderr, "genls: no endpoint configured; using", c)
			}
		}},
	})
	if err != nil {
		fmt.Fprintln(stderr, "genls:", err)
		return 2
	}
	if w := client.InsecureTokenWarning(); w != "" {
		fmt.Fprintln(stderr, "genls: warning:", w)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := client.Generate(ctx, stream.Request{Prompt: prompt, System: *system, Params: params})
	if err != nil {
		fmt.Fprintln(stderr, "genls:", explain(err))
		return 1
	}
	defer s.Close()
	for s.Next() {
		if _, err := io.WriteString(stdout, s.Text()); err != nil {
			fmt.Fprintln(stderr, "genls: writing output:", err)
			return 1
		}
	}
	if err := s.Err(); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "\ngenls: cancelled")
			return 130
		}
		fmt.Fprintln(stderr, "\ngenls:", explain(err))
		return 1
	}
	if !*quiet {
		fmt.Fprintln(stderr, "\ngenls:", summary(s.Result()))
	}
	return 0
}

// readPrompt returns the prompt argument, or stdin's content for "-". An
// empty prompt is an error: the model would generate from nothing.
func readPrompt(arg string, stdin io.Reader) (string, error) {
	if arg != "-" {
		if strings.TrimSpace(arg) == "" {
			return "", errors.New("the prompt is empty")
		}
		return arg, nil
	}
	b, err := io.ReadAll(stdin)
	if err != nil {
		return "", fmt.Errorf("reading the prompt from stdin: %w", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return "", errors.New("the prompt read from stdin is empty")
	}
	return string(b), nil
}

// explain adds to an error about the setup where to get it diagnosed.
func explain(err error) string {
	var none *stream.NoEndpointError
	if errors.As(err, &none) {
		return none.Message("set GENLS_ENDPOINT")
	}
	if stream.IsSetupError(err) {
		return err.Error() + "; run `genls doctor` to check the setup"
	}
	return err.Error()
}

// summary describes a finished generation in one line.
func summary(res stream.Result) string {
	s := fmt.Sprintf("%s in %s (%.1f tokens/s)", plural(res.Tokens, "token"), res.Duration.Round(time.Millisecond), res.TokensPerSecond())
	if res.TimeToFirstToken > 0 {
		s += fmt.Sprintf(", first token after %s", res.TimeToFirstToken.Round(time.Millisecond))
	}
	return s + ", finish: " + string(res.FinishReason)
}

// plural counts n of noun: "1 token", "2 tokens".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
