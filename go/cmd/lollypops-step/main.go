// Command lollypops-step runs one built-in step of one host. lollypops'
// generated Taskfile calls it; it is not meant to be run by hand:
//
//	lollypops-step <check-vars|deploy-flake|deploy-secrets|rebuild|diff> HOST [--action A] [--activation-follows]
//	lollypops-step record-start HOST TASK
//	lollypops-step record HOST TASK [EXIT-CODE]
//	lollypops-step sudo-exec HOST -- ARGV...
//
// It reads the host's settings and the run's shared state from the run
// directory named by $LOLLYPOPS_RUN_DIR, and records its outcome there for
// the run's summary and report (internal/report): status, times, exit
// code, error and hint, and what it deployed. The record subcommands do
// that for an extra (shell) task, from its first and its deferred command.
//
// It is a separate, small binary (it does not link go-task) because a
// fleet deploy starts it several times per host: its start-up costs a few
// milliseconds of CPU where the full runner's costs tens.
package main

import (
	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/output"

	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/report"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/ssh"
	"github.com/lollypops/lollypops/go/internal/steps"
	"github.com/lollypops/lollypops/go/internal/sudopw"
	"github.com/lollypops/lollypops/go/internal/termtext"
)

type stepFunc func(context.Context, *steps.Env) (steps.Outcome, error)

var stepFuncs = map[string]stepFunc{
	config.TaskCheckVars:     steps.CheckVars,
	config.TaskDeployFlake:   steps.DeployFlake,
	config.TaskDeploySecrets: steps.DeploySecrets,
	config.TaskRebuild:       steps.Rebuild,
	config.TaskDiff:          steps.Diff,
}

func main() {
	// One P: a step waits for programs and the network. With one P per
	// core, the runtime's idle threads spin at each wakeup (a child's
	// output, its exit), which costs a fleet deploy, with several steps per
	// host at once, CPU for nothing (docs/benchmarks.md). GOMAXPROCS in
	// the environment still decides.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// lollypops-step sudo-exec HOST -- ARGV...: run a command as root on a
	// host through its root session, when the run has a sudo password
	// (package sudopw).
	if len(args) > 3 && args[0] == "sudo-exec" && args[2] == "--" {
		return sudoExec(args[1], args[3:], stdin, stdout, stderr)
	}
	// Everything a step prints reaches the terminal through go-task; much
	// of it is the hosts' (commands' output, their errors): cleaned of
	// control characters and escape sequences on the way (package
	// termtext). The sudo feed above is a transport, not output.
	cleanOut, cleanErr := termtext.NewWriter(stdout), termtext.NewWriter(stderr)
	defer cleanOut.Flush()
	defer cleanErr.Flush()
	stdout, stderr = cleanOut, cleanErr
	fs := pflag.NewFlagSet("lollypops-step", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	action := fs.String("action", "switch", "the REBUILD_ACTION of the run")
	follows := fs.Bool("activation-follows", false, "the host's rebuild activates after deploy-secrets in this run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		printError(stderr, err)
		return 1
	}
	run, err := rundir.FromEnv()
	if err != nil {
		return fail(err)
	}
	rest := fs.Args()
	if len(rest) >= 3 && rest[0] == "record" {
		if err := record(run, rest[1], rest[2], rest[3:]); err != nil {
			return fail(err)
		}
		return 0
	}
	if len(rest) == 3 && rest[0] == "record-start" {
		if err := recordStart(run, rest[1], rest[2]); err != nil {
			return fail(err)
		}
		return 0
	}
	if len(rest) != 2 || stepFuncs[rest[0]] == nil {
		fmt.Fprintln(stderr, "usage: lollypops-step <check-vars|deploy-flake|deploy-secrets|rebuild|diff> HOST [--action A] [--activation-follows]")
		return 2
	}
	step, hostName := rest[0], rest[1]

	rec := report.Record{Host: hostName, Step: step, Status: report.Running, Start: time.Now()}
	stages := &steps.Stages{}
	if err := report.Write(run.Results(), rec); err != nil {
		return fail(err)
	}
	finish := func(out steps.Outcome, err error) int {
		code := 0
		if err != nil {
			printError(stderr, err)
			code = 1
		}
		setOutcome(&rec, out, err, code)
		rec.Stages = stages.List()
		rec.End = time.Now()
		if werr := report.Write(run.Results(), rec); werr != nil {
			printError(stderr, werr)
			code = 1
		}
		return code
	}

	inv, err := config.Load(run.HostInventory(hostName))
	if err != nil {
		return finish(steps.Outcome{}, err)
	}
	host := inv.Hosts[hostName]
	if host == nil {
		return finish(steps.Outcome{}, fmt.Errorf("host %q is not in the run's inventory", hostName))
	}

	var protect atomic.Bool
	ctx, cancel := interruptible(stderr, hostName, &protect)
	defer cancel()

	runner := &execx.Runner{Stdout: stdout, Stderr: stderr}
	if os.Getenv(rundir.EnvVerbose) == "1" {
		runner.Echo = stderr
	}
	env := &steps.Env{
		Host: host, Run: run, Runner: runner,
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
		Action: *action, ActivationFollows: *follows, Protect: &protect, Stages: stages,
	}
	if sudopw.Available(run.Path) {
		if env.SudoFeed, err = os.Executable(); err != nil {
			return finish(steps.Outcome{}, err)
		}
	}
	out, err := stepFuncs[step](ctx, env)
	if err == nil && ctx.Err() != nil {
		err = errors.New("interrupted")
	}
	if err == nil && step == config.TaskRebuild && os.Getenv(report.EnvWanted) == "1" {
		rec.StorePath, rec.System = steps.Deployed(ctx, env)
	}
	return finish(out, err)
}

// sudoExec is the sudo-exec mode: its standard input, output and error are
// the command's, passed on as they are (a transport, not output).
func sudoExec(host string, argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	run, err := rundir.FromEnv()
	if err != nil {
		printError(stderr, err)
		return 255
	}
	inv, err := config.Load(run.HostInventory(host))
	if err != nil {
		printError(stderr, err)
		return 255
	}
	h := inv.Hosts[host]
	if h == nil {
		printError(stderr, fmt.Errorf("host %q is not in the run's inventory", host))
		return 255
	}
	return sudopw.Exec(run.Path, &ssh.Client{Host: h, Prefix: run.SSH(host)}, argv, stdin, stdout, stderr)
}

// interruptible returns a context that SIGINT, SIGTERM and SIGHUP cancel —
// except that while protect is set (an activation is running on the host),
// the first signal only says so, and a second one cancels.
func interruptible(stderr io.Writer, host string, protect *atomic.Bool) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		warned := false
		for range sigs {
			if protect.Load() && !warned {
				warned = true
				output.New(stderr).Printf("waiting for the activation on %s to finish; interrupt again to abort it", host)
				continue
			}
			cancel()
		}
	}()
	return ctx, func() { signal.Stop(sigs); cancel() }
}

