package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/deploy"
	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/output"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/steps"
	"github.com/lollypops/lollypops/go/internal/taskgen"
	"github.com/lollypops/lollypops/go/internal/taskrun"
	"github.com/lollypops/lollypops/go/internal/version"
)

// stepBinaryName is the worker the generated tasks call; it is installed
// next to lollypops.
const stepBinaryName = "lollypops-step"

// runTasks runs a command line that names tasks, or lists them: a real run
// goes through package deploy's pipeline; listings, --dry, --summary and
// --status take the short path (inspect). With --report, the run report is
// written before it returns.
func runTasks(in *interrupter, o *options, stdin io.Reader, stdout, stderr io.Writer, out *output.Sink) (err error) {
	f := &o.Flags
	if o.Version {
		fmt.Fprintf(stdout, "lollypops %s (go-task %s)\n", version.Version, version.GoTask())
		return nil
	}
	rep, err := openReport(o.Report)
	if err != nil {
		return err
	}
	defer func() { err = rep.finish(err, in.interrupted(), out) }()
	src, err := deploy.Open(in.ctx, o.Hosts.spec(), out)
	if err != nil {
		return fault.As(fault.Input, err)
	}
	calls, vars := taskrun.ParseArgs(o.Args)
	action, err := rebuildAction(vars)
	if err != nil {
		return err
	}
	rep.setAction(action)
	if o.On != "" || o.Exclude != "" {
		if calls, err = selectedCalls(in.ctx, src, o.On, o.Exclude, calls); err != nil {
			return err
		}
		f.Parallel = true
	}
	jsonDiff := f.ListJSON && !f.Listing()
	if jsonDiff {
		for _, c := range calls {
			if _, step, _ := strings.Cut(c, ":"); step != config.TaskDiff {
				return usage(fmt.Sprintf("--json applies to --list, --list-all and diff tasks, not to %q", c),
					"lollypops --json host1:diff prints what deploying host1 would change, as JSON")
			}
		}
	}
	rep.setTasks(calls)
	bare := len(calls) == 0 && !f.Listing() && !f.Experiments && !f.ClearCache && !f.Summary
	if bare {
		// No task named "default" exists: a bare run lists instead of deploying.
		f.List = true
	}
	listing := f.Listing() || f.Experiments || f.ClearCache
	if !listing {
		// LP_* variables may be overrides.
		if err := o.Overrides.adoptLegacy(vars, out); err != nil {
			return err
		}
	}
	// A real run executes steps; the other modes only print.
	if !f.Listing() && !f.Summary && !f.Dry && !f.Status && !f.Experiments && !f.ClearCache {
		return deployHosts(in, o, src, calls, vars, action, jsonDiff, stdin, stdout, stderr, out, rep)
	}
	return inspect(in, o, src, calls, vars, action, bare, listing, stdin, stdout, stderr, out)
}

// deployHosts is a real run: package deploy's pipeline, with this command
// line's overrides, schedule, sudo password and view.
func deployHosts(in *interrupter, o *options, src *deploy.Source, calls []string, vars []taskrun.Var, action string, jsonDiff bool,
	stdin io.Reader, stdout, stderr io.Writer, out *output.Sink, rep *runReport) error {
	f := &o.Flags
	names, err := deploy.HostsOf(calls, src)
	if err != nil {
		return err
	}
	runNames := names
	if names == nil {
		runNames = src.Names()
	}
	prepare, err := o.Overrides.forHosts(runNames)
	if err != nil {
		return err
	}
	sched := deploy.Schedule{
		Parallel: f.Parallel || slices.Contains(calls, plan.AllTask),
		Limit:    f.Concurrency, Failfast: f.Failfast,
		Batch: o.Rollout.Batch, MaxFailures: o.Rollout.MaxFailures,
	}
	if f.Interactive {
		// go-task prompts for what a host's tasks require: one host
		// at a time, so that prompts never interleave.
		sched.Limit = 1
	}
	if err := o.Rollout.check(); err != nil {
		return err
	}
	if err := deploy.CheckSchedule(sched, len(runNames)); err != nil {
		return err
	}
	run, err := rundir.Create()
	if err != nil {
		return err
	}
	defer run.Remove()
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	cfg := &deploy.Config{
		Source: src, Calls: calls, Vars: vars, PostDash: o.PostDash, Action: action,
		Flags: f, Dir: run, WorkDir: wd, Report: rep != nil,
		Prepare: prepare, Schedule: sched, Timings: o.Timings,
		JSONDiff: jsonDiff, JSONOut: stdout,
		Stdin: stdin, Stdout: stdout, Stderr: stderr, Out: out,
		Interrupt: in.setOnFirst, Interrupted: in.interrupted,
	}
	var v *view
	defer func() { v.stop() }()
	cfg.Ready = func() error {
		if cfg.StepBinary, err = stepBinary(); err != nil {
			return err
		}
		if cfg.Password, err = o.SudoPassword.get(in.ctx, out); err != nil {
			return err
		}
		// The view starts once nothing is asked on the terminal any more.
		if !jsonDiff && wantView(f, stdout) {
			planned := map[string][]string{}
			for _, n := range runNames {
				planned[n] = []string{deploy.EvalStep}
			}
			v = startView(out, stdout.(*os.File), f.Color, stderr, run.Results(), planned)
			cfg.Stdout, cfg.Stderr, cfg.Planned, cfg.Finished = v.stdout, v.stderr, v.plan, v.stop
		}
		return nil
	}
	// With --json, stdout holds the diffs' JSON document alone.
	if jsonDiff {
		cfg.Stdout = stderr
	}
	res, err := deploy.Run(in.ctx, cfg)
	if res != nil {
		rep.setHosts(res.Hosts)
	}
	return err
}

