// Package deploy is one run of lollypops that touches hosts: every command
// that deploys goes through Run, whatever selects its hosts and however
// many there are.
//
// Hosts arrive from one Source: an inventory file delivers them all at
// once, a flake each as soon as its evaluation is done. Each host, as it
// arrives, gets this run's overrides (Config.Prepare), its plan (package
// plan), its own Taskfile (package taskgen) and its own go-task executor
// (package taskrun). One scheduler decides when a host starts: at once, at
// most -C at a time, batch after batch (--batch, --max-failures), or one
// after another in the order of the command line; after a failure with
// --failfast, and after an interrupt, nothing new starts. The summary,
// the run report's hosts and the exit code's kind come from the steps'
// records (package report).
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/lock"
	"github.com/lollypops/lollypops/go/internal/output"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/report"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/ssh"
	"github.com/lollypops/lollypops/go/internal/sudopw"
	"github.com/lollypops/lollypops/go/internal/taskgen"
	"github.com/lollypops/lollypops/go/internal/taskrun"
	"github.com/lollypops/lollypops/go/internal/termtext"
)

// Config is one run that deploys.
type Config struct {
	Source *Source
	// Calls are the tasks to run: HOST, HOST:STEP, or "all".
	Calls    []string
	Vars     []taskrun.Var
	PostDash []string
	Action   string
	Flags    *taskrun.Flags
	// StepBinary is lollypops-step, which the tasks call.
	StepBinary string
	Dir        *rundir.Dir
	WorkDir    string
	// Report makes the steps record what --report shows.
	Report bool
	// Prepare applies the run's overrides to a host as it arrives; a host
	// it refuses fails alone.
	Prepare func(name string, h *config.Host) error
	// Schedule says when each host starts.
	Schedule Schedule
	// Password is sudo's, for the hosts whose sudo asks (package sudopw);
	// nil for none.
	Password []byte
	// Timings prints the run's time breakdown after the summary.
	Timings bool
	// JSONDiff prints the diff steps' results as one JSON document on
	// JSONOut after the summary.
	JSONDiff bool
	JSONOut  io.Writer
	Stdin    io.Reader
	// Stdout and Stderr receive go-task's output: the hosts', the steps'.
	Stdout, Stderr io.Writer
	Out            *output.Sink
	// Planned learns each host's steps once they are known (the live
	// view); until then a host's plan is its evaluation.
	Planned func(host string, steps []string)
	// Finished is called when every host is done, before the summary.
	Finished func()
	// Ready is called once the command line has been checked against the
	// hosts, before anything starts: the last chance to refuse the run
	// (a missing step binary) or to ask the user (a sudo password).
	Ready func() error
	// Interrupt registers what the first interrupt does; Interrupted
	// reports whether one came.
	Interrupt   func(first func())
	Interrupted func() bool
}

// Schedule says when each host of a run starts.
type Schedule struct {
	// Parallel starts hosts at once; otherwise one after another, in the
	// order of the command line, and none after one failed (go-task's
	// order without -p).
	Parallel bool
	// Limit is the number of hosts at most at once (-C); 0 for no limit.
	Limit int
	// Failfast starts no host after one failed; the running ones finish
	// their own steps (an activation is never cut short).
	Failfast bool
	// Batch, when set, is --batch (N or P%), MaxFailures --max-failures.
	Batch, MaxFailures string
}

// Result is what a run did: each host's summary, in natural order.
type Result struct {
	Hosts []report.Host
}

// UnknownTask turns plan's unknown-task error into a usage error with a
// suggestion.
func UnknownTask(err error) error {
	var ut *plan.UnknownTaskError
	if !errors.As(err, &ut) {
		return err
	}
	hint := "lollypops --list-all shows every task"
	if q := plan.DidYouMean(ut.Suggestions); q != "" {
		hint = q + " " + hint
	}
	return fault.Usagef(hint, "%s", ut.Error())
}

// job is one executor run: a host's calls (several, one after another,
// when the command line names them so).
type job struct {
	host  string
	calls []string
	batch int
	state jobState
	err   error
}

