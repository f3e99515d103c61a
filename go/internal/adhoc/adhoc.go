// Package adhoc runs one ad-hoc command on many hosts in parallel
// (lollypops exec): over each host's shared ssh connection in the run
// directory, through sudo when the host enables it, with every line of its
// output behind the host's name, and returns what happened on each host.
//
// The command is an argv, quoted once for the host's login shell
// (ssh.Command): its words arrive as they were given. Its standard input is
// empty (/dev/null).
package adhoc

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// Options are one run's settings.
type Options struct {
	Argv []string
	Run  *rundir.Dir
	// Concurrency is how many hosts run at once; 0 means all of them.
	Concurrency int
	// Stdout and Stderr receive the command's output, line by line, each
	// line behind "[host] ".
	Stdout, Stderr *Sink
	// Verbose echoes each ssh command line to Stderr.
	Verbose bool
	// Failed, when set, is called as soon as a host fails to connect.
	Failed func(host string, err error)
}

// State is how far a host got.
type State int

const (
	NotRun      State = iota // never started: the run was interrupted first
	Exited                   // the command ran; ExitCode says how it ended
	Error                    // no connection, or ssh failed to start; Err says why
	Interrupted              // cut by the interrupt
)

// Result is one host's outcome.
type Result struct {
	Host       string
	State      State
	ExitCode   int   // for Exited
	Err        error // for Error
	Start, End time.Time
}

// OK reports whether the command ran and exited 0.
func (r *Result) OK() bool { return r.State == Exited && r.ExitCode == 0 }

// Run runs o.Argv on every host and returns the results in the order of
// hosts. Cancelling ctx stops the commands (ssh's stdin ends and ssh is
// terminated; the watcher on the host then ends the command, see
// RemoteArgv) and keeps hosts that have not started from starting. Each
// host's shared connection is closed when its command ends.
func Run(ctx context.Context, hosts []*config.Host, o Options) []Result {
	results := make([]Result, len(hosts))
	limit := o.Concurrency
	if limit <= 0 || limit > len(hosts) {
		limit = len(hosts)
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, h := range hosts {
		results[i] = Result{Host: h.Name}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		if ctx.Err() != nil {
			<-sem
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = runOne(ctx, h, &o)
		})
	}
	wg.Wait()
	return results
}

func runOne(ctx context.Context, h *config.Host, o *Options) Result {
	res := Result{Host: h.Name, Start: time.Now()}
	out := NewLineWriter(o.Stdout, "["+h.Name+"] ")
	errOut := NewLineWriter(o.Stderr, "["+h.Name+"] ")
	defer out.Flush()
	defer errOut.Flush()
	r := &execx.Runner{}
	if o.Verbose {
		r.Echo = errOut
	}
	c := &ssh.Client{Host: h, Prefix: o.Run.SSH(h.Name)}
	defer closeMaster(c, errOut)

	fail := func(err error) Result {
		res.State, res.Err, res.End = Error, err, time.Now()
		if ctx.Err() != nil {
			res.State, res.Err = Interrupted, nil
		} else if o.Failed != nil {
			o.Failed(h.Name, err)
		}
		return res
	}
	if err := c.Ensure(ctx, r); err != nil {
		return fail(err)
	}
	line, err := ssh.Command(&h.Deployment.Sudo, RemoteArgv(o.Argv)...)
	if err != nil {
		return fail(err)
	}
	// ssh's stdin stays open while the command runs: its end tells the
	// host to stop the command (see RemoteArgv).
	stdin, hold, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	stop := context.AfterFunc(ctx, func() { hold.Close() })
	// The session never prompts (the master authenticated), and is
	// detached from the terminal's Ctrl-C: only the run's interrupt ends
	// it, so an interrupted host is told from a failed one.
	argv := slices.Insert(c.RemoteArgs(line), 1, "-o", "BatchMode=yes")
	err = r.Run(ctx, execx.Cmd{Argv: argv, Stdin: stdin, Stdout: out, Stderr: errOut, Detach: true})
	res.End = time.Now()
	stop()
	hold.Close()
	stdin.Close()
	var xe *execx.Error
	switch {
	case err == nil:
		res.State = Exited
	case ctx.Err() != nil:
		res.State = Interrupted
	case errors.As(err, &xe) && xe.ExitCode >= 0:
		res.State, res.ExitCode = Exited, xe.ExitCode
	default:
		return fail(err)
	}
	return res
}

// closeMaster stops the host's shared connection, also after an
// interrupt: it must not outlive the run.
func closeMaster(c *ssh.Client, w io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		io.WriteString(w, err.Error()+"\n")
	}
}

// watch is the shell script that runs the command on the host, with its
// stdin from /dev/null, and ends it when ssh's stdin ends: when the run is
// interrupted, ssh ends or closes its stdin, and the watcher sends SIGTERM
// to the session's process group (sshd starts each session in its own),
// which holds the command and what it started. Without it, a command
// whose session went away would go on running. When the command ends by
// itself, the watcher is stopped first and the command's exit status is
// the script's.
const watch = `exec 3<&0; "$@" </dev/null 3<&- & c=$!; { cat <&3 >/dev/null; kill -TERM 0; } >/dev/null 2>&1 & w=$!; exec 3<&-; wait "$c"; s=$?; kill "$w" 2>/dev/null; exit "$s"`

// RemoteArgv is the argv run on the host for the command argv: argv
// itself, run by the watcher script (a POSIX sh).
func RemoteArgv(argv []string) []string {
	return append([]string{"sh", "-c", watch, "sh"}, argv...)
}
