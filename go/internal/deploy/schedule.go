package deploy

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/report"
	"github.com/lollypops/lollypops/go/internal/rundir"
)

// makeJobs turns the calls into executor runs, in the order they may
// start, and returns how many batches there are. In parallel, each host is
// one job with all its calls, hosts in natural order; one after another,
// each run of consecutive calls of one host is a job, in the command
// line's order.
func makeJobs(calls, names []string, sched Schedule) ([]*job, int, error) {
	var jobs []*job
	if !sched.Parallel && sched.Batch == "" {
		for _, c := range calls {
			h, _, _ := strings.Cut(c, ":")
			if c == plan.AllTask {
				return nil, 0, fmt.Errorf("internal error: %q runs its hosts in parallel", c)
			}
			if n := len(jobs); n > 0 && jobs[n-1].host == h {
				jobs[n-1].calls = append(jobs[n-1].calls, c)
				continue
			}
			jobs = append(jobs, &job{host: h, calls: []string{c}})
		}
		return jobs, 1, nil
	}
	sorted := append([]string(nil), names...)
	plan.SortNatural(sorted)
	size := len(sorted)
	if sched.Batch != "" {
		var err error
		if size, err = count("batch", sched.Batch, len(sorted), 1); err != nil {
			return nil, 0, err
		}
	}
	for i, h := range sorted {
		jobs = append(jobs, &job{host: h, calls: callsOf(calls, h), batch: i / max(size, 1)})
	}
	batches := 1
	if n := len(jobs); n > 0 {
		batches = jobs[n-1].batch + 1
	}
	return jobs, batches, nil
}

// count reads N or P% of total (at least min).
func count(flag, v string, total int, min int) (int, error) {
	bad := fault.Usagef(fmt.Sprintf("--%s 5 or --%s 20%%", flag, flag), "--%s %q: not a number of hosts (N) or a percentage (P%%)", flag, v)
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

// CheckSchedule validates --batch and --max-failures against the number
// of hosts before anything runs.
func CheckSchedule(s Schedule, hosts int) error {
	if s.Batch == "" {
		return nil
	}
	if _, err := count("batch", s.Batch, hosts, 1); err != nil {
		return err
	}
	_, err := count("max-failures", s.MaxFailures, hosts, 0)
	return err
}

// Stopped says why a rollout started no further batch.
type Stopped struct {
	failed, limit, batch, batches int
	notStarted                    []string
}

func (s *Stopped) Error() string {
	return fmt.Sprintf("rollout stopped after batch %d of %d: %d hosts failed, more than --max-failures %d; not started: %s",
		s.batch, s.batches, s.failed, s.limit, strings.Join(s.notStarted, ", "))
}

// scheduler decides which jobs start.
type scheduler struct {
	jobs    []*job
	batches int
	limit   int // --max-failures
	sched   Schedule
	ready   map[string]bool // hosts prepared
	gone    map[string]bool // hosts that will never be: failed, without the module
	running int
	failed  bool
	open    int // the batch that may start
}

// halted reports whether a failure keeps new jobs from starting: with
// --failfast, or one after another.
// allDone reports whether every job of host is done.
func (s *scheduler) allDone(host string) bool {
	for _, j := range s.jobs {
		if j.host == host && j.state != done {
			return false
		}
	}
	return true
}

func (s *scheduler) halted() bool {
	return s.failed && (s.sched.Failfast || !s.sched.Parallel && s.sched.Batch == "")
}

// startable returns the jobs to start now, counted as running.
func (s *scheduler) startable(stop bool) []*job {
	if stop || s.halted() {
		return nil
	}
	parallel := s.sched.Parallel || s.sched.Batch != ""
	var out []*job
	for _, j := range s.jobs {
		if j.state != waiting {
			continue
		}
		if s.gone[j.host] {
			j.state = skipped
			continue
		}
		if j.batch > s.open {
			break
		}
		if !s.ready[j.host] {
			if !parallel {
				break
			}
			continue
		}
		if !parallel && s.running > 0 || s.sched.Limit > 0 && s.running >= s.sched.Limit {
			break
		}
		s.running++
		j.state = running
		out = append(out, j)
	}
	return out
}

// finished reports whether no job runs and none will start.
func (s *scheduler) finished(stop bool) bool {
	halted := stop || s.halted()
	for _, j := range s.jobs {
		switch {
		case j.state == running:
			return false
		case j.state == waiting && !halted && !s.gone[j.host]:
			return false
		}
	}
	return true
}

// checkBatch opens the next batch once the open one is done, unless more
// hosts failed than --max-failures allows: then it says why the rollout
// stopped.
func (s *scheduler) checkBatch(run *rundir.Dir, planned map[string][]string) (*Stopped, error) {
	if s.sched.Batch == "" || s.open >= s.batches-1 {
		return nil, nil
	}
	var seen []string
	for _, j := range s.jobs {
		if j.batch > s.open {
			break
		}
		if j.state == running || j.state == waiting && !s.gone[j.host] {
			return nil, nil
		}
		seen = append(seen, j.host)
	}
	records, err := report.ReadAll(run.Results())
	if err != nil {
		return nil, err
	}
	failed := 0
	for _, h := range report.Build(seen, planned, records) {
		if h.Status != report.HostOK {
			failed++
		}
	}
	if failed > s.limit {
		st := &Stopped{failed: failed, limit: s.limit, batch: s.open + 1, batches: s.batches}
		for _, j := range s.jobs {
			if j.batch > s.open {
				st.notStarted = append(st.notStarted, j.host)
			}
		}
		return st, nil
	}
	s.open++
	return nil, nil
}

func writeFile(path string, data []byte) error { return os.WriteFile(path, data, 0o600) }