type jobState int

const (
	waiting jobState = iota
	running
	done
	skipped // its host was not evaluated, or has no lollypops module
)

// arrival is a host that was evaluated and prepared, or that failed.
type arrival struct {
	name string
	ok   bool
}

// Run runs c: it returns the run's result and, when a host failed, an
// error of kind fault.HostsFailed (reported already by the summary, or
// carrying what went wrong besides).
func Run(ctx context.Context, c *Config) (*Result, error) {
	names, err := HostsOf(c.Calls, c.Source)
	if err != nil {
		return nil, err
	}
	all := names == nil
	if all {
		names = c.Source.Names()
	}
	jobs, batches, err := makeJobs(c.Calls, names, c.Schedule)
	if err != nil {
		return nil, err
	}
	limit := 0
	if c.Schedule.Batch != "" {
		if limit, err = count("max-failures", c.Schedule.MaxFailures, len(names), 0); err != nil {
			return nil, err
		}
	}
	if err := preflight(ctx, c, names, all); err != nil {
		return nil, err
	}
	if c.Ready != nil {
		if err := c.Ready(); err != nil {
			return nil, err
		}
	}
	p := &pipeline{c: c, run: c.Dir, names: names, all: all, start: time.Now(),
		gen:     TaskfileOptions(c.StepBinary, c.Action, c.Dir, c.Flags, true, c.Report),
		planned: map[string][]string{}, hosts: map[string]*config.Host{}, closed: map[string]bool{},
		arrived: make(chan arrival, len(names)+1), results: make(chan *job),
		sched: &scheduler{jobs: jobs, batches: batches, limit: limit, sched: c.Schedule, ready: map[string]bool{}, gone: map[string]bool{}},
	}
	for _, n := range names {
		p.planned[n] = []string{EvalStep}
	}
	// The first interrupt also stops the evaluations: nothing new starts.
	evalCtx, stopEval := context.WithCancel(ctx)
	defer stopEval()
	p.stopEval = stopEval
	c.Interrupt(func() {
		MarkInterrupted(p.run)
		stopEval()
	})
	defer c.Interrupt(nil)
	keeper, err := lock.Start(p.run)
	if err != nil {
		return nil, fmt.Errorf("deploy lock: %w", err)
	}
	p.keeper = keeper
	if c.Password != nil {
		srv, err := sudopw.Serve(p.run.Path, c.Password, p.sudoClient)
		if err != nil {
			return nil, err
		}
		defer srv.Close()
	}
	p.base = taskrun.Request{
		Flags: c.Flags, Dir: c.WorkDir, Vars: c.Vars, PostDash: c.PostDash,
		Stdin: c.Stdin, Stdout: output.Tasks(c.Stdout), Stderr: output.Tasks(c.Stderr),
	}
	defer p.base.Stdout.(*termtext.Writer).Flush()
	defer p.base.Stderr.(*termtext.Writer).Flush()

	streamed := make(chan error, 1)
	go func() { streamed <- c.Source.Stream(evalCtx, nilIf(all, names), p.arrive) }()
	evalErr, halt, err := p.schedule(ctx, streamed)
	if err != nil {
		return nil, err
	}
	if c.Finished != nil {
		c.Finished()
	}
	defer func() {
		p.closing.Wait()
		closeConnections(p.run, p.started(), p.closed, keeper, c.Out)
	}()
	return p.finish(evalErr, halt, time.Since(p.start))
}

// pipeline is one Run under way.
type pipeline struct {
	c        *Config
	start    time.Time
	run      *rundir.Dir
	names    []string
	all      bool
	gen      taskgen.Options
	base     taskrun.Request
	sched    *scheduler
	stopEval context.CancelFunc
	arrived  chan arrival
	results  chan *job
	// quiet, after a halt: the evaluations still under way are cancelled;
	// their hosts were never going to start, and did not fail.
	quiet atomic.Bool

	mu      sync.Mutex
	planned map[string][]string // host → its steps, for the summary
	hosts   map[string]*config.Host

	// A host whose jobs are all done is unlocked and its connection
	// closed at once (closing), and is in closed.
	keeper  *lock.Keeper
	closing sync.WaitGroup
	closed  map[string]bool
}

