package main

import (
	"github.com/lollypops/lollypops/go/internal/fault"

	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/taskrun"
)

// options are the parsed command line.
type options struct {
	taskrun.Flags
	// Hosts says where the hosts come from: a flake or an inventory file.
	Hosts hostFlags
	// On and Exclude select hosts by name, glob and @tag (plan.Selector).
	On, Exclude string
	// Overrides change how this run reaches its hosts.
	Overrides overrides
	// Rollout deploys in batches.
	Rollout rollout
	// SudoPassword feeds a sudo that asks for a password.
	SudoPassword sudoPassword
	// Timings prints the run's time breakdown after the summary.
	Timings bool
	// Report is where the JSON run report goes (docs/report.md); "" for none.
	Report string
	// Args are the positional arguments before "--" (tasks, VAR=value),
	// PostDash those after it.
	Args, PostDash []string
	fs             *pflag.FlagSet
}

var errHelp = errors.New("help requested")

// usage is a command line lollypops cannot run, with a hint ("" for none).
func usage(msg, hint string) error {
	return &fault.Error{K: fault.Usage, Msg: msg, Advice: hint}
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := pflag.NewFlagSet("lollypops", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	wd, _ := os.Getwd()
	o.Flags.AddFlags(fs, wd)
	o.Hosts.AddFlags(fs)
	fs.StringVar(&o.On, "on", "", "Run on the hosts selected by names, globs ('web-*') and tags ('@web'), comma-separated, in parallel: their whole deployment, or the steps named as arguments (lollypops --on @web deploy-secrets).")
	fs.StringVar(&o.Exclude, "exclude", "", "Leave out the hosts selected by names, globs and tags (with --on, or alone: every other host).")
	o.Overrides.AddFlags(fs)
	o.Rollout.AddFlags(fs)
	o.SudoPassword.AddFlags(fs)
	fs.BoolVar(&o.Timings, "timings", false, "After the summary, print where the run's time went: per host, each step and its stages (connect, lock, flake copy, each secret's command, the secret session, unit restarts, build, activation, reconnect, health checks, confirm, reboot), when each began and how long it took. --report holds the same.")
	fs.StringVar(&o.Report, "report", "", "Write a JSON report of the run to `FILE`: per host and step the status, times, exit code, error and hint, the store paths deployed, the secrets written (names and paths, never values). See docs/report.md.")
	fs.SortFlags = false
	o.fs = fs
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return o, errHelp
		}
		return o, usage(err.Error(), "lollypops --help lists the flags")
	}
	if o.Help {
		return o, errHelp
	}
	rest := fs.Args()
	if dash := fs.ArgsLenAtDash(); dash >= 0 {
		o.Args, o.PostDash = rest[:dash], rest[dash:]
	} else {
		o.Args = rest
	}
	if o.Version || o.wantsCompletion() {
		return o, nil
	}
	if err := o.Flags.Validate(); err != nil {
		return o, err
	}
	if err := o.checkReport(); err != nil {
		return o, err
	}
	if err := o.Hosts.check(); err != nil {
		return o, err
	}
	return o, nil
}

const usageHead = `Usage: lollypops [flags...] [task...] [VAR=value...] [-- args]
       lollypops exec --on HOSTS [flags...] -- COMMAND [ARG...]  (see exec --help)
       lollypops plan HOST...|all|--on HOSTS -o FILE             (see plan --help)
       lollypops apply FILE [--confirm]                          (see apply --help)

Deploys NixOS hosts with the settings of their lollypops.* options. Every
host has the tasks HOST (its lollypops.tasks in order), HOST:check-vars,
HOST:deploy-flake, HOST:deploy-secrets, HOST:rebuild and its extra tasks;
"all" deploys every host in parallel. Without a task, lollypops lists them.
The flags are go-task's; a few apply to lollypops' own steps as noted.

Examples:
  nix run . -- --list-all                   list every task
  nix run . -- host1                        deploy host1
  nix run . -- -p host1 host2               deploy two hosts in parallel
  nix run . -- host1:deploy-secrets         only (re)deploy host1's secrets
  nix run . -- all REBUILD_ACTION=boot      build everything, activate at next boot
  nix run . -- --dry all                    print the commands, touch nothing

REBUILD_ACTION (a VAR=value argument or the environment): %s (default switch).

Exit codes: 0 success; 1 nothing deployed (flake or inventory unreadable, missing program);
2 usage (flag, unknown task, REBUILD_ACTION); 3 at least one host failed;
130 interrupted. With -x, a failed command's own exit code instead of 3.

Flags:
`

func printUsage(w io.Writer, o *options) {
	fmt.Fprintf(w, usageHead, strings.Join(plan.Actions, ", "))
	if o != nil && o.fs != nil {
		io.WriteString(w, o.fs.FlagUsages())
	}
}
