// Command sidebyside measures the CPU that clients spend per token on the
// same stream: `genls generate` for every backend, huggingface.js's
// textGenerationStream and chatCompletionStream when Node and the package
// are installed, and curl (which parses nothing) as the floor.
//
// A fake endpoint in this process streams n tokens as fast as it can in each
// backend's wire format (server.go); each client runs as its own process and
// its CPU is its whole-process user+system time from rusage, so start-up,
// HTTP, parsing and writing the text (to /dev/null) all count. Runs are
// interleaved across clients and the median is reported.
//
//	go run ./bench/sidebyside                          # 100,000 tokens, 5 runs
//	(cd bench/sidebyside && npm ci)                    # to include huggingface.js
//	go run ./bench/sidebyside -serve 127.0.0.1:8080    # only the fake endpoint
//
// It is a command, not a test: `go test ./...` does not run it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 100000, "tokens per stream")
	runs := flag.Int("runs", 5, "runs of each client; the median is reported")
	genls := flag.String("genls", "", "genls `binaries` to measure, separated by commas (default: build this module's)")
	node := flag.String("node", "node", "Node.js binary, for huggingface.js")
	only := flag.String("only", "", "measure only the clients whose name contains this")
	flush := flag.Bool("flush", false, "send each event in its own write (a read per token) instead of 4 KiB writes")
	serve := flag.String("serve", "", "only serve the fake endpoint on this `address` (e.g. 127.0.0.1:8080)")
	flag.Parse()
	ep := &endpoint{n: *n, flush: *flush}
	if err := run(ep, *runs, *genls, *node, *only, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "sidebyside:", err)
		os.Exit(1)
	}
}

func run(ep *endpoint, runs int, genls, node, only, serve string) error {
	n := ep.n
	if serve != "" {
		fmt.Fprintf(os.Stderr, "serving %d tokens a stream on http://%s\n", n, serve)
		return http.ListenAndServe(serve, ep)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: ep}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	dir, err := os.MkdirTemp("", "sidebyside")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if genls == "" {
		genls = filepath.Join(dir, "genls")
		build := exec.Command("go", "build", "-o", genls, "github.com/genls/genls")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building genls: %w", err)
		}
	}
	var clients []client
	bins := strings.Split(genls, ",")
	for _, bin := range bins {
		cs := genlsClients(bin, base, n)
		if len(bins) > 1 {
			for i := range cs {
				cs[i].name = strings.Replace(cs[i].name, "genls", bin, 1)
			}
		}
		clients = append(clients, cs...)
	}
	if js, why := hfjsClients(node, base, n); why != "" {
		fmt.Fprintln(os.Stderr, "sidebyside: huggingface.js skipped:", why)
	} else {
		clients = append(clients, js...)
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		clients = append(clients, client{name: "curl (reads, parses nothing)", stream: "TGI",
			args: []string{curl, "-sfN", "-o", "/dev/null", "-d", `{"inputs":"p","stream":true}`, base + "/generate_stream"}})
	}
	clients = slices.DeleteFunc(clients, func(c client) bool { return !strings.Contains(c.name, only) })

	results := make([][]measure, len(clients))
	for r := range runs {
		for i, c := range clients {
			m, err := c.run(n)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			fmt.Fprintf(os.Stderr, "run %d/%d %-40s cpu %6.3fs wall %6.3fs\n", r+1, runs, c.name, m.cpu.Seconds(), m.wall.Seconds())
			results[i] = append(results[i], m)
		}
	}
	report(os.Stdout, clients, results, ep, runs)
	return nil
}

// client is one program reading the stream.
type client struct {
	name, stream string
	args         []string
	// check reads the program's stderr and says whether it received the
	// whole stream; nil trusts the exit status.
	check func(stderr string, n int) error
	// reference marks the client the others are compared with.
	reference bool
}

func genlsClients(genls, base string, n int) []client {
	backends := []struct{ backend, url, stream string }{
		{"tgi", base, "TGI"},
		{"openai", base + "/v1", "OpenAI chat"},
		{"openai-completions", base + "/v1", "OpenAI completions"},
		{"ollama", base, "Ollama"},
	}
	var cs []client
	for _, b := range backends {
		cs = append(cs, client{
			name: "genls generate --backend " + b.backend, stream: b.stream,
			args: []string{genls, "generate", "--endpoint", b.url, "--backend", b.backend, "--model", model,
				"--max-new-tokens", strconv.Itoa(n), "-"},
			check: func(stderr string, n int) error {
				if !strings.Contains(stderr, fmt.Sprintf("genls: %d tokens in", n)) {
					return fmt.Errorf("did not get %d tokens: %s", n, stderr)
				}
				return nil
			},
		})
	}
	return cs
}