// inspect is the short path of the commands that only print: listings,
// --dry, --summary, --status. One Taskfile holds the hosts the command
// line names (a listing: every host).
func inspect(in *interrupter, o *options, src *deploy.Source, calls []string, vars []taskrun.Var, action string, bare, listing bool,
	stdin io.Reader, stdout, stderr io.Writer, out *output.Sink) error {
	f := &o.Flags
	// Only the hosts the command line names are evaluated (or decoded), so
	// that one host costs the same in a fleet of ten or of thousands.
	var names []string
	var err error
	if !listing {
		if names, err = deploy.HostsOf(calls, src); err != nil {
			return err
		}
	}
	inv, err := src.Load(in.ctx, names)
	if err != nil {
		return fault.As(fault.Input, err)
	}
	// A host that could not be evaluated fails alone: the others are shown.
	evalFailed, why := src.Failed()
	calls = withoutHosts(calls, why)
	if !listing {
		if err := o.Overrides.apply(inv); err != nil {
			return err
		}
	}
	g := plan.Build(inv)
	sel := g
	if !listing {
		if sel, err = g.Select(calls); err != nil {
			return deploy.UnknownTask(err)
		}
		if err := o.Rollout.check(); err != nil {
			return err
		}
	}
	// Listings show the step binary's path; nothing runs it.
	step, _ := stepBinary()
	run, err := rundir.Create()
	if err != nil {
		return err
	}
	defer run.Remove()
	gen := deploy.TaskfileOptions(step, action, run, f, false, false)
	hosts := sel.HostSteps()
	if f.Dry {
		gen.DryRun = func(t *plan.Task) ([]string, error) {
			h := inv.Hosts[t.Host]
			return steps.Describe(&steps.Env{Host: h, Run: run, Action: action,
				ActivationFollows: plan.ActivationFollows(sel, h, action),
				ShowConnection:    t.Step == firstConnecting(h, hosts[t.Host])}, t.Step)
		}
	}
	for _, h := range evalFailed {
		out.Printf("%s", deploy.EvalFailure(h, why[h]))
	}
	taskfile, err := taskgen.Generate(sel, inv, gen)
	if err != nil {
		return fmt.Errorf("generating the Taskfile: %w", err)
	}
	if err := os.WriteFile(run.Taskfile(), taskfile, 0o600); err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	req := &taskrun.Request{
		Flags: f, Taskfile: run.Taskfile(), Dir: wd, TempDir: filepath.Join(run.Path, "task"),
		Calls: calls, Vars: vars, PostDash: o.PostDash,
		Stdin: stdin, Stdout: stdout, Stderr: output.Tasks(stderr),
		ListWithoutEnv: f.Listing() && !templatedDesc(sel),
	}
	if len(calls) > 0 || listing || f.Summary {
		err = taskrun.Run(in.ctx, req)
	}
	switch {
	case errors.Is(err, taskrun.ErrNoTasks):
		return &fault.Error{K: fault.Input}
	case err != nil:
		return err
	}
	if bare {
		out.Printf("hint: run a host's task, e.g. lollypops %s, or all to deploy every host; --list-all shows every task", firstHost(g))
		return nil
	}
	if f.Listing() && !f.ListJSON && !f.Silent {
		printTags(stdout, inv)
	}
	if len(evalFailed) > 0 {
		return &fault.Error{K: fault.HostsFailed}
	}
	return nil
}

