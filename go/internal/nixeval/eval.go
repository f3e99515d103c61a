package nixeval

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	lpoutput "github.com/lollypops/lollypops/go/internal/output"
	"github.com/lollypops/lollypops/go/internal/parallel"

	"github.com/lollypops/lollypops/go/internal/termtext"
)

// Result is one host's evaluation.
type Result struct {
	Name string
	// Entry is the host's inventory entry, as JSON; nil when the host has
	// none.
	Entry json.RawMessage
	// Home is set for a home-manager configuration deployed on its own
	// (homeConfigurations).
	Home bool
	// NoModule is set for a host that does not import lollypops' module
	// (or imports one of another revision: Err says so).
	NoModule bool
	// Err is why the host could not be evaluated: Nix's message, trimmed.
	Err error
}

// HostError is a host whose evaluation failed.
type HostError struct {
	Host string
	Msg  string
}

// Error is the message cleaned for a terminal: it is Nix's, and quotes the
// configuration's own strings (package termtext).
func (e *HostError) Error() string { return termtext.Text(e.Msg) }

// Evaluator evaluates hosts of one flake.
type Evaluator struct {
	Nix   string // the nix program
	Flake *Flake
	// Homes are the names that are home-manager configurations
	// (homeConfigurations); the others are nixosConfigurations.
	Homes map[string]bool
	// Jobs is how many nix processes run at once (0: one per CPU).
	Jobs int
	// MemoryBudget is the peak memory, in bytes, one nix process should
	// stay under; it sizes the chunks (0: a share of the available memory).
	MemoryBudget int64
	// Stderr receives what Nix prints besides the entries: warnings,
	// the configuration's own traces.
	Stderr io.Writer
	// Cache, when set, keeps hosts' evaluations across runs (package
	// evalcache): Evaluate serves the hosts it holds without starting
	// nix, and stores what it evaluates, but for failures.
	Cache Cache

	outMu sync.Mutex // the processes' lines reach Stderr one batch at a time

	nonceOnce sync.Once
	nonce     string
}

// Cache keeps the evaluations of one flake's targets, with the lines Nix
// printed while evaluating each (its warnings and traces, which a cached
// target prints again). Its methods may be called from several goroutines
// at once.
type Cache interface {
	// Lookup returns the target's cached evaluation; ok is false when
	// there is none, whatever the reason. It is called from several
	// goroutines at once.
	Lookup(name string, home bool) (r Result, printed []string, ok bool)
	// Store keeps an evaluation that succeeded: Err is nil. It reports no
	// error: a cache that cannot be written is a cache that misses.
	Store(r Result, printed []string)
}

// tracePrefix starts the trace line that carries one host's result; the
// run's nonce follows it.
const tracePrefix = "trace: lollypops-eval "

// marker starts the trace lines that carry the results of this run's
// evaluations: the prefix and a random nonce, made once per Evaluator.
// Nix code cannot know the nonce: it is only in the --apply expression,
// on nix's command line, which a pure evaluation cannot read (nor the
// process's environment: builtins.getEnv gives "" there), so a host's
// configuration cannot trace a line that passes for another host's
// result.
func (e *Evaluator) marker() string {
	e.nonceOnce.Do(func() {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			panic(fmt.Sprintf("nixeval: no randomness for the evaluation's nonce: %v", err))
		}
		e.nonce = hex.EncodeToString(b)
	})
	return tracePrefix + e.nonce + " "
}

// maxChunk bounds the hosts one nix process evaluates, whatever the
// memory: a failure costs the rest of the chunk one more process start.
const maxChunk = 64

