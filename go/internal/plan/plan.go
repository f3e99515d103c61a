// Package plan turns an inventory into the graph of tasks lollypops offers —
// "<host>", "<host>:check-vars", "<host>:deploy-flake",
// "<host>:deploy-secrets", "<host>:rebuild", the host's extra tasks, and
// "all" — and selects the part of it a command line asks for.
//
// It is pure: no I/O, no go-task. The order of Graph.Tasks is the listing
// order: hosts in natural order ("host2" before "host10"), each host's
// umbrella task first, then its built-in steps, then its extra tasks, and
// "all" last.
package plan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lollypops/lollypops/go/internal/config"
)

// AllTask deploys every host in parallel.
const AllTask = "all"

// Kind says what runs when a task runs.
type Kind int

const (
	// Umbrella runs the host's lollypops.tasks one after another.
	Umbrella Kind = iota
	// Builtin runs one of lollypops' own steps.
	Builtin
	// Extra runs the shell commands of a lollypops.extraTasks entry.
	Extra
	// All runs every host's umbrella task in parallel.
	All
)

// Task is one go-task task.
type Task struct {
	Name  string // "host1:rebuild", "host1", "all"
	Host  string // "" for "all"
	Step  string // the name inside the host ("rebuild"); "" for umbrella and all
	Kind  Kind
	Desc  string
	Deps  []string // task names run in parallel before this task
	Calls []string // task names run in order (umbrella tasks)
	// Extra is the user's definition for Kind == Extra.
	Extra *config.ExtraTask
}

// Graph is a set of tasks in listing order.
type Graph struct {
	Tasks  []*Task
	byName map[string]*Task
}

// TaskName returns the task name of a host's step.
func TaskName(host, step string) string { return host + ":" + step }

// Build returns every task of the inventory.
func Build(inv *config.Inventory) *Graph {
	hosts := make([]string, 0, len(inv.Hosts))
	for name := range inv.Hosts {
		hosts = append(hosts, name)
	}
	SortNatural(hosts)
	g := &Graph{byName: make(map[string]*Task, len(hosts)*6+1)}
	for _, name := range hosts {
		addHost(g, inv.Hosts[name])
	}
	all := &Task{Name: AllTask, Kind: All, Desc: "Deploy every host in parallel", Deps: hosts}
	g.add(all)
	return g
}

func addHost(g *Graph, h *config.Host) {
	umbrella := &Task{Name: h.Name, Host: h.Name, Kind: Umbrella,
		Desc: fmt.Sprintf("Deploy %s: %s", h.Name, strings.Join(h.Tasks, ", "))}
	if len(h.Tasks) == 0 {
		umbrella.Desc = fmt.Sprintf("Deploy %s (lollypops.tasks is empty)", h.Name)
	}
	for _, step := range h.Tasks {
		umbrella.Calls = append(umbrella.Calls, TaskName(h.Name, step))
	}
	g.add(umbrella)

	for _, step := range h.Builtins() {
		if h.IsBuiltin(step) {
			t := &Task{Name: TaskName(h.Name, step), Host: h.Name, Step: step, Kind: Builtin, Desc: builtinDesc(h, step)}
			if step != config.TaskCheckVars {
				t.Deps = []string{TaskName(h.Name, config.TaskCheckVars)}
			}
			// The diff builds the system from the deployed flake.
			if step == config.TaskDiff && !h.Deployment.EvaluatesHere() && h.HasTask(config.TaskDeployFlake) {
				t.Deps = append(t.Deps, TaskName(h.Name, config.TaskDeployFlake))
			}
			g.add(t)
		} else {
			g.add(extraTask(h, step))
		}
	}
	for _, step := range sortedExtra(h) {
		if !h.IsBuiltin(step) && g.byName[TaskName(h.Name, step)] == nil {
			g.add(extraTask(h, step))
		}
	}
}

func extraTask(h *config.Host, step string) *Task {
	x := h.ExtraTasks[step]
	t := &Task{Name: TaskName(h.Name, step), Host: h.Name, Step: step, Kind: Extra, Desc: x.Desc, Extra: &x}
	for _, d := range x.Deps {
		t.Deps = append(t.Deps, TaskName(h.Name, d))
	}
	return t
}

func sortedExtra(h *config.Host) []string {
	names := make([]string, 0, len(h.ExtraTasks))
	for name := range h.ExtraTasks {
		names = append(names, name)
	}
	SortNatural(names)
	return names
}