// rebuildAction returns REBUILD_ACTION from the command line, else the
// environment, else "switch", and checks it.
func rebuildAction(vars []taskrun.Var) (string, error) {
	action := "switch"
	if env := os.Getenv("REBUILD_ACTION"); env != "" {
		action = env
	}
	for _, v := range vars {
		if v.Name == "REBUILD_ACTION" {
			action = v.Value
		}
	}
	if err := plan.CheckAction(action); err != nil {
		hint := "REBUILD_ACTION=boot builds and makes the new system the boot default without activating it; dry-activate shows what switch would do"
		var ae *plan.ActionError
		if errors.As(err, &ae) && len(ae.Suggestions) > 0 {
			hint = plan.DidYouMean(ae.Suggestions) + " " + hint
		}
		return "", usage(err.Error(), hint)
	}
	return action, nil
}

// stepBinary finds lollypops-step next to this executable.
func stepBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	p := filepath.Join(filepath.Dir(self), stepBinaryName)
	if _, err := os.Stat(p); err != nil {
		return p, usage(fmt.Sprintf("%s is missing next to %s", stepBinaryName, self), "install lollypops and lollypops-step from the same build, in the same directory")
	}
	return p, nil
}

// templatedDesc reports whether a task's description is a go-task
// template (an extra task's desc may read variables).
func templatedDesc(g *plan.Graph) bool {
	for _, t := range g.Tasks {
		if strings.Contains(t.Desc, "{{") {
			return true
		}
	}
	return false
}

// firstConnecting is the first of a host's planned steps that uses its
// shared connection: --dry shows the connection there.
func firstConnecting(h *config.Host, planned []string) string {
	for _, s := range planned {
		if h.IsBuiltin(s) && steps.Connects(s) {
			return s
		}
	}
	return ""
}

func firstHost(g *plan.Graph) string {
	for _, t := range g.Tasks {
		if t.Kind == plan.Umbrella {
			return t.Name
		}
	}
	return "HOST"
}

// printTags lists, after the tasks, each tag with the hosts that carry it
// (lollypops.deployment.tags); nothing when no host has a tag.
func printTags(w io.Writer, inv *config.Inventory) {
	byTag := map[string][]string{}
	for name, h := range inv.Hosts {
		for _, tag := range h.Deployment.Tags {
			if !slices.Contains(byTag[tag], name) {
				byTag[tag] = append(byTag[tag], name)
			}
		}
	}
	if len(byTag) == 0 {
		return
	}
	tags := make([]string, 0, len(byTag))
	for tag := range byTag {
		tags = append(tags, tag)
	}
	plan.SortNatural(tags)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Tags:")
	for _, tag := range tags {
		plan.SortNatural(byTag[tag])
		fmt.Fprintf(tw, "* @%s:\t%s\n", tag, strings.Join(byTag[tag], ", "))
	}
	tw.Flush()
}

// selectedCalls turns --on and --exclude into task names: each selected
// host's deployment, or, when steps are named, those steps of each host.
func selectedCalls(ctx context.Context, src *deploy.Source, on, exclude string, steps []string) ([]string, error) {
	names, flag, inv, err := selectHosts(ctx, src, on, exclude)
	if err != nil {
		return nil, err
	}
	var calls []string
	for _, s := range steps {
		if s == plan.AllTask || strings.Contains(s, ":") || src.Has(s) {
			return nil, usage(fmt.Sprintf("%q with %s: name steps (deploy-secrets, rebuild, an extra task), not tasks", s, flag), "lollypops --on @web deploy-secrets runs that step on each selected host")
		}
		if err := knownStep(inv, names, s); err != nil {
			return nil, err
		}
	}
	for _, h := range names {
		if len(steps) == 0 {
			calls = append(calls, h)
		}
		for _, s := range steps {
			calls = append(calls, plan.TaskName(h, s))
		}
	}
	return calls, nil
}

// knownStep checks that at least one selected host has the step, and
// suggests the step that may have been meant.
func knownStep(inv *config.Inventory, hosts []string, step string) error {
	var all []string
	for _, h := range hosts {
		if inv.Hosts[h] == nil {
			continue // not evaluated: the summary says why
		}
		if inv.Hosts[h].HasTask(step) {
			return nil
		}
		for _, t := range append(slices.Clone(inv.Hosts[h].Builtins()), slices.Sorted(maps.Keys(inv.Hosts[h].ExtraTasks))...) {
			if !slices.Contains(all, t) {
				all = append(all, t)
			}
		}
	}
	hint := "the steps of the selected hosts: " + strings.Join(all, ", ")
	if q := plan.DidYouMean(plan.Suggest(step, all)); q != "" {
		hint = q + " " + hint
	}
	return usage(fmt.Sprintf("no selected host has a step %q", step), hint)
}

// withoutHosts drops the calls of the hosts in failed.
func withoutHosts(calls []string, failed map[string]string) []string {
	if len(failed) == 0 {
		return calls
	}
	var kept []string
	for _, c := range calls {
		host, _, _ := strings.Cut(c, ":")
		if _, ok := failed[host]; !ok {
			kept = append(kept, c)
		}
	}
	return kept
}
