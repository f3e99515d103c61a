package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/lock"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/taskgen"
	"github.com/lollypops/lollypops/go/internal/taskrun"
)

// A deployment of several hosts at once from a flake starts each host as
// soon as its own evaluation is done, instead of waiting for the slowest
// one: each host's tasks get a Taskfile of their own, run by their own
// go-task executor, while the other hosts are still being evaluated.

// streams reports whether a run deploys its hosts this way: a real run of
// a flake's hosts, several of them, all in parallel (all, -p, --on), and
// nothing that has to know every host before the first starts — a batch
// rollout, a sudo password (asked once for the hosts that use sudo),
// run-time overrides (checked against the run's hosts), a concurrency
// limit (go-task's, per executor).
func (o *options) streams(src *source, calls []string, real bool) bool {
	f := &o.Flags
	if !real || src.eval == nil || o.Rollout.enabled() || o.SudoPassword.Ask || o.SudoPassword.Command != "" ||
		o.Overrides.any() || f.Concurrency > 0 || f.Failfast || f.Interactive || f.ListJSON {
		return false
	}
	hosts := map[string]bool{}
	for _, c := range calls {
		if c == plan.AllTask {
			return len(src.Names()) > 1
		}
		h, _, _ := strings.Cut(c, ":")
		hosts[h] = true
	}
	return f.Parallel && len(hosts) > 1
}

// callsOf returns the calls that concern host: its umbrella task for all.
func callsOf(calls []string, host string) []string {
	var out []string
	for _, c := range calls {
		h, _, _ := strings.Cut(c, ":")
		switch {
		case c == plan.AllTask:
			out = append(out, host)
		case h == host:
			out = append(out, c)
		}
	}
	return slices.Compact(out)
}

// deployStreaming runs calls, every host as soon as it is evaluated.
func deployStreaming(in *interrupter, o *options, src *source, calls []string, vars []taskrun.Var, action string,
	stdin io.Reader, stdout, stderr io.Writer, out *ui, rep *runReport) (int, error) {
	f := &o.Flags
	names, err := hostsOf(calls, src)
	if err != nil {
		return exitUsage, err
	}
	all := names == nil
	if all {
		names = src.Names()
	}
	step, err := stepBinary()
	if err != nil {
		return exitError, err
	}
	run, err := rundir.Create()
	if err != nil {
		return exitError, err
	}
	defer run.Remove()
	gen := genOptions(step, action, run, f, true, rep)
	// The first interrupt also stops the evaluations: nothing new starts.
	evalCtx, stopEval := context.WithCancel(in.ctx)
	defer stopEval()
	in.setOnFirst(func() {
		markInterrupted(run)
		stopEval()
	})
	defer in.setOnFirst(nil)
	keeper, err := lock.Start(run)
	if err != nil {
		return exitError, fmt.Errorf("deploy lock: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return exitError, err
	}
	base := &taskrun.Request{
		Flags: f, Dir: wd, Vars: vars, PostDash: o.PostDash,
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
	}
	// Until a host is evaluated, its plan is its evaluation.
	planned := map[string][]string{}
	for _, n := range names {
		planned[n] = []string{evalStep}
	}
	var v *view
	if wantView(f, stdout) {
		v = startView(in, out, stdout.(*os.File), base, run.Results(), planned)
	}

	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		runErr   error
		inv      = &config.Inventory{Version: config.Version, Hosts: map[string]*config.Host{}}
		failures []string
	)
	fail := func(name, why string) {
		failures = append(failures, name)
		planned[name] = []string{evalStep}
		if err := recordEvalFailures(run, []string{name}, map[string]string{name: why}); err != nil {
			out.printf("%s: %v", name, err)
		}
	}
	start := time.Now()
	evalErr := src.Stream(evalCtx, nilIf(all, names), func(name string, h *config.Host, failure string) {
		mu.Lock()
		defer mu.Unlock()
		if h == nil {
			fail(name, failure)
			return
		}
		one := &config.Inventory{Version: config.Version, Hosts: map[string]*config.Host{name: h}}
		sel, err := plan.Build(one).Select(callsOf(calls, name))
		if err != nil {
			fail(name, err.Error())
			return
		}
		steps := sel.HostSteps()
		taskfile, err := taskgen.Generate(sel, one, gen)
		if err == nil {
			err = writeHostInventories(run, one, steps)
		}
		if err == nil {
			err = os.WriteFile(run.HostTaskfile(name), taskfile, 0o600)
		}
		if err != nil {
			fail(name, "preparing its tasks: "+err.Error())
			return
		}
		planned[name] = steps[name]
		v.plan(name, steps[name])
		if in.interrupted() {
			return // not started: the summary says so
		}
		inv.Hosts[name] = h
		req := *base
		req.Taskfile = run.HostTaskfile(name)
		req.TempDir = filepath.Join(run.Path, "task", name)
		req.Calls = callsOf(calls, name)
		wg.Go(func() {
			err := taskrun.Run(in.ctx, &req)
			mu.Lock()
			defer mu.Unlock()
			var failed *taskrun.TaskFailed
			if err != nil && (runErr == nil || errors.As(runErr, &failed) && !errors.As(err, &failed)) {
				runErr = err
			}
		})
	})
	wg.Wait()
	v.stop()
	started := map[string][]string{}
	for n := range inv.Hosts {
		started[n] = planned[n]
	}
	defer closeConnections(run, inv, started, keeper, out)
	if evalErr != nil && runErr == nil && !in.interrupted() {
		runErr = evalErr
	}
	if all {
		// Hosts without lollypops' module are no targets of all.
		for _, n := range names {
			if src.hasNoModule(n) && !slices.Contains(failures, n) {
				delete(planned, n)
			}
		}
	}
	return summarize(run, nil, planned, runErr, f.ExitCode, time.Since(start), out, rep)
}

func nilIf(cond bool, names []string) []string {
	if cond {
		return nil
	}
	return names
}