// sudoClient is the connection of a host of the run whose sudo may need
// the password.
func (p *pipeline) sudoClient(name string) (*ssh.Client, error) {
	p.mu.Lock()
	h := p.hosts[name]
	p.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("host %q is not in this run", name)
	}
	if !h.Deployment.Sudo.Enable {
		return nil, fmt.Errorf("%s does not use sudo (lollypops.deployment.sudo.enable)", name)
	}
	return &ssh.Client{Host: h, Prefix: p.run.SSH(name)}, nil
}

// arrive takes a host from the source: prepared, it may start; failed, it
// fails alone.
func (p *pipeline) arrive(name string, h *config.Host, failure string) {
	if h != nil {
		err := p.prepare(name, h)
		var refused *Refused
		switch {
		case errors.As(err, &refused):
			p.refuse(name, refused)
			p.arrived <- arrival{name: name}
			return
		case err != nil:
			failure = err.Error()
		default:
			p.arrived <- arrival{name: name, ok: true}
			return
		}
	}
	if !p.quiet.Load() {
		if err := recordEvalFailure(p.run, name, failure); err != nil {
			p.c.Out.Printf("%s: %v", name, err)
		}
	}
	p.arrived <- arrival{name: name}
}

// Refused is Prepare's error for a host the run does not start: its
// summary shows it failed at Step, with the error and its hint.
type Refused struct {
	Step string
	Err  error
}

func (r *Refused) Error() string { return r.Err.Error() }
func (r *Refused) Unwrap() error { return r.Err }

// refuse records a host that Prepare refused.
func (p *pipeline) refuse(name string, r *Refused) {
	p.mu.Lock()
	p.planned[name] = []string{r.Step}
	p.mu.Unlock()
	if p.c.Planned != nil {
		p.c.Planned(name, []string{r.Step})
	}
	now := time.Now()
	rec := report.Record{Host: name, Step: r.Step, Status: report.Failed, Start: now, End: now,
		Error: termtext.Text(r.Err.Error()), Hint: fault.HintOf(r.Err)}
	if err := report.Write(p.run.Results(), rec); err != nil {
		p.c.Out.Printf("%s: %v", name, err)
	}
}

// prepare gives a host the run's overrides, its plan, its Taskfile and
// its inventory.
func (p *pipeline) prepare(name string, h *config.Host) error {
	if p.c.Prepare != nil {
		if err := p.c.Prepare(name, h); err != nil {
			return err
		}
	}
	one := &config.Inventory{Version: config.Version, Hosts: map[string]*config.Host{name: h}}
	sel, err := plan.Build(one).Select(callsOf(p.c.Calls, name))
	if err != nil {
		return err
	}
	taskfile, err := taskgen.Generate(sel, one, p.gen)
	if err == nil {
		err = writeHostInventory(p.run, name, h)
	}
	if err == nil {
		err = writeFile(p.run.HostTaskfile(name), taskfile)
	}
	if err != nil {
		return fmt.Errorf("preparing its tasks: %w", err)
	}
	steps := sel.HostSteps()[name]
	p.mu.Lock()
	p.planned[name] = steps
	p.hosts[name] = h
	p.mu.Unlock()
	if p.c.Planned != nil {
		p.c.Planned(name, steps)
	}
	return nil
}