// hfjsClients runs hfjs.mjs, next to this file, when Node and
// @huggingface/inference (npm ci in this folder) are there.
func hfjsClients(node, base string, n int) ([]client, string) {
	_, file, _, _ := runtime.Caller(0)
	here := filepath.Dir(file)
	if _, err := os.Stat(filepath.Join(here, "node_modules", "@huggingface", "inference")); err != nil {
		return nil, "run `npm ci` in " + here
	}
	path, err := exec.LookPath(node)
	if err != nil {
		return nil, "no " + node + " on the PATH (-node)"
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return nil, fmt.Sprintf("%s --version: %v", path, err)
	}
	label := "huggingface.js " + packageVersion(filepath.Join(here, "node_modules", "@huggingface", "inference")) +
		" (Node " + strings.TrimSpace(string(out)) + ")"
	check := func(stderr string, n int) error {
		if strings.TrimSpace(stderr) != strconv.Itoa(n) {
			return fmt.Errorf("did not get %d tokens: %s", n, stderr)
		}
		return nil
	}
	script := filepath.Join(here, "hfjs.mjs")
	return []client{
		{name: label + " textGenerationStream", stream: "OpenAI completions", check: check, reference: true,
			args: []string{path, script, "text-generation", base + "/v1", strconv.Itoa(n)}},
		{name: label + " chatCompletionStream", stream: "OpenAI chat", check: check,
			args: []string{path, script, "chat", base + "/v1", strconv.Itoa(n)}},
	}, ""
}

// packageVersion reads the version of the npm package in dir.
func packageVersion(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return "?"
	}
	var pkg struct{ Version string }
	if json.Unmarshal(b, &pkg) != nil {
		return "?"
	}
	return pkg.Version
}

// measure is one run of a client.
type measure struct {
	cpu, wall time.Duration
	maxRSS    int64 // KiB
}

func (c client) run(n int) (measure, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.args[0], c.args[1:]...)
	cmd.Stdin = strings.NewReader("def fibonacci(n):")
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return measure{}, err
	}
	defer devnull.Close()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = devnull, &stderr
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		return measure{}, err
	}
	if c.check != nil {
		if err := c.check(stderr.String(), n); err != nil {
			return measure{}, err
		}
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return measure{cpu: cpu, wall: wall, maxRSS: ru.Maxrss}, nil
}

func report(w io.Writer, clients []client, results [][]measure, ep *endpoint, runs int) {
	n := ep.n
	median := func(ms []measure, f func(measure) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	cpuOf := func(m measure) float64 { return m.cpu.Seconds() }
	ref := -1.0
	for i, c := range clients {
		if c.reference {
			ref = median(results[i], cpuOf)
		}
	}
	writes := "4 KiB writes"
	if ep.flush {
		writes = "one write an event"
	}
	fmt.Fprintf(w, "%d tokens a stream in %s; whole-process CPU (user+system), median of %d runs; %d CPUs, load average %s\n\n",
		n, writes, runs, runtime.NumCPU(), loadAverage())
	fmt.Fprintln(w, "| client | stream | CPU s | µs/token | wall s | max RSS MiB | cheaper than textGenerationStream |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	for i, c := range clients {
		cpu := median(results[i], cpuOf)
		wall := median(results[i], func(m measure) float64 { return m.wall.Seconds() })
		rss := median(results[i], func(m measure) float64 { return float64(m.maxRSS) / 1024 })
		vs := "—"
		switch {
		case c.reference:
			vs = "(reference)"
		case ref > 0:
			vs = fmt.Sprintf("%.1f×", ref/cpu)
		}
		fmt.Fprintf(w, "| %s | %s | %.3f | %.2f | %.3f | %.0f | %s |\n", c.name, c.stream, cpu, cpu/float64(n)*1e6, wall, rss, vs)
	}
}

// loadAverage is the machine's load over the last minute, or "?" where
// /proc/loadavg does not say: other work inflates every figure.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