// Evaluate evaluates the named hosts and calls each with every host's
// result, as soon as it is known, from several goroutines (never at the
// same time). It returns when every host has a result, or ctx is done.
func (e *Evaluator) Evaluate(ctx context.Context, names []string, each func(Result)) error {
	if e.Cache != nil {
		names = e.cached(names, each)
		if len(names) == 0 {
			return ctx.Err()
		}
	}
	jobs := e.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	jobs = min(jobs, len(names))
	budget := e.MemoryBudget
	if budget <= 0 {
		budget = defaultBudget(jobs)
	}
	q := &queue{pending: append([]string(nil), names...), home: e.Homes}
	var mu sync.Mutex
	report := func(r Result) {
		mu.Lock()
		defer mu.Unlock()
		each(r)
	}
	// A chunk that fails before its first host may fail for the flake's
	// sake (no nixosConfigurations, a lock that needs the network): then
	// every host would fail the same way, one process each. The first such
	// failure asks once whether the flake itself evaluates.
	var probe sync.Once
	var flakeMu sync.Mutex
	var flakeErr error
	broken := func() error {
		flakeMu.Lock()
		defer flakeMu.Unlock()
		return flakeErr
	}
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			size := 1 // the first host of each worker is ready soonest
			for ctx.Err() == nil {
				chunk := q.take(size, jobs)
				if len(chunk) == 0 {
					return
				}
				done, rss := e.run(ctx, chunk, func(r Result) {
					if r.Err != nil && r.Name == chunk[0] && !r.NoModule {
						probe.Do(func() {
							_, err := Names(ctx, e.Nix, e.Flake)
							flakeMu.Lock()
							flakeErr = err
							flakeMu.Unlock()
						})
						if err := broken(); err != nil {
							r.Err = &HostError{Host: r.Name, Msg: err.Error()}
						}
					}
					report(r)
				})
				if err := broken(); err != nil && ctx.Err() == nil {
					// Every host left fails the same way.
					for _, n := range append(chunk[done:], q.take(len(names), 1)...) {
						report(Result{Name: n, Err: &HostError{Host: n, Msg: err.Error()}})
					}
					return
				}
				if done < len(chunk) {
					q.putBack(chunk[done:])
				}
				if done > 0 && rss > 0 {
					size = max(1, min(maxChunk, int(budget/(rss/int64(done)))))
				}
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// cached reports the hosts the cache holds, with what Nix printed while
// evaluating them, and returns the others.
// Many names (a listing of a thousand hosts) are looked up on every core;
// each is called in the order of names, from this goroutine.
func (e *Evaluator) cached(names []string, each func(Result)) []string {
	type found struct {
		r       Result
		printed []string
		ok      bool
	}
	got := make([]found, len(names))
	parallel.For(len(names), 64, func(i int) {
		n := names[i]
		r, printed, ok := e.Cache.Lookup(n, e.Homes[n])
		got[i] = found{r, printed, ok && r.Name == n && r.Home == e.Homes[n] && r.Err == nil}
	})
	var misses []string
	for i, n := range names {
		if !got[i].ok {
			misses = append(misses, n)
			continue
		}
		e.forward(got[i].printed)
		each(got[i].r)
	}
	return misses
}

// queue hands out the hosts left to evaluate.
type queue struct {
	mu      sync.Mutex
	pending []string
	home    map[string]bool
}

// take returns up to size hosts, and no more than a fair share of what is
// left, so that the last hosts do not all wait for one process; all of one
// kind (hosts or homes: one flake output per process).
func (q *queue) take(size, jobs int) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(size, max(1, (len(q.pending)+jobs-1)/jobs), len(q.pending))
	for i := 1; i < n; i++ {
		if q.home[q.pending[i]] != q.home[q.pending[0]] {
			n = i
			break
		}
	}
	chunk := q.pending[:n:n]
	q.pending = q.pending[n:]
	return chunk
}

func (q *queue) putBack(names []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(append([]string(nil), names...), q.pending...)
}

// defaultBudget is half the available memory, shared by the jobs.
func defaultBudget(jobs int) int64 {
	const fallback = 1 << 30
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return fallback
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil && kb > 0 {
				return kb * 1024 / 2 / int64(max(jobs, 1))
			}
		}
	}
	return fallback
}

