package main

import (
	"github.com/lollypops/lollypops/go/internal/deploy"
	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/output"

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
func execArgs(args []string) ([]string, bool) { return subArgs(args, "exec") }

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
		return o, usage("exec: "+err.Error(), "lollypops exec --help lists the flags")
	}
	if o.Help {
		return o, errHelp
	}
	rest := fs.Args()
	dash := fs.ArgsLenAtDash()
	switch {
	case dash > 0 || dash < 0 && len(rest) > 0:
		return o, usage(fmt.Sprintf("exec: %q before --: the command goes after --", rest[0]), "lollypops exec --on HOSTS -- COMMAND [ARG...], e.g. lollypops exec --on @web -- systemctl is-active nginx")
	case dash < 0 || len(rest) == 0:
		return o, usage("exec: no command given", "lollypops exec --on HOSTS -- COMMAND [ARG...]; for a shell command: -- sh -c 'echo $HOSTNAME'")
	}
	o.Argv = rest
	if o.On == "" {
		return o, usage("exec: no hosts given: --on is required", "--on takes host names, globs and @tags, comma-separated; --on '*' runs on every host")
	}
	if o.Concurrency < 0 {
		return o, usage(fmt.Sprintf("exec: --concurrency %d: not a number of hosts", o.Concurrency), "--concurrency N runs on at most N hosts at once; without it, on all at once")
	}
	if _, err := ssh.Command(nil, o.Argv...); err != nil {
		return o, usage("exec: "+err.Error(), "the command's words cannot hold control characters")
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

// execMain is lollypops exec: flags, the run, and what it returns.
func execMain(in *interrupter, args []string, stdout, stderr io.Writer) error {
	sink := adhoc.NewSink(stderr)
	out := output.New(sink)
	in.setOut(out)
	o, err := parseExecFlags(args)
	if errors.Is(err, errHelp) {
		io.WriteString(stdout, execUsage)
		io.WriteString(stdout, o.fs.FlagUsages())
		return nil
	}
	if err != nil {
		err = fault.As(fault.Usage, err)
		out.Error(err)
		return err
	}
	// One interrupt stops everything: an ad-hoc command has no activation
	// to let finish. A second one is the interrupter's own abort.
	ctx, cancel := context.WithCancel(in.ctx)
	defer cancel()
	in.setOnFirst(func() {
		out.Printf("interrupted: stopping the commands")
		cancel()
	})
	defer in.setOnFirst(nil)
	err = runExec(ctx, o, adhoc.NewSink(stdout), sink, out)
	out.Error(err)
	return err
}

// runExec runs o.Argv on the selected hosts and prints the summary.
func runExec(ctx context.Context, o *execOptions, stdout, stderr *adhoc.Sink, out *output.Sink) error {
	src, err := deploy.Open(ctx, o.Hosts.spec(), out)
	if err != nil {
		return fault.As(fault.Input, err)
	}
	names, _, inv, err := selectHosts(ctx, src, o.On, o.Exclude)
	if err != nil {
		return err
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
		return err
	}
	defer run.Remove()

	start := time.Now()
	results := adhoc.Run(ctx, hosts, adhoc.Options{
		Argv: o.Argv, Run: run, Concurrency: o.Concurrency,
		Stdout: stdout, Stderr: stderr, Verbose: o.Verbose,
		Failed: out.HostError,
	})
	var b strings.Builder
	report.Render(&b, execSummary(results), output.Prefix)
	out.Lines(b.String())
	for _, h := range evalFailed {
		out.Printf("%s", deploy.EvalFailure(h, why[h]))
	}
	out.Printf("took %s", time.Since(start).Round(10*time.Millisecond))
	return execOutcome(results, o.ExitCode, len(evalFailed) > 0)
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

// execOutcome is nil when the command exited 0 everywhere and every host
// was evaluated; else hosts failed, with passExit carrying the exit status
// of the first host whose command failed.
func execOutcome(results []adhoc.Result, passExit, evalFailed bool) error {
	for _, r := range results {
		if r.OK() {
			continue
		}
		if passExit && r.State == adhoc.Exited {
			return &fault.Error{K: fault.HostsFailed, Code: r.ExitCode}
		}
		return &fault.Error{K: fault.HostsFailed}
	}
	if evalFailed {
		return &fault.Error{K: fault.HostsFailed}
	}
	return nil
}
