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
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return 2
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

// stopFlags collects repeated --stop flags.
type stopFlags []string

func (s *stopFlags) String() string     { return strings.Join(*s, ",") }
func (s *stopFlags) Set(v string) error { *s = append(*s, v); return nil }

// endpointFlags are the flags generate and doctor share.
type endpointFlags struct {
	url, backend, model string
	logLevel            string
}

func (e *endpointFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.url, "endpoint", "", "endpoint URL (default $GENLS_ENDPOINT, else "+stream.DefaultURL+")")
	fs.StringVar(&e.backend, "backend", "", "wire protocol: auto, tgi, openai, openai-completions, ollama (default auto for a given endpoint)")
	fs.StringVar(&e.model, "model", "", "model name (default $GENLS_MODEL; "+stream.DefaultModel+" on the default endpoint)")
	fs.StringVar(&e.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn, error")
}

// endpoint applies the documented defaults: --endpoint, else GENLS_ENDPOINT
// (backend auto unless --backend), else Hugging Face's router (openai).
func (e *endpointFlags) endpoint(getenv func(string) string) stream.Endpoint {
	ep := stream.Endpoint{URL: e.url, Backend: stream.Backend(e.backend), Model: e.model}
	if ep.URL == "" {
		ep.URL = getenv("GENLS_ENDPOINT")
	}
	if ep.Model == "" {
		ep.Model = getenv("GENLS_MODEL")
	}
	if ep.URL == "" {
		ep.URL = stream.DefaultURL
		if ep.Backend == "" {
			ep.Backend = stream.BackendOpenAI
		}
		if ep.Model == "" {
			ep.Model = stream.DefaultModel
		}
	}
	if ep.Backend == "" {
		ep.Backend = stream.BackendAuto
	}
	return ep
}

func runGenerate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("genls generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ef endpointFlags
	ef.register(fs)
	var stops stopFlags
	maxNew := fs.Int("max-new-tokens", stream.DefaultMaxNewTokens, "maximum number of tokens to generate")
	temperature := fs.Float64("temperature", -1, "sampling temperature (default: the server's)")
	topK := fs.Int("top-k", 0, "top-k sampling (default: the server's)")
	topP := fs.Float64("top-p", 0, "nucleus sampling (default: the server's)")
	repPenalty := fs.Float64("repetition-penalty", 0, "repetition penalty (default: the server's)")
	seed := fs.Int64("seed", -1, "random seed (default: none)")
	system := fs.String("system", "", "system prompt (chat backends)")
	quiet := fs.Bool("quiet", false, "do not print statistics on stderr")
	idle := fs.Duration("idle-timeout", stream.DefaultIdleTimeout, "give up when the endpoint sends nothing for this long")
	fs.Var(&stops, "stop", "stop sequence (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: genls generate [flags] PROMPT   (PROMPT \"-\" reads stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	prompt := fs.Arg(0)
	if prompt == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			fmt.Fprintln(stderr, "genls: reading the prompt from stdin:", err)
			return 1
		}
		prompt = string(b)
	}

	params := stream.Parameters{MaxNewTokens: *maxNew, StopSequences: stops}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["temperature"] {
		params.Temperature = temperature
	}
	if set["top-k"] {
		params.TopK = topK
	}
	if set["top-p"] {
		params.TopP = topP
	}
	if set["repetition-penalty"] {
		params.RepetitionPenalty = repPenalty
	}
	if set["seed"] {
		s := uint64(*seed)
		params.Seed = &s
	}

	log, _, sink, err := newLogger(ef.logLevel, "", stderr)
	if err != nil {
		fmt.Fprintln(stderr, "genls:", err)
		return 2
	}
	defer sink.Close()
	ep := ef.endpoint(os.Getenv)
	ep.Token, _ = stream.ResolveToken("", os.Getenv)
	client, err := stream.NewClient(stream.Config{
		Endpoint: ep, Logger: log, IdleTimeout: *idle,
		OnRetry: func(wait time.Duration, err error) {
			fmt.Fprintf(stderr, "genls: model is loading, retrying in %.0f s\n", wait.Seconds())
		},
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
	res := s.Result()
	if err := s.Err(); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "\ngenls: cancelled")
			return 130
		}
		fmt.Fprintln(stderr, "\ngenls:", explain(err))
		return 1
	}
	if !*quiet {
		fmt.Fprintf(stderr, "\ngenls: %d tokens, finish: %s, first token after %s, %.1f tokens/s\n",
			res.Tokens, res.FinishReason, res.TimeToFirstToken.Round(time.Millisecond), res.TokensPerSecond())
	}
	return 0
}

// explain adds to an error about the setup where to get it diagnosed.
func explain(err error) string {
	if stream.IsSetupError(err) {
		return err.Error() + "; run `genls doctor` to check the setup"
	}
	return err.Error()
}
