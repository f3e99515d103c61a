package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/deploy"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/output"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/planfile"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/ssh"
	"github.com/lollypops/lollypops/go/internal/steps"
	"github.com/lollypops/lollypops/go/internal/taskrun"
	"github.com/lollypops/lollypops/go/internal/termtext"
)

// planStep is the step a host that apply refuses failed at, in the
// summary and the run report.
const planStep = "plan"

// subArgs reports whether args call the subcommand name: name as the
// first argument, or after an --inventory or --flake in front. It returns
// the subcommand's own arguments, those included.
func subArgs(args []string, name string) ([]string, bool) {
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
	if i == len(args) || args[i] != name {
		return nil, false
	}
	return append(args[:i:i], args[i+1:]...), true
}

// planOptions are the parsed command line of lollypops plan.
type planOptions struct {
	Hosts       hostFlags
	On, Exclude string
	Output      string
	Concurrency int
	Verbose     bool
	Help        bool
	// Names are the hosts named as arguments ("all": every host); Vars
	// the VAR=value arguments (REBUILD_ACTION).
	Names []string
	Vars  []taskrun.Var
	fs    *pflag.FlagSet
}

func parsePlanFlags(args []string) (*planOptions, error) {
	o := &planOptions{}
	fs := pflag.NewFlagSet("lollypops plan", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVarP(&o.Output, "output", "o", "", "Write the plan to `FILE` (mode 0600). Required.")
	fs.StringVar(&o.On, "on", "", "Plan the hosts selected by names, globs ('web-*') and tags ('@web'), comma-separated.")
	fs.StringVar(&o.Exclude, "exclude", "", "Leave out the hosts selected by names, globs and tags.")
	fs.IntVarP(&o.Concurrency, "concurrency", "C", 0, "Plan at most this many hosts at once (default: all at once).")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "Print each command line.")
	o.Hosts.AddFlags(fs)
	fs.BoolVarP(&o.Help, "help", "h", false, "Show this help.")
	fs.SortFlags = false
	o.fs = fs
	if err := fs.Parse(args); err != nil {
		return o, usage("plan: "+err.Error(), "lollypops plan --help lists the flags")
	}
	if o.Help {
		return o, errHelp
	}
	calls, vars := taskrun.ParseArgs(fs.Args())
	o.Names, o.Vars = calls, vars
	for _, v := range vars {
		if v.Name != "REBUILD_ACTION" {
			return o, usage(fmt.Sprintf("plan: %s=: only REBUILD_ACTION is a plan's variable", v.Name), "lollypops plan host1 REBUILD_ACTION=boot -o plan.json")
		}
	}
	for _, n := range o.Names {
		if strings.Contains(n, ":") {
			return o, usage(fmt.Sprintf("plan: %q: a plan is of whole hosts, not of steps", n), "lollypops plan host1 host2 -o plan.json, or --on @web")
		}
	}
	switch {
	case o.Output == "":
		return o, usage("plan: no plan file given: -o is required", "lollypops plan all -o plan.json, then lollypops apply plan.json")
	case len(o.Names) == 0 && o.On == "" && o.Exclude == "":
		return o, usage("plan: no hosts given", "name hosts (lollypops plan host1 host2 -o plan.json), all, or select them with --on and --exclude")
	case len(o.Names) > 0 && (o.On != "" || o.Exclude != ""):
		return o, usage(fmt.Sprintf("plan: %q with --on or --exclude: select the hosts one way", o.Names[0]), "lollypops plan --on host1,@web -o plan.json")
	case o.Concurrency < 0:
		return o, usage(fmt.Sprintf("plan: --concurrency %d: not a number of hosts", o.Concurrency), "--concurrency N plans at most N hosts at once")
	}
	if err := o.Hosts.check(); err != nil {
		return o, err
	}
	return o, nil
}

const planUsage = `Usage: lollypops plan HOST... | all | --on HOSTS [--exclude HOSTS] -o FILE [REBUILD_ACTION=A]

Plans a deploy without activating anything: for each selected host, builds
its new system where the host's settings say (as HOST:diff does), compares
its closure with the running system's, and runs its secret commands here to
tell which secrets would change and which units that restarts or reloads.
Writes the plan to FILE (mode 0600: no secret value, only checksums keyed
with a random salt) and prints it for review; lollypops apply FILE deploys
exactly that plan. See docs/plan.md.

Examples:
  nix run . -- plan all -o plan.json
  nix run . -- plan --on @web --exclude web-3 -o web.json REBUILD_ACTION=boot

Exit codes: 0 every host planned; 1 nothing planned (bad inventory); 2
usage; 3 at least one host could not be planned (the plan holds the
others); 130 interrupted.

Flags:
`