// nonceOf is the run's nonce (see marker).
func (e *Evaluator) nonceOf() string {
	e.marker()
	return e.nonce
}

// run evaluates a chunk in one nix process. It returns how many of the
// chunk's hosts got a result (the others are to be evaluated again) and
// the process's peak memory in bytes.
func (e *Evaluator) run(ctx context.Context, chunk []string, report func(Result)) (int, int64) {
	home := e.Homes[chunk[0]]
	cmd := exec.CommandContext(ctx, e.Nix, nixArgs("eval", "--json", "--no-write-lock-file",
		e.Flake.Ref+"#"+output(home), "--apply", Expression(e.Flake.Path, e.nonceOf(), chunk))...)
	cmd.Stdout = io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		failAll(chunk, err, report)
		return len(chunk), 0
	}
	if err := cmd.Start(); err != nil {
		failAll(chunk, fmt.Errorf("starting %s: %w", e.Nix, err), report)
		return len(chunk), 0
	}
	done := 0
	// What Nix printed since the last entry: the next host's warnings,
	// or, when the process fails, the error that failed it.
	var pending []string
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	marker := e.marker()
	for sc.Scan() {
		line := sc.Text()
		payload, ok := strings.CutPrefix(line, marker)
		if !ok {
			if strings.HasPrefix(line, tracePrefix) {
				// A configuration traced a line shaped like a result:
				// the host it is evaluated with tried to pass for
				// another. It is text, and said to be suspicious.
				line = lpoutput.Prefix + "warning: ignored a line a configuration traced as if it were a host's evaluation result: " + line
			}
			pending = append(pending, line)
			continue
		}
		e.forward(pending)
		printed := pending
		pending = nil
		r, err := parseResult(payload)
		if err != nil || done >= len(chunk) || r.Name != chunk[done] {
			// Cannot happen: only this process's expression knows the
			// nonce. Not a result, whatever it is.
			e.forward([]string{lpoutput.Prefix + "warning: ignored an unexpected evaluation result: " + line})
			continue
		}
		r.Home = home
		if e.Cache != nil && r.Err == nil {
			e.Cache.Store(r, printed)
		}
		report(r)
		done++
	}
	io.Copy(io.Discard, stderr)
	waitErr := cmd.Wait()
	rss := int64(0)
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss * 1024
		}
	}
	if ctx.Err() != nil {
		return done, rss
	}
	if done < len(chunk) {
		// The host being evaluated when the process ended is the one that
		// failed it; what it printed before the error is its warnings.
		warnings, msg := splitError(pending)
		e.forward(warnings)
		if msg == "" {
			msg = Trim("", waitErr)
		}
		report(Result{Name: chunk[done], Home: home, Err: &HostError{Host: chunk[done], Msg: msg}})
		return done + 1, rss
	}
	e.forward(pending)
	return done, rss
}

func failAll(chunk []string, err error, report func(Result)) {
	for _, n := range chunk {
		report(Result{Name: n, Err: &HostError{Host: n, Msg: err.Error()}})
	}
}

func (e *Evaluator) forward(lines []string) {
	if e.Stderr == nil || len(lines) == 0 {
		return
	}
	e.outMu.Lock()
	defer e.outMu.Unlock()
	for _, l := range lines {
		// A configuration's warnings and traces are its own text.
		fmt.Fprintln(e.Stderr, termtext.Text(l))
	}
}

