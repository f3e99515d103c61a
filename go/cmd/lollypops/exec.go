package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/lollypops/lollypops/go/internal/adhoc"
	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/report"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// execOptions are the parsed command line of lollypops exec.
type execOptions struct {
	Hosts       hostFlags
	On, Exclude string
	Concurrency int
	// ExitCode makes a failed command's own exit status the exit code.
	ExitCode bool
	Verbose  bool
	Help     bool
	// Argv is the command, everything after "--".
	Argv []string
	fs   *pflag.FlagSet
}

// execArgs reports whether args call the exec subcommand: "exec" as the
// first argument, or after an --inventory or --flake in front. It returns
// exec's own arguments, those included.
func execArgs(args []string) ([]string, bool) {
	i := 0
	for i < len(args) {
		switch {
		case (args[i] == "--inventory" || args[i] == "--flake") && i+1 < len(args):
			i += 2
			continue
		case strings.HasPrefix(args[i], "--inventory=") || strings.HasPrefix(args[i], "--flake="):
			i++
			continue
		}
		break
	}
	if i == len(args) || args[i] != "exec" {
		return nil, false
	}
	return append(args[:i:i], args[i+1:]...), true
}

func parseExecFlags(args []string) (*execOptions, error) {
	o := &execOptions{}
	fs := pflag.NewFlagSet("lollypops exec", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.On, "on", "", "Run on the hosts selected by names, globs ('web-*') and tags ('@web'), comma-separated; '*' is every host. Required.")
	fs.StringVar(&o.Exclude, "exclude", "", "Leave out the hosts selected by names, globs and tags.")
	fs.IntVarP(&o.Concurrency, "concurrency", "C", 0, "Run on at most this many hosts at once (default: all at once).")
	fs.BoolVarP(&o.ExitCode, "exit-code", "x", false, "Exit with the command's own exit status of the first failed host (in the summary's order) instead of 3.")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "Print each ssh command line.")
	o.Hosts.AddFlags(fs)
	fs.BoolVarP(&o.Help, "help", "h", false, "Show this help.")
	fs.SortFlags = false
	o.fs = fs
	if err := fs.Parse(args); err != nil {
		return o, &usageError{msg: "exec: " + err.Error(), hint: "lollypops exec --help lists the flags"}
	}
	if o.Help {
		return o, errHelp
	}
	rest := fs.Args()
	dash := fs.ArgsLenAtDash()
	switch {
	case dash > 0 || dash < 0 && len(rest) > 0:
		return o, &usageError{msg: fmt.Sprintf("exec: %q before --: the command goes after --", rest[0]),
			hint: "lollypops exec --on HOSTS -- COMMAND [ARG...], e.g. lollypops exec --on @web -- systemctl is-active nginx"}
	case dash < 0 || len(rest) == 0:
		return o, &usageError{msg: "exec: no command given",
			hint: "lollypops exec --on HOSTS -- COMMAND [ARG...]; for a shell command: -- sh -c 'echo $HOSTNAME'"}
	}
	o.Argv = rest
	if o.On == "" {
		return o, &usageError{msg: "exec: no hosts given: --on is required",
			hint: "--on takes host names, globs and @tags, comma-separated; --on '*' runs on every host"}
	}
	if o.Concurrency < 0 {
		return o, &usageError{msg: fmt.Sprintf("exec: --concurrency %d: not a number of hosts", o.Concurrency),
			hint: "--concurrency N runs on at most N hosts at once; without it, on all at once"}
	}
	if _, err := ssh.Command(nil, o.Argv...); err != nil {
		return o, &usageError{msg: "exec: " + err.Error(), hint: "the command's words cannot hold control characters"}
	}
	if err := o.Hosts.check(); err != nil {
		return o, err
	}
	return o, nil
}

const execUsage = `Usage: lollypops exec --on HOSTS [flags...] -- COMMAND [ARG...]

Runs COMMAND on the selected hosts in parallel, over the same ssh connection
a deploy uses (the host's ssh user, options and host key policy), through
sudo when the host's lollypops.deployment.sudo.enable is set. Each line of
output is prefixed with "[host] "; a summary ends the run.

COMMAND and its arguments reach the host exactly as given, quoted once for
its shell: for shell syntax, ask for a shell. Its standard input is empty.

Examples:
  nix run . -- exec --on '*' -- uptime
  nix run . -- exec --on @web --exclude web-3 -- systemctl is-active nginx
  nix run . -- exec --on 'db-*' -C 2 -- sh -c 'df -h / | tail -1'

Exit codes: 0 the command exited 0 on every host; 1 nothing ran (bad
inventory); 2 usage; 3 it failed or could not run on at least one host (the
summary gives each exit status); 130 interrupted, which also stops the
command on the hosts. With -x, the exit status of the first failed host
instead of 3.

Flags:
`