// planMain is lollypops plan: flags, the run, and what it returns.
func planMain(in *interrupter, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var o *planOptions
	return subMain(in, stdout, stderr, planUsage, func() (fs *pflag.FlagSet, err error) {
		o, err = parsePlanFlags(args)
		return o.fs, err
	}, func(out *output.Sink) error { return runPlan(in, o, stdin, stdout, stderr, out) })
}

// subMain runs plan or apply: the usage and the flags' on --help (parse
// returns errHelp), else run; an error is printed once, and returned for
// the exit code.
func subMain(in *interrupter, stdout, stderr io.Writer, usage string,
	parse func() (*pflag.FlagSet, error), run func(*output.Sink) error) error {
	out := output.New(stderr)
	in.setOut(out)
	fs, err := parse()
	if errors.Is(err, errHelp) {
		io.WriteString(stdout, usage)
		io.WriteString(stdout, fs.FlagUsages())
		return nil
	}
	if err == nil {
		err = run(out)
	}
	out.Error(err)
	return err
}

// defaultTaskFlags are go-task's flags as a command line without any
// sets them.
func defaultTaskFlags(verbose bool, limit int) (*taskrun.Flags, error) {
	f := &taskrun.Flags{}
	fs := pflag.NewFlagSet("lollypops", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	wd, _ := os.Getwd()
	f.AddFlags(fs, wd)
	if err := fs.Parse(nil); err != nil {
		return nil, err
	}
	f.Parallel, f.Verbose, f.Concurrency = true, verbose, limit
	return f, nil
}

// planHosts returns the hosts a plan's command line selects.
func planHosts(ctx context.Context, src *deploy.Source, o *planOptions) ([]string, error) {
	if o.On != "" || o.Exclude != "" {
		names, _, _, err := selectHosts(ctx, src, o.On, o.Exclude)
		return names, err
	}
	names, err := deploy.HostsOf(o.Names, src)
	if err != nil {
		return nil, err
	}
	if names == nil {
		names = slices.DeleteFunc(slices.Clone(src.Names()), src.HasNoModule)
	}
	return names, nil
}

// runPlan runs each selected host's diff step, which also plans its
// secrets (package steps, planning.go), and writes the plan.
func runPlan(in *interrupter, o *planOptions, stdin io.Reader, stdout, stderr io.Writer, out *output.Sink) error {
	action, err := rebuildAction(o.Vars)
	if err != nil {
		return err
	}
	if err := checkWritable(o.Output); err != nil {
		return err
	}
	src, err := deploy.Open(in.ctx, o.Hosts.spec(), out)
	if err != nil {
		return fault.As(fault.Input, err)
	}
	names, err := planHosts(in.ctx, src, o)
	if err != nil {
		return err
	}
	run, err := rundir.Create()
	if err != nil {
		return err
	}
	defer run.Remove()
	salt, err := planfile.NewSalt()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(planfile.SaltFile(run.Path)), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(planfile.SaltFile(run.Path), []byte(salt), 0o600); err != nil {
		return err
	}
	calls := make([]string, len(names))
	for i, n := range names {
		calls[i] = plan.TaskName(n, config.TaskDiff)
	}
	f, err := defaultTaskFlags(o.Verbose, o.Concurrency)
	if err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	cfg := &deploy.Config{
		Source: src, Calls: calls, Action: action, Flags: f, Dir: run, WorkDir: wd,
		Schedule: deploy.Schedule{Parallel: true, Limit: o.Concurrency},
		// stdout holds the plan's rendering alone.
		Stdin: stdin, Stdout: stderr, Stderr: stderr, Out: out,
		Interrupt: in.setOnFirst, Interrupted: in.interrupted,
	}
	cfg.Ready = func() error {
		cfg.StepBinary, err = stepBinary()
		return err
	}
	_, runErr := deploy.Run(in.ctx, cfg)
	if in.interrupted() {
		return runErr
	}
	pf := &planfile.File{Version: planfile.Version, Salt: salt, Action: action, Hosts: map[string]*planfile.Host{}}
	pf.Created = time.Now().UTC().Truncate(time.Second)
	for _, n := range names {
		h, err := readPart(run, n)
		if err != nil {
			continue // its diff failed: the summary said why
		}
		pf.Hosts[n] = h
	}
	if len(pf.Hosts) == 0 {
		if runErr == nil {
			runErr = errors.New("no host was planned")
		}
		out.Printf("no plan written: no host could be planned")
		return runErr
	}
	if err := planfile.Write(o.Output, pf); err != nil {
		return err
	}
	if err := planfile.Render(stdout, pf); err != nil {
		return err
	}
	out.Printf("plan of %s written to %s; review it, then: lollypops apply %s", plural(len(pf.Hosts), "host"), termtext.Line(o.Output), termtext.Line(o.Output))
	return runErr
}

// checkWritable refuses, before any host is planned, an output file that
// cannot be written: its directory must exist.
func checkWritable(file string) error {
	dir := filepath.Dir(file)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return usage(fmt.Sprintf("plan: -o %s: no directory %s", file, dir), "give -o a file in an existing directory")
	}
	return nil
}

