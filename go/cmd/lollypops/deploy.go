package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/lock"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/report"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/ssh"
	"github.com/lollypops/lollypops/go/internal/steps"
	"github.com/lollypops/lollypops/go/internal/taskgen"
	"github.com/lollypops/lollypops/go/internal/taskrun"
	"github.com/lollypops/lollypops/go/internal/termtext"
	"github.com/lollypops/lollypops/go/internal/version"
)

// stepBinaryName is the worker the generated tasks call; it is installed
// next to lollypops.
const stepBinaryName = "lollypops-step"

// deploy loads the inventory, plans the run, and hands the generated
// Taskfile to go-task. It returns the exit code and the error to print.
// With --report, the run report is written before it returns.
func deploy(in *interrupter, o *options, stdin io.Reader, stdout, stderr io.Writer, out *ui) (code int, err error) {
	f := &o.Flags
	if o.Version {
		fmt.Fprintf(stdout, "lollypops %s (go-task %s)\n", version.Version, version.GoTask())
		return exitOK, nil
	}
	rep, err := openReport(o.Report)
	if err != nil {
		return exitUsage, err
	}
	defer func() { code = rep.finish(code, err, in.interrupted(), out) }()
	src, err := openSource(in.ctx, &o.Hosts, stderr)
	if err != nil {
		return exitError, err
	}
	calls, vars := taskrun.ParseArgs(o.Args)
	action, err := rebuildAction(vars)
	if err != nil {
		return exitUsage, err
	}
	rep.setAction(action)
	if o.On != "" || o.Exclude != "" {
		if calls, err = selectedCalls(in.ctx, src, o.On, o.Exclude, calls); err != nil {
			return exitUsage, err
		}
		f.Parallel = true
	}
	jsonDiff := f.ListJSON && !f.Listing()
	if jsonDiff {
		for _, c := range calls {
			if _, step, _ := strings.Cut(c, ":"); step != config.TaskDiff {
				return exitUsage, &usageError{msg: fmt.Sprintf("--json applies to --list, --list-all and diff tasks, not to %q", c),
					hint: "lollypops --json host1:diff prints what deploying host1 would change, as JSON"}
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
	// A real run executes steps; the other modes only print.
	real := !f.Listing() && !f.Summary && !f.Dry && !f.Status && !f.Experiments && !f.ClearCache
	if !listing {
		// Before deciding how to run: LP_* variables may be overrides.
		if err := o.Overrides.adoptLegacy(vars, stderr); err != nil {
			return exitUsage, err
		}
	}
	if o.streams(src, calls, real && !bare) {
		return deployStreaming(in, o, src, calls, vars, action, stdin, stdout, stderr, out, rep)
	}

	// Only the hosts the command line names are evaluated (or decoded), so
	// that one host costs the same in a fleet of ten or of thousands.
	var names []string
	if !listing {
		if names, err = hostsOf(calls, src); err != nil {
			return exitUsage, err
		}
	}
	inv, err := src.Load(in.ctx, names)
	if err != nil {
		return exitError, err
	}
	// A host that could not be evaluated fails alone: the others run.
	evalFailed, why := src.Failed()
	calls = withoutHosts(calls, why)
	if !listing {
		if err := o.Overrides.apply(inv); err != nil {
			return exitUsage, err
		}
	}
	g := plan.Build(inv)
	sel := g
	if !listing {
		if sel, err = g.Select(calls); err != nil {
			return exitUsage, unknownTask(err)
		}
	}
	if !listing {
		if err := o.Rollout.check(calls, sel); err != nil {
			return exitUsage, err
		}
	}
	// Only a real run starts the step binary; listings show its path.
	step, err := stepBinary()
	if err != nil && real {
		return exitError, err
	}
	run, err := rundir.Create()
	if err != nil {
		return exitError, err
	}
	defer run.Remove()

	gen := genOptions(step, action, run, f, real, rep)
	hosts := sel.HostSteps()
	if f.Dry {
		gen.DryRun = func(t *plan.Task) ([]string, error) {
			h := inv.Hosts[t.Host]
			return steps.Describe(&steps.Env{Host: h, Run: run, Action: action,
				ActivationFollows: plan.ActivationFollows(sel, h, action),
				ShowConnection:    t.Step == firstConnecting(h, hosts[t.Host])}, t.Step)
		}
	}
	if real {
		if err := writeHostInventories(run, inv, hosts); err != nil {
			return exitError, err
		}
		stopServing, err := o.SudoPassword.serve(in.ctx, run, inv, hosts, stderr)
		if err != nil {
			return exitUsage, err
		}
		defer stopServing()
		in.setOnFirst(func() { markInterrupted(run) })
		defer in.setOnFirst(nil)
		keeper, err := lock.Start(run)
		if err != nil {
			return exitError, fmt.Errorf("deploy lock: %w", err)
		}
		defer closeConnections(run, inv, hosts, keeper, out)
		if err := recordEvalFailures(run, evalFailed, why); err != nil {
			return exitError, err
		}
	} else {
		// Nothing runs that would put them in a summary: say it now.
		for _, h := range evalFailed {
			out.printf("%s", evalFailure(h, why[h]))
		}
	}
	taskfile, err := taskgen.Generate(sel, inv, gen)
	if err != nil {
		return exitError, fmt.Errorf("generating the Taskfile: %w", err)
	}
	if err := os.WriteFile(run.Taskfile(), taskfile, 0o600); err != nil {
		return exitError, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return exitError, err
	}
	// With --json, stdout holds the diffs' JSON document alone.
	taskOut := stdout
	if jsonDiff {
		taskOut = stderr
	}
	req := &taskrun.Request{
		Flags: f, Taskfile: run.Taskfile(), Dir: wd, TempDir: filepath.Join(run.Path, "task"),
		Calls: calls, Vars: vars, PostDash: o.PostDash,
		Stdin: stdin, Stdout: taskOut, Stderr: stderr,
		ListWithoutEnv: f.Listing() && !templatedDesc(sel),
	}
	var v *view
	if real && !jsonDiff && wantView(f, stdout) {
		v = startView(in, out, stdout.(*os.File), req, run.Results(), hosts)
	}
	start := time.Now()
	var runErr error
	var halt *stopped
	switch {
	case real && len(calls) == 0:
		// Every host named failed its evaluation: nothing to run.
	case real && o.Rollout.enabled():
		runErr, halt = o.Rollout.run(in.ctx, req, sel, run, hosts, in.interrupted)
	default:
		runErr = taskrun.Run(in.ctx, req)
	}
	v.stop()

	if bare && runErr == nil {
		out.printf("hint: run a host's task, e.g. lollypops %s, or all to deploy every host; --list-all shows every task", firstHost(g))
		return exitOK, nil
	}
	if !real {
		switch {
		case errors.Is(runErr, taskrun.ErrNoTasks):
			return exitError, nil
		case runErr != nil:
			return exitError, runErr
		}
		if f.Listing() && !f.ListJSON && !f.Silent {
			printTags(stdout, inv)
		}
		if len(evalFailed) > 0 {
			return exitHostsFailed, nil
		}
		return exitOK, nil
	}
	summed := hosts
	if len(evalFailed) > 0 {
		summed = maps.Clone(hosts)
		for _, h := range evalFailed {
			summed[h] = []string{evalStep}
		}
	}
	code, err = summarize(run, sel, summed, runErr, f.ExitCode, time.Since(start), out, rep)
	if halt != nil {
		out.printf("%v", halt)
		if code == exitOK {
			code = exitHostsFailed
		}
	}
	if jsonDiff {
		if werr := writeDiffs(stdout, run, hosts); werr != nil && err == nil {
			return exitError, werr
		}
	}
	return code, err
}

// writeDiffs prints the diffs the run's diff steps left, as one JSON
// document: {"version": 1, "hosts": {"<host>": <diff> | null}}, null for a
// host whose diff failed (the summary says why).
func writeDiffs(w io.Writer, run *rundir.Dir, hosts map[string][]string) error {
	doc := struct {
		Version int                        `json:"version"`
		Hosts   map[string]json.RawMessage `json:"hosts"`
	}{Version: 1, Hosts: map[string]json.RawMessage{}}
	for h := range hosts {
		data, err := os.ReadFile(steps.DiffFile(run.Path, h))
		if err != nil {
			doc.Hosts[h] = json.RawMessage("null")
			continue
		}
		doc.Hosts[h] = json.RawMessage(data)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// summarize prints the per-host summary of a run that touched hosts and
// returns its exit code.
func summarize(run *rundir.Dir, sel *plan.Graph, hosts map[string][]string, runErr error, passExit bool, took time.Duration, out *ui, rep *runReport) (int, error) {
	records, err := report.ReadAll(run.Results())
	if err != nil {
		return exitError, fmt.Errorf("reading the step results: %w", err)
	}
	names := make([]string, 0, len(hosts))
	for h := range hosts {
		names = append(names, h)
	}
	plan.SortNatural(names)
	sum := report.Build(names, hosts, records)
	rep.setHosts(sum)
	report.Render(out.w, sum, "lollypops: ")
	out.printf("took %s", took.Round(10*time.Millisecond))
	var failed *taskrun.TaskFailed
	switch {
	case runErr == nil && report.AllOK(sum):
		return exitOK, nil
	case errors.As(runErr, &failed) && passExit && failed.ExitCode > 0:
		return failed.ExitCode, nil
	case runErr == nil || errors.As(runErr, &failed):
		return exitHostsFailed, nil
	}
	return exitHostsFailed, runErr
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
		return "", &usageError{msg: err.Error(), hint: hint}
	}
	return action, nil
}

// hostsOf returns the hosts whose tasks calls name (nil: every host, for
// "all"). A name that is no host's task is an unknown task, suggested
// among every host's tasks.
func hostsOf(calls []string, src *source) ([]string, error) {
	var names []string
	for _, c := range calls {
		if c == plan.AllTask {
			return nil, nil
		}
		host, step, _ := strings.Cut(c, ":")
		if !src.Has(host) {
			var candidates []string
			for _, h := range src.Names() {
				candidates = append(candidates, h)
				if step != "" {
					candidates = append(candidates, plan.TaskName(h, step))
				}
			}
			candidates = append(candidates, plan.AllTask)
			return nil, unknownTask(&plan.UnknownTaskError{Name: c, Suggestions: plan.Suggest(c, candidates)})
		}
		if !slices.Contains(names, host) {
			names = append(names, host)
		}
	}
	return names, nil
}

func unknownTask(err error) error {
	var ut *plan.UnknownTaskError
	if !errors.As(err, &ut) {
		return err
	}
	hint := "lollypops --list-all shows every task"
	if q := plan.DidYouMean(ut.Suggestions); q != "" {
		hint = q + " " + hint
	}
	return &usageError{msg: ut.Error(), hint: hint}
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
		return p, &usageError{msg: fmt.Sprintf("%s is missing next to %s", stepBinaryName, self),
			hint: "install lollypops and lollypops-step from the same build, in the same directory"}
	}
	return p, nil
}

// writeHostInventories gives each host's steps their host's settings, so a
// step reads a few hundred bytes instead of the whole fleet's inventory.
func writeHostInventories(run *rundir.Dir, inv *config.Inventory, hosts map[string][]string) error {
	for name := range hosts {
		one := config.Inventory{Version: config.Version, Hosts: map[string]*config.Host{name: inv.Hosts[name]}}
		data, err := json.Marshal(one)
		if err != nil {
			return err
		}
		if err := os.WriteFile(run.HostInventory(name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// closeConnections releases the run's deploy locks, then stops the shared
// ssh connections the steps opened.
func closeConnections(run *rundir.Dir, inv *config.Inventory, hosts map[string][]string, keeper *lock.Keeper, out *ui) {
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	keeper.Release(lctx)
	lcancel()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for name := range hosts {
		c := &ssh.Client{Host: inv.Hosts[name], Prefix: run.SSH(name)}
		wg.Go(func() {
			if err := c.Close(ctx); err != nil {
				out.printf("%v", err)
			}
		})
	}
	wg.Wait()
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
func selectedCalls(ctx context.Context, src *source, on, exclude string, steps []string) ([]string, error) {
	names, flag, inv, err := selectHosts(ctx, src, on, exclude)
	if err != nil {
		return nil, err
	}
	var calls []string
	for _, s := range steps {
		if s == plan.AllTask || strings.Contains(s, ":") || src.Has(s) {
			return nil, &usageError{msg: fmt.Sprintf("%q with %s: name steps (deploy-secrets, rebuild, an extra task), not tasks", s, flag),
				hint: "lollypops --on @web deploy-secrets runs that step on each selected host"}
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
	return &usageError{msg: fmt.Sprintf("no selected host has a step %q", step), hint: hint}
}

// genOptions are the Taskfile's settings for a run: a real run records
// each step's outcome and starts no step once it was interrupted
// (markInterrupted).
func genOptions(step, action string, run *rundir.Dir, f *taskrun.Flags, real bool, rep *runReport) taskgen.Options {
	gen := taskgen.Options{
		StepBinary: step,
		Action:     action,
		Env:        map[string]string{rundir.EnvVar: run.Path},
		Record:     real,
		ListOnly:   f.Listing(),
	}
	if f.Verbose {
		gen.Env[rundir.EnvVerbose] = "1"
	}
	if rep != nil {
		gen.Env[report.EnvWanted] = "1"
	}
	if real {
		gen.Guard = &taskgen.Precondition{
			Sh:  `test ! -e "$` + rundir.EnvVar + `/interrupted"`,
			Msg: "not started: the run was interrupted",
		}
	}
	return gen
}

// markInterrupted keeps the run's steps that have not started from
// starting (genOptions' guard).
func markInterrupted(run *rundir.Dir) {
	os.WriteFile(filepath.Join(run.Path, "interrupted"), nil, 0o600)
}

// evalStep is the step a host that could not be evaluated failed at, in
// the summary and the run report.
const evalStep = "evaluate"

// recordEvalFailures writes, for each host that could not be evaluated, the
// record of its failed evaluation, for the summary and the run report.
func recordEvalFailures(run *rundir.Dir, hosts []string, why map[string]string) error {
	now := time.Now()
	for _, h := range hosts {
		r := report.Record{Host: h, Step: evalStep, Status: report.Failed, Start: now, End: now, Error: "not evaluated: " + termtext.Text(why[h]),
			Hint: "fix the host's configuration (nix eval .#nixosConfigurations." + h + ".config.system.build.toplevel shows the whole error); the other hosts ran"}
		if err := report.Write(run.Results(), r); err != nil {
			return err
		}
	}
	return nil
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
