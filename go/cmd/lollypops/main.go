// Command lollypops deploys NixOS hosts: it reads the inventory that the
// lollypops Nix app writes from every host's options, turns it into go-task
// tasks and runs the ones named on the command line, with go-task's flags:
//
//	lollypops --inventory inventory.json [go-task flags] [TASK...] [VAR=value...] [-- ARGS]
//
// See docs/usage.md for the tasks and the flags, README.md for the exit codes.
package main

import (
	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/output"

	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Exit codes; README.md documents them.
const (
	exitOK          = 0   // everything asked for succeeded
	exitError       = 1   // nothing was deployed (fault.Input, fault.Internal)
	exitUsage       = 2   // the command line (fault.Usage)
	exitHostsFailed = 3   // at least one host failed (fault.HostsFailed)
	exitInterrupted = 130 // interrupted (SIGINT, SIGTERM, SIGHUP)
)

func main() {
	// A closed stdout (lollypops --list-all | head) must end the run through
	// its error path, which removes the run directory, not kill it. The
	// signal is caught, not ignored: an ignored SIGPIPE would be inherited
	// by every program go-task starts (yes | head -1 would never end);
	// caught signals are reset to their default on exec.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	in := newInterrupter()
	code := run(in, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	in.stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code.
func run(in *interrupter, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if rest, ok := execArgs(args); ok {
		return exitCode(execMain(in, rest, stdout, stderr), in.interrupted())
	}
	if rest, ok := subArgs(args, "plan"); ok {
		return exitCode(planMain(in, rest, stdin, stdout, stderr), in.interrupted())
	}
	if rest, ok := subArgs(args, "apply"); ok {
		return exitCode(applyMain(in, rest, stdin, stdout, stderr), in.interrupted())
	}
	out := output.New(stderr)
	in.setOut(out)
	if inv, words, ok := completeRequest(args); ok {
		return runComplete(inv, words, stdout)
	}
	err := command(in, args, stdin, stdout, stderr, out)
	out.Error(err)
	return exitCode(err, in.interrupted())
}

// command runs the command line args.
func command(in *interrupter, args []string, stdin io.Reader, stdout, stderr io.Writer, out *output.Sink) error {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, errHelp) {
		printUsage(stdout, opts)
		return nil
	}
	if err != nil {
		return fault.As(fault.Usage, err)
	}
	if opts.wantsCompletion() {
		return fault.As(fault.Usage, printCompletion(opts, stdout))
	}
	return runTasks(in, opts, stdin, stdout, stderr, out)
}

// exitCode is the one place that turns what a command returned into its
// exit code; README.md's "Exit codes" lists them (TestExitCodes checks
// every command form). An interrupted run says so, even when what was
// running finished: the summary tells what was done.
func exitCode(err error, interrupted bool) int {
	var fe *fault.Error
	switch {
	case interrupted:
		return exitInterrupted
	case err == nil:
		return exitOK
	case errors.As(err, &fe) && fe.K == fault.HostsFailed && fe.Code > 0:
		return fe.Code // -x: the failed command's own exit status
	}
	switch fault.KindOf(err) {
	case fault.Usage:
		return exitUsage
	case fault.HostsFailed:
		return exitHostsFailed
	}
	return exitError
}

// interrupter handles SIGINT, SIGTERM and SIGHUP. The first signal keeps
// new steps from starting (onFirst) and lets running ones end on their own:
// when it came from the terminal, the steps got it too, stop what can stop
// safely and let an activation in flight finish. A second signal cancels
// the run's context: go-task then interrupts every command it runs.
type interrupter struct {
	ctx     context.Context
	cancel  context.CancelFunc
	sigs    chan os.Signal
	out     *output.Sink
	mu      sync.Mutex
	count   int
	onFirst func()
}

func newInterrupter() *interrupter {
	ctx, cancel := context.WithCancel(context.Background())
	in := &interrupter{ctx: ctx, cancel: cancel, sigs: make(chan os.Signal, 4)}
	signal.Notify(in.sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		for sig := range in.sigs {
			in.handle(sig)
		}
	}()
	return in
}

func (in *interrupter) handle(sig os.Signal) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.count++
	if in.count == 1 {
		if in.out != nil {
			in.out.Printf("%s: stopping; activations in flight finish, nothing new starts (interrupt again to abort everything)", sig)
		}
		if in.onFirst != nil {
			in.onFirst()
		}
		return
	}
	if in.out != nil {
		in.out.Printf("%s: aborting the running steps", sig)
	}
	in.cancel()
}

func (in *interrupter) setOut(out *output.Sink) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.out = out
}

// setOnFirst sets what the first signal does; it runs at once when a
// signal already came.
func (in *interrupter) setOnFirst(f func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.onFirst = f
	if in.count > 0 && f != nil {
		f()
	}
}

func (in *interrupter) interrupted() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.count > 0
}

func (in *interrupter) stop() {
	signal.Stop(in.sigs)
	in.cancel()
}