// readPart reads what a host's diff step planned.
func readPart(run *rundir.Dir, host string) (*planfile.Host, error) {
	data, err := os.ReadFile(planfile.PartFile(run.Path, host))
	if err != nil {
		return nil, err
	}
	h := &planfile.Host{}
	if err := json.Unmarshal(data, h); err != nil {
		return nil, err
	}
	return h, nil
}

// applyOptions are the parsed command line of lollypops apply.
type applyOptions struct {
	Hosts       hostFlags
	File        string
	Confirm     bool
	Concurrency int
	Verbose     bool
	Report      string
	Help        bool
	fs          *pflag.FlagSet
}

func parseApplyFlags(args []string) (*applyOptions, error) {
	o := &applyOptions{}
	fs := pflag.NewFlagSet("lollypops apply", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.BoolVar(&o.Confirm, "confirm", false, "Once every host was checked against the plan, ask once on the terminal before anything is deployed.")
	fs.IntVarP(&o.Concurrency, "concurrency", "C", 0, "Deploy at most this many hosts at once (default: all at once).")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "Print each command line.")
	fs.StringVar(&o.Report, "report", "", "Write a JSON report of the run to `FILE`, with the plan file's SHA-256 (docs/report.md).")
	o.Hosts.AddFlags(fs)
	fs.BoolVarP(&o.Help, "help", "h", false, "Show this help.")
	fs.SortFlags = false
	o.fs = fs
	if err := fs.Parse(args); err != nil {
		return o, usage("apply: "+err.Error(), "lollypops apply --help lists the flags")
	}
	if o.Help {
		return o, errHelp
	}
	switch rest := fs.Args(); {
	case len(rest) == 0:
		return o, usage("apply: no plan file given", "lollypops apply plan.json applies what lollypops plan ... -o plan.json wrote")
	case len(rest) > 1:
		return o, usage(fmt.Sprintf("apply: %q after the plan file: apply takes one plan", rest[1]), "the plan says which hosts; lollypops plan selects them")
	default:
		o.File = rest[0]
	}
	if o.Concurrency < 0 {
		return o, usage(fmt.Sprintf("apply: --concurrency %d: not a number of hosts", o.Concurrency), "--concurrency N deploys at most N hosts at once")
	}
	if err := o.Hosts.check(); err != nil {
		return o, err
	}
	return o, nil
}

const applyUsage = `Usage: lollypops apply FILE [--confirm] [flags...]

Deploys the plan that lollypops plan wrote to FILE, host by host as a
deploy does (locks, guarded activation, health checks, secret rotation),
with the plan's action. Each host is first checked against the plan: its
new system (evaluated here), the system it runs and its secrets (their
values, by the plan's keyed checksums). A host where anything differs is
refused, with one line that says what, and nothing is deployed to it; the
other hosts go on. See docs/plan.md.

Examples:
  nix run . -- apply plan.json
  nix run . -- apply --confirm plan.json

Exit codes: 0 the plan was applied to every host; 1 nothing was applied
(an unreadable plan, --confirm not answered yes); 2 usage; 3 at least one
host was refused or failed; 130 interrupted.

Flags:
`

// applyMain is lollypops apply: flags, the run, and what it returns.
func applyMain(in *interrupter, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var o *applyOptions
	return subMain(in, stdout, stderr, applyUsage, func() (fs *pflag.FlagSet, err error) {
		o, err = parseApplyFlags(args)
		return o.fs, err
	}, func(out *output.Sink) error { return runApply(in, o, stdin, stdout, stderr, out) })
}