// startJob runs a job in its host's executor.
func (p *pipeline) startJob(ctx context.Context, j *job) {
	req := p.base
	req.Taskfile = p.run.HostTaskfile(j.host)
	req.TempDir = filepath.Join(p.run.Path, "task", j.host)
	req.Calls = j.calls
	var lines []*output.Lines
	if o := req.Flags.Output; o == "" || o == "prefixed" || o == "group" {
		// Each job is its own go-task executor, which writes a
		// prefixed line in pieces: whole lines only, or two hosts'
		// pieces mix. (Interleaved output passes on what a command
		// writes as it comes, a prompt without its newline too.)
		out, errs := output.NewLines(req.Stdout), output.NewLines(req.Stderr)
		req.Stdout, req.Stderr, lines = out, errs, []*output.Lines{out, errs}
	}
	go func() {
		j.err = taskrun.Run(ctx, &req)
		for _, l := range lines {
			l.Flush()
		}
		p.results <- j
	}()
}

// schedule starts the jobs as their hosts arrive and the schedule allows,
// until every job is done or none will start. It returns the source's
// error and why a rollout stopped.
func (p *pipeline) schedule(ctx context.Context, streamed <-chan error) (evalErr error, halt *Stopped, err error) {
	s := p.sched
	streaming := true
	for {
		stop := p.c.Interrupted() || halt != nil
		if (stop || s.halted()) && !p.quiet.Load() && !p.c.Interrupted() {
			p.quiet.Store(true)
			p.stopEval()
		}
		for _, j := range s.startable(stop) {
			p.startJob(ctx, j)
		}
		if s.running == 0 && !streaming && s.finished(stop) {
			return evalErr, halt, nil
		}
		select {
		case a := <-p.arrived:
			if a.ok {
				s.ready[a.name] = true
			} else {
				s.gone[a.name] = true
			}
		case evalErr = <-streamed:
			streaming = false
			p.missing()
		case j := <-p.results:
			s.running--
			j.state = done
			s.failed = s.failed || j.err != nil
			if s.allDone(j.host) {
				p.finishHost(j.host)
			}
		}
		if halt == nil {
			p.mu.Lock()
			planned := maps.Clone(p.planned)
			p.mu.Unlock()
			if halt, err = s.checkBatch(p.run, planned); err != nil {
				return nil, nil, err
			}
			if halt != nil {
				writeFile(filepath.Join(p.run.Path, "rollout-stopped"), []byte(halt.Error()))
			}
		}
	}
}

// missing ends the hosts that never arrived: they have no lollypops
// module, and are no target of all.
func (p *pipeline) missing() {
	for len(p.arrived) > 0 {
		a := <-p.arrived
		if a.ok {
			p.sched.ready[a.name] = true
		} else {
			p.sched.gone[a.name] = true
		}
	}
	for _, n := range p.names {
		if !p.sched.ready[n] && !p.sched.gone[n] {
			p.sched.gone[n] = true
			if p.all && p.c.Source.HasNoModule(n) {
				p.mu.Lock()
				delete(p.planned, n)
				p.mu.Unlock()
			}
		}
	}
}

// usesSudo reports whether a host of the run uses sudo.
func (p *pipeline) usesSudo() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.hosts {
		if h.Deployment.Sudo.Enable {
			return true
		}
	}
	return false
}

// finishHost releases the deploy lock of a host whose jobs are all done
// and closes its connection, while the run goes on: another run may deploy
// it, and the run's end has one host less to wait for. A build host's
// connection, which hosts share, stays until the end.
func (p *pipeline) finishHost(name string) {
	p.mu.Lock()
	h := p.hosts[name]
	p.mu.Unlock()
	if h == nil || p.closed[name] {
		return
	}
	p.closed[name] = true
	p.closing.Go(func() {
		lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
		p.keeper.ReleaseHost(lctx, name)
		lcancel()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c := &ssh.Client{Host: h, Prefix: p.run.SSH(name)}
		if err := c.Close(ctx); err != nil {
			p.c.Out.Error(err)
		}
	})
}

// started returns the hosts that ran, whose connections are closed.
func (p *pipeline) started() map[string]*config.Host {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]*config.Host{}
	for _, j := range p.sched.jobs {
		if j.state == done {
			out[j.host] = p.hosts[j.host]
		}
	}
	return out
}