// execMain is lollypops exec: flags, the run, and its exit code.
func execMain(in *interrupter, args []string, stdout, stderr io.Writer) int {
	sink := adhoc.NewSink(stderr)
	out := &ui{w: sink}
	o, err := parseExecFlags(args)
	if errors.Is(err, errHelp) {
		io.WriteString(stdout, execUsage)
		io.WriteString(stdout, o.fs.FlagUsages())
		return exitOK
	}
	if err != nil {
		out.error(err)
		return exitUsage
	}
	// One interrupt stops everything: an ad-hoc command has no activation
	// to let finish. A second one is the interrupter's own abort.
	ctx, cancel := context.WithCancel(in.ctx)
	defer cancel()
	in.setOnFirst(func() {
		out.printf("interrupted: stopping the commands")
		cancel()
	})
	defer in.setOnFirst(nil)
	code, err := runExec(ctx, o, adhoc.NewSink(stdout), sink, out)
	if err != nil {
		out.error(err)
	}
	if in.interrupted() {
		return exitInterrupted
	}
	return code
}

// runExec runs o.Argv on the selected hosts and prints the summary. It
// returns the exit code and the error to print.
func runExec(ctx context.Context, o *execOptions, stdout, stderr *adhoc.Sink, out *ui) (int, error) {
	src, err := openSource(ctx, &o.Hosts, stderr)
	if err != nil {
		return exitError, err
	}
	names, _, inv, err := selectHosts(ctx, src, o.On, o.Exclude)
	var ce *config.Error
	switch {
	case errors.As(err, &ce):
		return exitError, err
	case err != nil:
		return exitUsage, err
	}
	// A host that could not be evaluated fails alone.
	evalFailed, why := src.Failed()
	var hosts []*config.Host
	for _, n := range names {
		if h := inv.Hosts[n]; h != nil {
			hosts = append(hosts, h)
		}
	}
	run, err := rundir.Create()
	if err != nil {
		return exitError, err
	}
	defer run.Remove()

	start := time.Now()
	results := adhoc.Run(ctx, hosts, adhoc.Options{
		Argv: o.Argv, Run: run, Concurrency: o.Concurrency,
		Stdout: stdout, Stderr: stderr, Verbose: o.Verbose,
		Failed: func(host string, err error) { printHostError(stderr, host, err) },
	})
	report.Render(stderr, execSummary(results), "lollypops: ")
	for _, h := range evalFailed {
		out.printf("%s", evalFailure(h, why[h]))
	}
	out.printf("took %s", time.Since(start).Round(10*time.Millisecond))
	code := execExitCode(results, o.ExitCode)
	if code == exitOK && len(evalFailed) > 0 {
		code = exitHostsFailed
	}
	return code, nil
}

// printHostError prints a host's error and its hint in one write, so that
// no other host's line comes between them.
func printHostError(w io.Writer, host string, err error) {
	msg := fmt.Sprintf("lollypops: %s: %v\n", host, err)
	var ce *ssh.ConnectError
	if errors.As(err, &ce) && ce.Hint != "" {
		msg += fmt.Sprintf("lollypops: hint: %s\n", ce.Hint)
	}
	io.WriteString(w, msg)
}

// execSummary turns the results into the lines of the summary.
func execSummary(results []adhoc.Result) []report.Host {
	sum := make([]report.Host, len(results))
	for i, r := range results {
		s := report.Host{Name: r.Host, Status: report.HostFailed}
		if !r.Start.IsZero() && r.End.After(r.Start) {
			s.Duration = r.End.Sub(r.Start)
		}
		switch r.State {
		case adhoc.NotRun:
			s.Status = report.HostNotRun
		case adhoc.Exited:
			if r.ExitCode == 0 {
				s.Status = report.HostOK
			}
			s.Text = fmt.Sprintf("exit %d", r.ExitCode)
		case adhoc.Interrupted:
			s.Text = "interrupted"
		case adhoc.Error:
			s.Text = r.Err.Error()
		}
		sum[i] = s
	}
	return sum
}

// execExitCode is 0 when the command exited 0 everywhere, else 3, or with
// passExit the exit status of the first host whose command failed.
func execExitCode(results []adhoc.Result, passExit bool) int {
	for _, r := range results {
		if r.OK() {
			continue
		}
		if passExit && r.State == adhoc.Exited {
			return r.ExitCode
		}
		return exitHostsFailed
	}
	return exitOK
}