func runApply(in *interrupter, o *applyOptions, stdin io.Reader, stdout, stderr io.Writer, out *output.Sink) (err error) {
	rep, err := openReport(o.Report)
	if err != nil {
		return err
	}
	defer func() { err = rep.finish(err, in.interrupted(), out) }()
	pf, err := planfile.Read(o.File)
	if err != nil {
		return fault.As(fault.Input, err)
	}
	if rep != nil {
		sum, err := planfile.Checksum(o.File)
		if err != nil {
			return err
		}
		rep.run.Plan = "sha256:" + sum
	}
	rep.setAction(pf.Action)
	src, err := deploy.Open(in.ctx, o.Hosts.spec(), out)
	if err != nil {
		return fault.As(fault.Input, err)
	}
	names := pf.Names()
	var known []string
	refused := map[string]*deploy.Refused{}
	for _, n := range names {
		if src.Has(n) {
			known = append(known, n)
		} else {
			refused[n] = &deploy.Refused{Step: planStep, Err: &steps.Hinted{
				Err:    fmt.Errorf("refused: %s is not a host of the flake or inventory any more", n),
				Advice: "run lollypops plan again"}}
		}
	}
	inv, err := src.Load(in.ctx, known)
	if err != nil {
		return fault.As(fault.Input, err)
	}
	run, err := rundir.Create()
	if err != nil {
		return err
	}
	defer run.Remove()
	// The checks open each host's shared connection, which its steps
	// join; the run closes those of the hosts it started, this the others
	// (a refused host, a run that stops before it deploys).
	defer closeChecked(run, inv, known)
	checked := checkHosts(in.ctx, run, pf, inv, known, o.Verbose, out)
	for n, r := range checked {
		if r != nil {
			refused[n] = r
		}
	}
	var ready []string
	for _, n := range names {
		if _, ok := checked[n]; ok && refused[n] == nil {
			ready = append(ready, n)
		}
	}
	for _, n := range names {
		if r := refused[n]; r != nil {
			out.HostError(n, r.Err)
		}
	}
	if o.Confirm && len(ready) > 0 {
		if err := confirm(fmt.Sprintf("apply the plan to %s (%s)? [y/N] ", plural(len(ready), "host"), strings.Join(ready, ", "))); err != nil {
			return err
		}
	}
	for _, n := range ready {
		if err := writeApplied(run, n, pf); err != nil {
			return err
		}
	}
	f, err := defaultTaskFlags(o.Verbose, o.Concurrency)
	if err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	// A host gone from the flake or inventory has no task to run: the
	// line above said so, and the exit code says a host failed.
	rep.setTasks(known)
	if len(known) == 0 {
		return &fault.Error{K: fault.HostsFailed}
	}
	cfg := &deploy.Config{
		Source: src, Calls: known, Action: pf.Action, Flags: f, Dir: run, WorkDir: wd, Report: rep != nil,
		Schedule: deploy.Schedule{Parallel: true, Limit: o.Concurrency},
		Prepare: func(name string, h *config.Host) error {
			if r := refused[name]; r != nil {
				return r
			}
			if !slices.Contains(ready, name) {
				return &deploy.Refused{Step: planStep, Err: errors.New("refused: not checked against the plan (its evaluation failed)")}
			}
			return nil
		},
		Stdin: stdin, Stdout: stdout, Stderr: stderr, Out: out,
		Interrupt: in.setOnFirst, Interrupted: in.interrupted,
	}
	var v *view
	defer func() { v.stop() }()
	cfg.Ready = func() error {
		if cfg.StepBinary, err = stepBinary(); err != nil {
			return err
		}
		// On a terminal, the live view of a deploy.
		if wantView(f, stdout) {
			planned := map[string][]string{}
			for _, n := range known {
				planned[n] = []string{deploy.EvalStep}
			}
			v = startView(out, stdout.(*os.File), f.Color, stderr, run.Results(), planned)
			cfg.Stdout, cfg.Stderr, cfg.Planned, cfg.Finished = v.stdout, v.stderr, v.plan, v.stop
		}
		return nil
	}
	res, err := deploy.Run(in.ctx, cfg)
	if res != nil {
		rep.setHosts(res.Hosts)
	}
	if err == nil && len(known) < len(names) {
		err = &fault.Error{K: fault.HostsFailed}
	}
	return err
}