// recordStart records the start of an extra (shell) task, from its first
// command.
func recordStart(run *rundir.Dir, host, task string) error {
	return report.Write(run.Results(), report.Record{Host: host, Step: task, Status: report.Running, Start: time.Now()})
}

// record stores the outcome of an extra (shell) task, from its deferred
// command: go-task passes the failing command's exit code, empty on success.
func record(run *rundir.Dir, host, task string, exit []string) error {
	rec, _, err := report.Read(run.Results(), host, task)
	if err != nil {
		return err
	}
	rec.Host, rec.Step, rec.Status, rec.End = host, task, report.OK, time.Now()
	code := 0
	if len(exit) > 0 && exit[0] != "" && exit[0] != "0" {
		if code, err = strconv.Atoi(exit[0]); err != nil {
			return fmt.Errorf("record: bad exit code %q", exit[0])
		}
		rec.Status, rec.Error = report.Failed, fmt.Sprintf("exit status %d", code)
	}
	rec.ExitCode = &code
	return report.Write(run.Results(), rec)
}

// setOutcome fills a built-in step's record from what the step returned
// and the step process's exit code.
func setOutcome(rec *report.Record, out steps.Outcome, err error, code int) {
	rec.Status = report.OK
	rec.ExitCode = &code
	// The summary, the progress view and the report show these; they
	// may quote the host's output.
	rec.Note = termtext.Line(out.Note)
	if out.StorePath != "" {
		rec.StorePath = out.StorePath
	}
	for _, s := range out.Secrets {
		rec.Secrets = append(rec.Secrets, report.Secret{Name: s.Name, Path: s.Path})
	}
	rec.ChangedSecrets, rec.RestartedUnits, rec.ReloadedUnits = out.Changed, out.Restarted, out.Reloaded
	rec.Activation = activationRecord(out.Activation)
	if err == nil {
		return
	}
	rec.Status, rec.Error, rec.Hint = report.Failed, termtext.Text(err.Error()), termtext.Text(fault.HintOf(err))
	var xe *execx.Error
	if errors.As(err, &xe) {
		rec.FailedCommand = &report.Command{Name: xe.Name, ExitCode: xe.ExitCode, Signal: xe.Signal}
	}
	var rb *steps.RolledBack
	if errors.As(err, &rb) {
		rec.RolledBack = &report.Rollback{Reason: rb.Reason, Failed: rb.Failed, FailedUnits: rb.Units}
	}
}

// activationRecord is what an activation did, for the report.
func activationRecord(a *steps.Activated) *report.Activation {
	if a == nil || a.Action == "build" {
		return nil
	}
	return &report.Activation{
		Action: a.Action, Specialisation: a.Specialisation, DurationMS: a.Duration.Milliseconds(),
		Units: a.Units, NewlyFailed: a.NewlyFailed, Rebooted: a.Rebooted, RebootPending: a.RebootPending,
	}
}

// printError writes err and its hint, lollypops' way (package output).
func printError(w io.Writer, err error) { output.New(w).Error(err) }