// parseResult reads one marker line's JSON.
func parseResult(payload string) (Result, error) {
	var m struct {
		Host    string          `json:"host"`
		Entry   json.RawMessage `json:"entry"`
		Missing string          `json:"missing"`
	}
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		return Result{}, err
	}
	r := Result{Name: m.Host}
	switch m.Missing {
	case "":
		if len(m.Entry) == 0 {
			return r, errors.New("no entry")
		}
		r.Entry = m.Entry
	case "module":
		r.NoModule = true
	case "entry":
		r.NoModule = true
		r.Err = &HostError{Host: m.Host, Msg: "it imports a lollypops NixOS module of another revision than this runner's (it has no lollypops.inventory-entry)"}
	default:
		return r, fmt.Errorf("unknown missing %q", m.Missing)
	}
	return r, nil
}

// splitError separates, in what a failed nix printed, the lines before its
// error from the error itself, trimmed.
func splitError(lines []string) (before []string, msg string) {
	for i, l := range lines {
		if strings.HasPrefix(l, "error:") {
			return lines[:i], Trim(strings.Join(lines[i:], "\n"), nil)
		}
	}
	return lines, ""
}

// Trim shortens a Nix error for a one-host summary line: the innermost
// "error:" message (newer Nix prints the evaluation's context first), no
// --show-trace advice, no "error:" prefix, at most a few lines.
func Trim(stderr string, err error) string {
	text := strings.TrimSpace(stderr)
	var lines []string
	for l := range strings.SplitSeq(text, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "(use '--show-trace'") || t == "" {
			continue
		}
		if strings.HasPrefix(t, "error:") && strings.TrimSpace(strings.TrimPrefix(t, "error:")) != "" {
			lines = lines[:0] // the last error is the cause
		}
		if strings.HasPrefix(t, "…") || strings.HasPrefix(t, "at ") || isSnippet(t) {
			continue // evaluation context, positions, source lines
		}
		lines = append(lines, t)
	}
	if len(lines) == 0 {
		if err != nil {
			return err.Error()
		}
		return "nix failed"
	}
	lines[0] = strings.TrimSpace(strings.TrimPrefix(lines[0], "error:"))
	if lines[0] == "" {
		lines = lines[1:]
	}
	const maxLines = 12
	if len(lines) > maxLines {
		lines = append(lines[:maxLines], fmt.Sprintf("(%d more lines)", len(lines)-maxLines))
	}
	return strings.Join(lines, "\n")
}

// output is the flake output that holds a kind of target.
func output(home bool) string {
	if home {
		return "homeConfigurations"
	}
	return "nixosConfigurations"
}

// Expression is the --apply function that evaluates the named hosts of
// nixosConfigurations (or homes of homeConfigurations), one after the
// other, tracing each host's result on its own line as soon as it is
// known, behind the run's nonce (see Evaluator.marker), so that only the
// expression's own lines are taken for results. It is self-contained: a pure
// evaluation cannot import lollypops' Nix files, so the projection comes
// from the target's own module (lollypops.inventory-entry, in lollypops'
// NixOS and home-manager modules alike).
func Expression(flakePath, nonce string, names []string) string {
	var b bytes.Buffer
	b.WriteString(`configs: map (name:
  let
    l = configs.${name}.config.lollypops or null;
    result =
      if l == null then { host = name; missing = "module"; }
      else if !(l ? inventory-entry) then { host = name; missing = "entry"; }
      else { host = name; entry = l.inventory-entry { inherit name; flake = `)
	b.WriteString(nixString(flakePath))
	b.WriteString(`; }; };
  in builtins.trace ("lollypops-eval `)
	b.WriteString(nonce)
	b.WriteString(` " + builtins.toJSON result) null) [`)
	for _, n := range names {
		b.WriteByte(' ')
		b.WriteString(nixString(n))
	}
	b.WriteString(" ]")
	return b.String()
}

// nixString quotes s as a Nix string literal.
func nixString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `${`, `\${`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// isSnippet reports whether a line is part of the source excerpt newer Nix
// prints under an error ("13|       x = …;", "|   ^").
func isSnippet(line string) bool {
	num := strings.TrimLeft(line, "0123456789")
	return strings.HasPrefix(strings.TrimSpace(num), "|")
}