// checkHosts compares, in parallel, each host with the plan: its
// configured secrets (names and paths), its new system (evaluated here,
// not built) and the system it runs (over the run's shared connection,
// which its steps then use). The result has every host that was checked;
// nil for a host that agrees with the plan.
func checkHosts(ctx context.Context, run *rundir.Dir, pf *planfile.File, inv *config.Inventory, names []string, verbose bool, out *output.Sink) map[string]*deploy.Refused {
	var mu sync.Mutex
	res := map[string]*deploy.Refused{}
	var wg sync.WaitGroup
	for _, n := range names {
		h := inv.Hosts[n]
		if h == nil {
			continue // not evaluated: the run says why
		}
		wg.Go(func() {
			err := checkHost(ctx, run, n, h, pf.Hosts[n], verbose, out)
			var r *deploy.Refused
			if err != nil {
				r = &deploy.Refused{Step: planStep, Err: err}
			}
			mu.Lock()
			res[n] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	return res
}

func checkHost(ctx context.Context, run *rundir.Dir, name string, h *config.Host, p *planfile.Host, verbose bool, out *output.Sink) error {
	if h.Home != nil {
		return &steps.Hinted{Err: errors.New("refused: a plan covers NixOS hosts, not homes"), Advice: "deploy homes with lollypops HOME"}
	}
	if err := secretSetChange(h, p); err != nil {
		return err
	}
	foreign := out.Foreign()
	runner := &execx.Runner{Stdout: foreign, Stderr: foreign}
	if verbose {
		runner.Echo = foreign
	}
	e := &steps.Env{Host: h, Run: run, Runner: runner, Stdout: foreign, Stderr: foreign}
	sys, err := steps.EvalSystem(ctx, e)
	if err != nil {
		return fmt.Errorf("checking against the plan: %w", err)
	}
	if sys != p.System {
		return &steps.PlanRefusal{What: fmt.Sprintf("the new system (%s, the plan's %s)", sys, p.System)}
	}
	cur, err := steps.Running(ctx, e)
	if err != nil {
		return fmt.Errorf("checking against the plan: %w", err)
	}
	if cur != p.Current {
		return steps.RunningDiffers(cur, p.Current)
	}
	return nil
}

// closeChecked closes the shared connections apply's checks opened that
// are still open.
func closeChecked(run *rundir.Dir, inv *config.Inventory, names []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range names {
		if h := inv.Hosts[n]; h != nil {
			wg.Go(func() { (&ssh.Client{Host: h, Prefix: run.SSH(n)}).Close(ctx) })
		}
	}
	wg.Wait()
}

// secretSetChange refuses a host whose configuration added or removed a
// secret (by name and path) since the plan.
func secretSetChange(h *config.Host, p *planfile.Host) error {
	refuse := func(format string, args ...any) error {
		return &steps.Hinted{Err: fmt.Errorf("refused: "+format, args...),
			Advice: "the host's secrets changed since the plan; nothing of the plan was applied to this host: run lollypops plan again"}
	}
	for _, f := range h.Secrets.Files {
		if !slices.ContainsFunc(p.Secrets, func(s planfile.Secret) bool { return s.Name == f.Label() && s.Path == f.Path }) {
			return refuse("secret %q (%s) is not in the plan", f.Label(), f.Path)
		}
	}
	for _, s := range p.Secrets {
		if !slices.ContainsFunc(h.Secrets.Files, func(f config.Secret) bool { return s.Name == f.Label() && s.Path == f.Path }) {
			return refuse("secret %q (%s) of the plan is no longer configured", s.Name, s.Path)
		}
	}
	return nil
}

// writeApplied gives a host's steps its entry of the plan, for the check
// of the secrets' values (package steps, planning.go).
func writeApplied(run *rundir.Dir, name string, pf *planfile.File) error {
	data, err := json.Marshal(planfile.Applied{Salt: pf.Salt, Host: pf.Hosts[name]})
	if err != nil {
		return err
	}
	file := planfile.ApplyFile(run.Path, name)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o600)
}

// errNotConfirmed is --confirm answered anything but yes.
var errNotConfirmed = &fault.Error{K: fault.Input, Msg: "not confirmed: nothing was applied"}

// confirm asks question on the terminal; anything but y or yes is no.
func confirm(question string) error {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return usage("apply --confirm: no terminal to ask on", "run it from a terminal, or review the plan and apply it without --confirm")
	}
	defer tty.Close()
	fmt.Fprint(tty, output.Prefix+question)
	line, err := bufio.NewReader(tty).ReadString('\n')
	if err != nil && line == "" {
		return errNotConfirmed
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errNotConfirmed
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