func builtinDesc(h *config.Host, step string) string {
	d := &h.Deployment
	if h.Home != nil {
		switch step {
		case config.TaskCheckVars:
			return fmt.Sprintf("Check the settings of %s and the tools they need here", h.Name)
		case config.TaskRebuild:
			return fmt.Sprintf("Build the home configuration %s here, copy it and activate it as %s", h.Name, d.SSH.Target())
		}
	}
	switch step {
	case config.TaskCheckVars:
		return fmt.Sprintf("Check the settings of %s and the tools they need here", h.Name)
	case config.TaskDeployFlake:
		how := "nix copy"
		if d.DeployMethod == config.MethodArchive {
			how = "nix flake archive"
		}
		return fmt.Sprintf("Copy the flake to %s:%s/flake (%s)", h.Name, d.ConfigDir, how)
	case config.TaskDeploySecrets:
		switch n := len(h.Secrets.Files); n {
		case 0:
			return fmt.Sprintf("Deploy the secrets of %s (none configured)", h.Name)
		case 1:
			return fmt.Sprintf("Deploy 1 secret to %s", h.Name)
		default:
			return fmt.Sprintf("Deploy %d secrets to %s", n, h.Name)
		}
	case config.TaskDiff:
		return fmt.Sprintf("Show what deploying %s would change (packages, closure size, kernel); activates nothing", h.Name)
	case config.TaskRebuild:
		if b := d.BuildHost; b != nil {
			return fmt.Sprintf("Build %s on %s, copy it and activate it over ssh", h.Name, b.Target())
		}
		if d.LocalEvaluation {
			return fmt.Sprintf("Build %s here, copy it and activate it over ssh", h.Name)
		}
		return fmt.Sprintf("Build and activate %s on the host", h.Name)
	}
	return ""
}

func (g *Graph) add(t *Task) {
	g.Tasks = append(g.Tasks, t)
	g.byName[t.Name] = t
}

// Lookup returns the task with the given name, or nil.
func (g *Graph) Lookup(name string) *Task { return g.byName[name] }

// UnknownTaskError is a task name on the command line that no host offers.
type UnknownTaskError struct {
	Name        string
	Suggestions []string // what may have been meant (see Suggest)
}

func (e *UnknownTaskError) Error() string { return fmt.Sprintf("unknown task %q", e.Name) }

// Select returns the tasks that running names needs: the named tasks, their
// deps and the tasks they call, transitively, in listing order.
func (g *Graph) Select(names []string) (*Graph, error) {
	keep := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if keep[name] {
			return
		}
		keep[name] = true
		t := g.byName[name]
		for _, d := range t.Deps {
			visit(d)
		}
		for _, c := range t.Calls {
			visit(c)
		}
	}
	for _, name := range names {
		if g.byName[name] == nil {
			return nil, &UnknownTaskError{Name: name, Suggestions: g.suggest(name)}
		}
		visit(name)
	}
	sel := &Graph{byName: make(map[string]*Task, len(keep))}
	for _, t := range g.Tasks {
		if keep[t.Name] {
			sel.add(t)
		}
	}
	return sel, nil
}

// HostSteps returns, per host, the steps (built-in and extra) of the graph in
// listing order. Umbrella and "all" tasks run nothing themselves.
func (g *Graph) HostSteps() map[string][]string {
	steps := map[string][]string{}
	for _, t := range g.Tasks {
		if t.Kind == Builtin || t.Kind == Extra {
			steps[t.Host] = append(steps[t.Host], t.Step)
		}
	}
	return steps
}

// suggest returns the task names that may have been meant by name.
func (g *Graph) suggest(name string) []string {
	names := make([]string, len(g.Tasks))
	for i, t := range g.Tasks {
		names[i] = t.Name
	}
	return Suggest(name, names)
}

// Suggest returns what may have been meant by name: the candidate closest
// to it (edit distance, ignoring case) when it is close enough, else the
// candidates it is the start of ("host1:deploy" for host1:deploy-flake and
// host1:deploy-secrets), at most three; nil when nothing fits.
func Suggest(name string, candidates []string) []string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := levenshtein(strings.ToLower(name), strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist >= 0 && bestDist <= max(2, len(name)/3) {
		return []string{best}
	}
	var starts []string
	for _, c := range candidates {
		if len(name) >= 2 && strings.HasPrefix(strings.ToLower(c), strings.ToLower(name)) && len(starts) < 3 {
			starts = append(starts, c)
		}
	}
	return starts
}

// DidYouMean renders suggestions as a question, or "" for none.
func DidYouMean(suggestions []string) string {
	if len(suggestions) == 0 {
		return ""
	}
	q := make([]string, len(suggestions))
	for i, s := range suggestions {
		q[i] = strconv.Quote(s)
	}
	return "did you mean " + strings.Join(q, " or ") + "?"
}

// levenshtein is the edit distance of a and b, a swap of two neighbours
// counting as one edit (optimal string alignment): "wbe" is one edit from
// "web".
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
