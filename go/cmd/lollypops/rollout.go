package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/report"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/taskrun"
)

// rollout deploys the selected hosts in batches: each batch in parallel,
// the next one only when the failures so far stay within the threshold.
// The hosts of the batches that never started are left untouched.
type rollout struct {
	Batch       string // N or P%
	MaxFailures string // N or P%
	fs          *pflag.FlagSet
}

func (r *rollout) AddFlags(fs *pflag.FlagSet) {
	r.fs = fs
	fs.StringVar(&r.Batch, "batch", "", "Deploy the selected hosts in batches of this many hosts (N) or this share of them (P%), each batch in parallel, one batch after the other.")
	fs.StringVar(&r.MaxFailures, "max-failures", "0", "With --batch: stop the rollout, starting no further batch, once more hosts than this (N, or P% of the selected hosts) have failed.")
}

func (r *rollout) enabled() bool { return r.Batch != "" }

// count reads N or P% of total (at least 1 for a batch).
func count(flag, v string, total int, min int) (int, error) {
	bad := &usageError{msg: fmt.Sprintf("--%s %q: not a number of hosts (N) or a percentage (P%%)", flag, v),
		hint: fmt.Sprintf("--%s 5 or --%s 20%%", flag, flag)}
	if p, ok := strings.CutSuffix(v, "%"); ok {
		n, err := strconv.ParseFloat(p, 64)
		if err != nil || n < 0 || n > 100 {
			return 0, bad
		}
		c := int(float64(total) * n / 100)
		return max(c, min), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		return 0, bad
	}
	return n, nil
}

// batches groups the calls by host, the hosts in natural order, into
// batches of the --batch size. "all" stands for every host.
func (r *rollout) batches(calls []string, sel *plan.Graph) ([][]string, []string, error) {
	byHost := map[string][]string{}
	var hosts []string
	add := func(host, call string) {
		if _, ok := byHost[host]; !ok {
			hosts = append(hosts, host)
		}
		byHost[host] = append(byHost[host], call)
	}
	for _, c := range calls {
		if c == plan.AllTask {
			for _, h := range sel.Lookup(plan.AllTask).Deps {
				add(h, h)
			}
			continue
		}
		host, _, _ := strings.Cut(c, ":")
		add(host, c)
	}
	plan.SortNatural(hosts)
	size, err := count("batch", r.Batch, len(hosts), 1)
	if err != nil {
		return nil, nil, err
	}
	var out [][]string
	for i := 0; i < len(hosts); i += size {
		var b []string
		for _, h := range hosts[i:min(i+size, len(hosts))] {
			b = append(b, byHost[h]...)
		}
		out = append(out, b)
	}
	return out, hosts, nil
}

// stopped says why a rollout started no further batch.
type stopped struct {
	failed, limit, batch, batches int
	notStarted                    []string
}

func (s *stopped) Error() string {
	return fmt.Sprintf("rollout stopped after batch %d of %d: %d hosts failed, more than --max-failures %d; not started: %s",
		s.batch, s.batches, s.failed, s.limit, strings.Join(s.notStarted, ", "))
}

// check validates the flags against the run's hosts before anything runs.
func (r *rollout) check(calls []string, sel *plan.Graph) error {
	if !r.enabled() {
		if r.fs != nil && r.fs.Changed("max-failures") {
			return &usageError{msg: "--max-failures needs --batch", hint: "lollypops --batch 10% --max-failures 2 all"}
		}
		return nil
	}
	_, hosts, err := r.batches(calls, sel)
	if err != nil {
		return err
	}
	_, err = count("max-failures", r.MaxFailures, len(hosts), 0)
	return err
}

// run runs the batches one after the other.
func (r *rollout) run(ctx context.Context, req *taskrun.Request, sel *plan.Graph, run *rundir.Dir, planned map[string][]string, interrupted func() bool) (error, *stopped) {
	batches, hosts, err := r.batches(req.Calls, sel)
	if err != nil {
		return err, nil
	}
	limit, err := count("max-failures", r.MaxFailures, len(hosts), 0)
	if err != nil {
		return err, nil
	}
	var firstErr error
	done := map[string]bool{}
	for i, b := range batches {
		one := *req
		one.Calls = b
		flags := *req.Flags
		flags.Parallel = true
		one.Flags = &flags
		if err := taskrun.Run(ctx, &one); err != nil && firstErr == nil {
			var tf *taskrun.TaskFailed
			if !errors.As(err, &tf) {
				return err, nil
			}
			firstErr = err
		}
		for _, c := range b {
			h, _, _ := strings.Cut(c, ":")
			done[h] = true
		}
		if i == len(batches)-1 || interrupted() {
			break
		}
		records, err := report.ReadAll(run.Results())
		if err != nil {
			return err, nil
		}
		var names []string
		for h := range done {
			names = append(names, h)
		}
		failed := 0
		for _, s := range report.Build(names, planned, records) {
			if s.Status != report.HostOK {
				failed++
			}
		}
		if failed > limit {
			st := &stopped{failed: failed, limit: limit, batch: i + 1, batches: len(batches)}
			for _, h := range hosts {
				if !done[h] {
					st.notStarted = append(st.notStarted, h)
				}
			}
			// Later steps of the run (the summary) know the hosts were
			// never started, not interrupted.
			os.WriteFile(filepath.Join(run.Path, "rollout-stopped"), []byte(st.Error()), 0o600)
			return firstErr, st
		}
	}
	return firstErr, nil
}
