// Package taskgen renders a plan.Graph as a go-task Taskfile (version 3).
//
// The Taskfile is JSON, which go-task's YAML reader accepts and which is
// several times faster to produce and parse than YAML. It is flat — one
// task per name, no includes — and carries as few variables as possible,
// because go-task's cost grows with included files and templated variables.
//
// Built-in steps call back into the step binary with the host and step
// name; every value they need comes from the inventory, so no user value is
// spliced into a command and no secret is ever in the Taskfile. Extra tasks
// keep the user's shell commands, with the host's variables (HOSTNAME,
// REMOTE_HOST, ...) as task variables, each a quoted shell word, and raw in
// the environment (LOLLYPOPS_HOSTNAME, ...). Every literal this package
// writes is quoted for the shell and protected from go-task's template
// engine.
//
// Generate is pure and deterministic.
package taskgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"mvdan.cc/sh/v3/syntax"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/plan"
)

// Options control how tasks are rendered.
type Options struct {
	// StepBinary is the absolute path of lollypops-step.
	StepBinary string
	// Action is the validated REBUILD_ACTION.
	Action string
	// Env is set for every command (the run directory, ...).
	Env map[string]string
	// DryRun, when set, renders each built-in step as the commands it would
	// run, for go-task's --dry to print; nothing calls the step binary. The
	// Taskfile is then not silent, so that go-task prints every command.
	DryRun func(t *plan.Task) ([]string, error)
	// Record adds a deferred command to extra tasks that records their
	// outcome for the run's summary.
	Record bool
	// Guard, when set, is a precondition of every task that runs commands:
	// an interrupted run starts no new step.
	Guard *Precondition
	// ListOnly renders names and descriptions only, all a listing shows:
	// go-task then has a fraction of the Taskfile to read.
	ListOnly bool
}

// Precondition is a go-task precondition: a shell test and its message.
type Precondition struct {
	Sh  string `json:"sh"`
	Msg string `json:"msg"`
}

type taskfile struct {
	Version string            `json:"version"`
	Output  string            `json:"output"`
	Silent  bool              `json:"silent"`
	Run     string            `json:"run"`
	Set     []string          `json:"set"`
	Env     map[string]string `json:"env,omitempty"`
	Tasks   orderedTasks      `json:"tasks"`
}

