package deploy

import (
	"slices"
	"testing"
)

func jobsOf(js []*job) [][]string {
	var out [][]string
	for _, j := range js {
		out = append(out, append([]string{j.host}, j.calls...))
	}
	return out
}

// Hosts start in natural order, each with all its calls; without -p, in
// the command line's order, a job per run of one host's calls.
func TestJobs(t *testing.T) {
	hosts := []string{"birne", "ahorn", "host10", "host9"}
	for _, c := range []struct {
		sched   Schedule
		calls   []string
		want    [][]string
		batches int
	}{
		{Schedule{Parallel: true}, []string{"all"},
			[][]string{{"ahorn", "ahorn"}, {"birne", "birne"}, {"host9", "host9"}, {"host10", "host10"}}, 1},
		{Schedule{Batch: "1"}, []string{"all"},
			[][]string{{"ahorn", "ahorn"}, {"birne", "birne"}, {"host9", "host9"}, {"host10", "host10"}}, 4},
		{Schedule{Batch: "50%"}, []string{"all"}, nil, 2},
		{Schedule{Batch: "10%"}, []string{"all"}, nil, 4}, // at least one host a batch
		{Schedule{Parallel: true}, []string{"birne:rebuild", "ahorn:deploy-secrets", "birne:deploy-secrets"},
			[][]string{{"ahorn", "ahorn:deploy-secrets"}, {"birne", "birne:rebuild", "birne:deploy-secrets"}}, 1},
		{Schedule{}, []string{"birne:rebuild", "birne:deploy-secrets", "ahorn", "birne"},
			[][]string{{"birne", "birne:rebuild", "birne:deploy-secrets"}, {"ahorn", "ahorn"}, {"birne", "birne"}}, 1},
	} {
		names := hosts
		if c.calls[0] != "all" {
			names = []string{"ahorn", "birne"}
		}
		js, batches, err := makeJobs(c.calls, names, c.sched)
		if err != nil || batches != c.batches || c.want != nil && !slices.EqualFunc(jobsOf(js), c.want, slices.Equal) {
			t.Errorf("%+v %q: %q, %d batches, %v; want %q, %d", c.sched, c.calls, jobsOf(js), batches, err, c.want, c.batches)
		}
	}
	for _, bad := range []string{"0", "-1", "x", "101%", "%"} {
		if _, _, err := makeJobs([]string{"all"}, hosts, Schedule{Batch: bad}); err == nil {
			t.Errorf("--batch %q accepted", bad)
		}
	}
	if n, err := count("max-failures", "50%", 5, 0); err != nil || n != 2 {
		t.Errorf("50%% of 5: %d %v", n, err)
	}
}

// The scheduler starts what may start: not beyond -C, not past an unready
// host one after another, nothing after a failure with --failfast.
func TestScheduler(t *testing.T) {
	mk := func(sched Schedule, calls []string) *scheduler {
		js, batches, err := makeJobs(calls, []string{"a", "b", "c"}, sched)
		if err != nil {
			t.Fatal(err)
		}
		return &scheduler{jobs: js, batches: batches, sched: sched, ready: map[string]bool{}, gone: map[string]bool{}}
	}
	names := func(js []*job) (out []string) {
		for _, j := range js {
			out = append(out, j.host)
		}
		return out
	}
	s := mk(Schedule{Parallel: true, Limit: 2}, []string{"all"})
	s.ready["a"], s.ready["b"], s.ready["c"] = true, true, true
	if got := names(s.startable(false)); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("-C 2: started %q", got)
	}
	s.jobs[0].state, s.running = done, 1
	if got := names(s.startable(false)); !slices.Equal(got, []string{"c"}) {
		t.Errorf("-C 2, one done: started %q", got)
	}

	s = mk(Schedule{}, []string{"b", "a"})
	s.ready["a"] = true
	if got := s.startable(false); len(got) != 0 {
		t.Errorf("one after another, b not ready: started %q", names(got))
	}
	s.gone["b"] = true
	if got := names(s.startable(false)); !slices.Equal(got, []string{"a"}) {
		t.Errorf("b failed its evaluation: started %q", got)
	}
	s.jobs[1].state, s.running, s.failed = done, 0, true
	if !s.finished(false) {
		t.Error("one after another: not finished after the last job")
	}

	s = mk(Schedule{Parallel: true, Failfast: true}, []string{"all"})
	s.ready["a"] = true
	s.startable(false)
	s.jobs[0].state, s.running, s.failed = done, 0, true
	s.ready["b"], s.ready["c"] = true, true
	if got := s.startable(false); len(got) != 0 || !s.finished(false) {
		t.Errorf("--failfast: started %q after a failure", names(got))
	}
	if got := mk(Schedule{Parallel: true}, []string{"all"}); got.startable(true) != nil {
		t.Error("started after an interrupt")
	}
}