// finish prints the summary (and --json's diffs) and returns the result.
func (p *pipeline) finish(evalErr error, halt *Stopped, took time.Duration) (*Result, error) {
	var runErr error
	var failed *taskrun.TaskFailed
	for _, j := range p.sched.jobs {
		if j.err != nil && (runErr == nil || errors.As(runErr, &failed) && !errors.As(j.err, &failed)) {
			runErr = j.err
		}
	}
	if evalErr != nil && runErr == nil && !p.c.Interrupted() {
		runErr = evalErr
	}
	res, err := summarize(p.run, p.planned, runErr, p.c.Flags.ExitCode, took, p.c.Out)
	if p.c.Timings && res != nil {
		var b strings.Builder
		report.RenderTimings(&b, res.Hosts, p.start, output.Prefix)
		p.c.Out.Lines(b.String())
	}
	if p.c.Password != nil && !p.usesSudo() {
		p.c.Out.Printf("a sudo password was given, but no host of this run uses sudo (lollypops.deployment.sudo.enable, or --sudo)")
	}
	if halt != nil {
		p.c.Out.Printf("%v", halt)
		if err == nil {
			err = &fault.Error{K: fault.HostsFailed}
		}
	}
	if p.c.JSONDiff {
		order := make([]string, 0, len(p.planned))
		for h := range p.planned {
			order = append(order, h)
		}
		plan.SortNatural(order)
		if werr := writeDiffs(p.c.JSONOut, p.run, order); werr != nil && err == nil {
			err = werr
		}
	}
	return res, err
}

// preflight checks, before any host starts, what makes the whole command
// line wrong: an inventory file that cannot be decoded (it is written
// whole), a step no named host has. A flake's hosts are evaluated first
// only when the command line names a step of one that is not built in:
// only its evaluation knows its extra tasks.
func preflight(ctx context.Context, c *Config, names []string, all bool) error {
	var pre []string
	if !c.Source.Streams() {
		pre = names
	} else {
		for _, call := range c.Calls {
			h, step, ok := strings.Cut(call, ":")
			if ok && !slices.Contains(config.BuiltinTasks, step) && !slices.Contains(config.HomeBuiltinTasks, step) && !slices.Contains(pre, h) {
				pre = append(pre, h)
			}
		}
	}
	if len(pre) == 0 {
		return nil
	}
	if all && !c.Source.Streams() {
		pre = nil
	}
	inv, err := c.Source.Load(ctx, pre)
	if err != nil {
		return fault.As(fault.Input, err)
	}
	for name, h := range inv.Hosts {
		one := &config.Inventory{Version: config.Version, Hosts: map[string]*config.Host{name: h}}
		if _, err := plan.Build(one).Select(callsOf(c.Calls, name)); err != nil {
			return UnknownTask(err)
		}
	}
	return nil
}

func nilIf(cond bool, names []string) []string {
	if cond {
		return nil
	}
	return names
}

// summarize prints the per-host summary of a run that touched hosts and
// returns its result and error.
func summarize(run *rundir.Dir, planned map[string][]string, runErr error, passExit bool, took time.Duration, out *output.Sink) (*Result, error) {
	records, err := report.ReadAll(run.Results())
	if err != nil {
		return nil, fmt.Errorf("reading the step results: %w", err)
	}
	names := make([]string, 0, len(planned))
	for h := range planned {
		names = append(names, h)
	}
	plan.SortNatural(names)
	sum := report.Build(names, planned, records)
	var b strings.Builder
	report.Render(&b, sum, output.Prefix)
	out.Lines(b.String())
	out.Printf("took %s", took.Round(10*time.Millisecond))
	res := &Result{Hosts: sum}
	var failed *taskrun.TaskFailed
	switch {
	case runErr == nil && report.AllOK(sum):
		return res, nil
	case errors.As(runErr, &failed) && passExit && failed.ExitCode > 0:
		return res, &fault.Error{K: fault.HostsFailed, Code: failed.ExitCode}
	case runErr == nil || errors.As(runErr, &failed):
		return res, &fault.Error{K: fault.HostsFailed}
	}
	return res, &fault.Error{K: fault.HostsFailed, Err: runErr}
}