type task struct {
	Desc string `json:"desc,omitempty"`
	// Internal: not listed, not callable from the command line.
	Internal bool              `json:"internal,omitempty"`
	Dir      string            `json:"dir,omitempty"`
	Deps     []string          `json:"deps,omitempty"`
	Vars     map[string]string `json:"vars,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Cmds     []any             `json:"cmds,omitempty"`
	Pre      []*Precondition   `json:"preconditions,omitempty"`
}

type call struct {
	Task string `json:"task"`
}

type deferred struct {
	Defer string `json:"defer"`
}

type namedTask struct {
	name string
	task *task
}

// orderedTasks keeps the listing order, which a Go map would lose.
type orderedTasks []namedTask

func (o orderedTasks) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, nt := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(nt.name)
		v, err := json.Marshal(nt.task)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Generate renders the graph. inv provides the hosts' settings for the
// variables of extra tasks.
func Generate(g *plan.Graph, inv *config.Inventory, opts Options) ([]byte, error) {
	tf := taskfile{
		Version: "3",
		Output:  "prefixed",
		Silent:  opts.DryRun == nil,
		Run:     "once",
		Set:     []string{"pipefail"},
		Env:     map[string]string{},
		Tasks:   make(orderedTasks, 0, len(g.Tasks)),
	}
	if !opts.ListOnly {
		for k, v := range opts.Env {
			tf.Env[k] = Literal(v)
		}
	}
	step, err := quote(opts.StepBinary)
	if err != nil {
		return nil, fmt.Errorf("step binary: %w", err)
	}
	for _, t := range g.Tasks {
		if opts.ListOnly {
			tf.Tasks = append(tf.Tasks, namedTask{t.Name, &task{Desc: t.Desc}})
			continue
		}
		out := &task{Desc: t.Desc, Deps: t.Deps}
		var both *namedTask
		switch t.Kind {
		case plan.Umbrella:
			for i := 0; i < len(t.Calls); i++ {
				c := t.Calls[i]
				// --dry prints each step's commands in the order of
				// lollypops.tasks, the same at every run.
				if opts.DryRun == nil && i+1 < len(t.Calls) && atOnce(g, t.Host, c, t.Calls[i+1]) {
					// deploy-flake and deploy-secrets do not depend on
					// each other: go-task runs a task's deps at once.
					both = &namedTask{c + "+" + config.TaskDeploySecrets,
						&task{Internal: true, Deps: []string{c, t.Calls[i+1]}}}
					out.Cmds = append(out.Cmds, call{Task: both.name})
					i++
					continue
				}
				out.Cmds = append(out.Cmds, call{Task: c})
			}
		case plan.All:
		case plan.Builtin:
			if opts.DryRun != nil {
				lines, err := opts.DryRun(t)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", t.Name, err)
				}
				for _, l := range lines {
					out.Cmds = append(out.Cmds, Literal(l))
				}
				break
			}
			cmd := fmt.Sprintf("%s %s %s", step, t.Step, mustQuote(t.Host))
			if t.Step == config.TaskRebuild || t.Step == config.TaskCheckVars {
				cmd += " --action " + mustQuote(opts.Action)
			}
			if (t.Step == config.TaskDeploySecrets || t.Step == config.TaskRebuild) &&
				plan.ActivationFollows(g, inv.Hosts[t.Host], opts.Action) {
				cmd += " --activation-follows"
			}
			out.Cmds = append(out.Cmds, Literal(cmd))
			if opts.Guard != nil {
				out.Pre = []*Precondition{opts.Guard}
			}
		case plan.Extra:
			out.Dir = t.Extra.Dir
			out.Vars = hostVars(inv.Hosts[t.Host], opts.Action)
			out.Env = rawEnv(inv.Hosts[t.Host], opts.Action)
			if opts.Guard != nil {
				out.Pre = []*Precondition{opts.Guard}
			}
			// go-task registers a deferred command when it reaches it in
			// cmds, so the recorder goes first: it must run even when the
			// first of the user's commands fails. The start is recorded
			// next, for the report's start and duration.
			if opts.Record && opts.DryRun == nil {
				out.Cmds = append(out.Cmds, deferred{Defer: fmt.Sprintf("%s record %s %s {{.EXIT_CODE}}",
					step, mustQuote(t.Host), mustQuote(t.Step))},
					Literal(fmt.Sprintf("%s record-start %s %s", step, mustQuote(t.Host), mustQuote(t.Step))))
			}
			for _, c := range t.Extra.Cmds {
				out.Cmds = append(out.Cmds, c)
			}
		}
		tf.Tasks = append(tf.Tasks, namedTask{t.Name, out})
		if both != nil {
			tf.Tasks = append(tf.Tasks, *both)
		}
	}
	return json.Marshal(tf)
}

// atOnce reports whether a host's umbrella runs its calls a and b at once:
// lollypops' own deploy-flake followed by its own deploy-secrets. The one
// copies the flake into the host's store and links it, the other writes the
// secrets: neither needs the other, and the secret commands run here while
// the copy waits on the network. (Both take the run's lock on the host,
// and the receiver makes each missing directory itself, whoever made it
// first.) The internal task that holds them is named "<host>:deploy-flake+
// deploy-secrets", which no task of the user's can be (config's task
// names have no '+').
func atOnce(g *plan.Graph, host, a, b string) bool {
	ta, tb := g.Lookup(a), g.Lookup(b)
	return ta != nil && tb != nil && ta.Kind == plan.Builtin && tb.Kind == plan.Builtin &&
		ta.Host == host && tb.Host == host &&
		ta.Step == config.TaskDeployFlake && tb.Step == config.TaskDeploySecrets
}

// hostVars are the variables the original lollypops gave every task of a
// host; extra tasks use them in their commands ("{{.REMOTE_HOST}}"). Each
// is shell words, quoted, so that it can be used unquoted in a command
// (the original's usage) and stays the words it is: a list is its words
// (REMOTE_SSH_OPTS), any other value is one word. A plain value (letters,
// digits, "/._-@:" and the like) is written as it is, so the original's
// usages read the same; a value with a space, a quote, ";" or "$(" is
// quoted, where the original spliced it into the command. The raw values
// are in each extra task's environment (rawEnv).
func hostVars(h *config.Host, action string) map[string]string {
	vars := map[string]string{}
	for k, v := range hostValues(h, action) {
		if k != "REMOTE_SSH_OPTS" && k != "REMOTE_SUDO_OPTS" && v != "" {
			v = mustQuote(v)
		}
		vars[k] = Literal(v)
	}
	return vars
}

// RawEnvPrefix names the environment variables that hold the raw values of
// a host's one-word variables in its extra tasks: $LOLLYPOPS_REMOTE_CONFIG_DIR
// is {{.REMOTE_CONFIG_DIR}} unquoted, for use inside a word of the task's
// own, in double quotes ("$LOLLYPOPS_REMOTE_CONFIG_DIR/flake"). The lists
// (REMOTE_SSH_OPTS, REMOTE_SUDO_OPTS) are words already and have none.
const RawEnvPrefix = "LOLLYPOPS_"

// rawEnv is an extra task's environment: the host's values, raw.
func rawEnv(h *config.Host, action string) map[string]string {
	env := map[string]string{}
	for k, v := range hostValues(h, action) {
		if k != "REMOTE_SSH_OPTS" && k != "REMOTE_SUDO_OPTS" {
			env[RawEnvPrefix+k] = Literal(v)
		}
	}
	return env
}

// hostValues are the values of hostVars; the lists joined as quoted words.
func hostValues(h *config.Host, action string) map[string]string {
	d := &h.Deployment
	user := ""
	if d.SSH.User != nil {
		user = *d.SSH.User
	}
	vars := map[string]string{
		"HOSTNAME":            h.Name,
		"REMOTE_HOST":         d.SSH.Host,
		"REMOTE_USER":         user,
		"REMOTE_TARGET":       d.SSH.Target(),
		"REMOTE_COMMAND":      d.SSH.Command,
		"REMOTE_SSH_OPTS":     joinWords(d.SSH.Opts),
		"REMOTE_SUDO_COMMAND": "",
		"REMOTE_SUDO_OPTS":    joinWords(d.Sudo.Opts),
		"REMOTE_CONFIG_DIR":   d.ConfigDir,
		"LOCAL_FLAKE_SOURCE":  h.Flake,
		"REBUILD_ACTION":      action,
	}
	if d.Sudo.Enable {
		vars["REMOTE_SUDO_COMMAND"] = d.Sudo.Command
	}
	return vars
}

func joinWords(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = mustQuote(w)
	}
	return strings.Join(q, " ")
}

// quote quotes s as one word for go-task's shell (mvdan/sh, bash dialect).
func quote(s string) (string, error) {
	return syntax.Quote(s, syntax.LangBash)
}

// mustQuote quotes a value the inventory validation already restricted to
// printable text, which always quotes.
func mustQuote(s string) string {
	q, err := quote(s)
	if err != nil {
		panic(fmt.Sprintf("taskgen: cannot quote validated value %q: %v", s, err))
	}
	return q
}

// Literal protects s from go-task's template engine, which expands "{{"
// in commands, variables and environment values before the shell sees them.
func Literal(s string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	return strings.ReplaceAll(s, "{{", `{{"{{"}}`)
}
