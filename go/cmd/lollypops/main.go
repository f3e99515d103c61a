// Command lollypops deploys NixOS hosts: it reads the inventory that the
// lollypops Nix app writes from every host's options, turns it into go-task
// tasks and runs the ones named on the command line, with go-task's flags:
//
//	lollypops --inventory inventory.json [go-task flags] [TASK...] [VAR=value...] [-- ARGS]
//
// See README.md for the tasks, the flags and the exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/lollypops/lollypops/go/internal/termtext"
)

// Exit codes; README.md documents them.
const (
	exitOK          = 0   // everything asked for succeeded
	exitError       = 1   // nothing was deployed: bad inventory, missing program, internal error
	exitUsage       = 2   // bad flag, unknown task, invalid REBUILD_ACTION
	exitHostsFailed = 3   // at least one host failed; the summary says which
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
		return execMain(in, rest, stdout, stderr)
	}
	out := &ui{w: stderr}
	in.ui = out
	if inv, words, ok := completeRequest(args); ok {
		return runComplete(inv, words, stdout)
	}
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, errHelp) {
		printUsage(stdout, opts)
		return exitOK
	}
	if err != nil {
		out.error(err)
		return exitUsage
	}
	if opts.wantsCompletion() {
		if err := printCompletion(opts, stdout); err != nil {
			out.error(err)
			return exitUsage
		}
		return exitOK
	}
	code, err := deploy(in, opts, stdin, stdout, stderr, out)
	if err != nil {
		out.error(err)
	}
	// An interrupted run says so, even when what was running finished:
	// the summary tells what was done.
	if in.interrupted() {
		return exitInterrupted
	}
	return code
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
	ui      *ui
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
		if in.ui != nil {
			in.ui.printf("%s: stopping; activations in flight finish, nothing new starts (interrupt again to abort everything)", sig)
		}
		if in.onFirst != nil {
			in.onFirst()
		}
		return
	}
	if in.ui != nil {
		in.ui.printf("%s: aborting the running steps", sig)
	}
	in.cancel()
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

// ui is the one place that writes lollypops' own messages: one lowercase
// line with the "lollypops:" prefix, and an optional hint line. Messages
// carry names and errors that came from outside (flake attribute names,
// Nix's errors, hosts' output): they reach the terminal cleaned (package
// termtext).
type ui struct{ w io.Writer }

func (u *ui) printf(format string, args ...any) {
	io.WriteString(u.w, termtext.Text(fmt.Sprintf("lollypops: "+format, args...))+"\n")
}

func (u *ui) error(err error) {
	u.printf("%v", err)
	if h := hintOf(err); h != "" {
		u.printf("hint: %s", h)
	}
}
