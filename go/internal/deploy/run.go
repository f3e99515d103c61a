package deploy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/lock"
	"github.com/lollypops/lollypops/go/internal/output"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/report"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/ssh"
	"github.com/lollypops/lollypops/go/internal/steps"
	"github.com/lollypops/lollypops/go/internal/taskgen"
	"github.com/lollypops/lollypops/go/internal/taskrun"
	"github.com/lollypops/lollypops/go/internal/termtext"
)

// EvalStep is the step a host that could not be evaluated failed at, in
// the summary and the run report.
const EvalStep = "evaluate"

// TaskfileOptions are the Taskfile's settings for a run: a real run
// records each step's outcome and starts no step once it was interrupted
// (MarkInterrupted).
func TaskfileOptions(step, action string, run *rundir.Dir, f *taskrun.Flags, real, wantReport bool) taskgen.Options {
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
	if wantReport {
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

// MarkInterrupted keeps the run's steps that have not started from
// starting (TaskfileOptions' guard).
func MarkInterrupted(run *rundir.Dir) {
	os.WriteFile(filepath.Join(run.Path, "interrupted"), nil, 0o600)
}

// HostsOf returns the hosts whose tasks calls name (nil: every host, for
// "all"). A name that is no host's task is an unknown task, suggested
// among every host's tasks.
func HostsOf(calls []string, src *Source) ([]string, error) {
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
			return nil, UnknownTask(&plan.UnknownTaskError{Name: c, Suggestions: plan.Suggest(c, candidates)})
		}
		if !contains(names, host) {
			names = append(names, host)
		}
	}
	return names, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// callsOf returns the calls that concern host: its umbrella task for all.
func callsOf(calls []string, host string) []string {
	var out []string
	for _, c := range calls {
		h, _, _ := strings.Cut(c, ":")
		switch {
		case c == plan.AllTask:
			out = append(out, host)
		case h == host:
			out = append(out, c)
		}
		if len(out) > 1 && out[len(out)-1] == out[len(out)-2] {
			out = out[:len(out)-1]
		}
	}
	return out
}

// writeHostInventory gives a host's steps their host's settings, so a step
// reads a few hundred bytes instead of the whole fleet's inventory.
func writeHostInventory(run *rundir.Dir, name string, h *config.Host) error {
	one := config.Inventory{Version: config.Version, Hosts: map[string]*config.Host{name: h}}
	data, err := json.Marshal(one)
	if err != nil {
		return err
	}
	return os.WriteFile(run.HostInventory(name), data, 0o600)
}

// closeConnections releases the run's deploy locks, then stops the shared
// ssh connections the steps opened, to the hosts (but those in closed,
// closed already) and their build hosts.
func closeConnections(run *rundir.Dir, hosts map[string]*config.Host, closed map[string]bool, keeper *lock.Keeper, out *output.Sink) {
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	keeper.Release(lctx)
	lcancel()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	closing := map[string]bool{}
	closeOnce := func(c *ssh.Client) {
		if c == nil || closing[c.Prefix] {
			return
		}
		closing[c.Prefix] = true
		wg.Go(func() {
			if err := c.Close(ctx); err != nil {
				out.Error(err)
			}
		})
	}
	for name, h := range hosts {
		if !closed[name] {
			closeOnce(&ssh.Client{Host: h, Prefix: run.SSH(name)})
		}
		// Hosts that share a build host share its connection.
		closeOnce(ssh.BuildHost(h, run.SSH))
	}
	wg.Wait()
}

// recordEvalFailure writes the record of a host that could not be
// evaluated (or prepared), for the summary and the run report.
func recordEvalFailure(run *rundir.Dir, host, why string) error {
	now := time.Now()
	r := report.Record{Host: host, Step: EvalStep, Status: report.Failed, Start: now, End: now, Error: "not evaluated: " + termtext.Text(why),
		Hint: "fix the host's configuration (nix eval .#nixosConfigurations." + host + ".config.system.build.toplevel shows the whole error); the other hosts ran"}
	return report.Write(run.Results(), r)
}

// writeDiffs prints the diffs the run's diff steps left, as one JSON
// document: {"version": 1, "hosts": {"<host>": <diff> | null}}, null for a
// host whose diff failed (the summary says why).
func writeDiffs(w interface{ Write([]byte) (int, error) }, run *rundir.Dir, hosts []string) error {
	doc := struct {
		Version int                        `json:"version"`
		Hosts   map[string]json.RawMessage `json:"hosts"`
	}{Version: 1, Hosts: map[string]json.RawMessage{}}
	for _, h := range hosts {
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
