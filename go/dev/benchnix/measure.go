package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// run is one measured command.
type run struct {
	start time.Time
	wall  time.Duration
	// peak is the largest sum of the RSS of the command's whole process
	// tree, sampled from /proc: the runner evaluates in several nix
	// processes at once, and the max RSS that wait4 reports is only the
	// largest single process. Shared pages (the nix binary's libraries)
	// count once per process, so it overstates a little.
	peak int64 // KiB
	// cpu is user + system time of the command and every child it waited for.
	cpu  time.Duration
	load float64 // the 1-minute load average when the run started
	// runnable is the mean number of the tree's processes that were
	// running or waiting for a CPU (state R) over the samples: how many
	// cores the command would keep busy on an idle machine, which
	// (user+sys)/wall on a loaded one understates.
	runnable float64
	err      error
	overCap  bool // killed: the tree's RSS passed the cap
	stopped  bool // interrupted once its first step started (stopAtStep)
	timedOut bool
}

// sampleEvery is how often /proc is read during a run. An evaluation's
// memory grows over seconds; a peak shorter than this can be missed.
const sampleEvery = 20 * time.Millisecond

// measure runs name args in dir with env added, samples its process tree's
// memory, and kills the tree (its process group) when the sum passes capKiB
// or the timeout passes. With stopAtStep, the command gets SIGINT as soon as
// a lollypops-step process (a deploy's first step) appears in its tree.
func measure(name string, args, env []string, dir string, capKiB int64, timeout time.Duration, stopAtStep bool) run {
	r := run{load: loadavg()}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	cmd.Stdout = io.Discard
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.start = time.Now()
	// Started under the lock that stopOnSignal takes, so that a command
	// is never started after the benchmark was told to stop.
	current.Lock()
	if current.stopping {
		current.Unlock()
		select {} // stopOnSignal exits the program
	}
	err := cmd.Start()
	if err == nil {
		current.pgid = cmd.Process.Pid
	}
	current.Unlock()
	if err != nil {
		r.err = err
		return r
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	pid := cmd.Process.Pid
	defer func() {
		current.Lock()
		current.pgid = 0
		current.Unlock()
	}()
	kill := func() { syscall.Kill(-pid, syscall.SIGKILL) }
	var samples, running int
loop:
	for {
		select {
		case err = <-done:
			break loop
		case <-tick.C:
			rss, rn, step := treeSample(pid)
			samples, running = samples+1, running+rn
			if step && stopAtStep && !r.stopped {
				// The runner writes its report when interrupted.
				r.stopped = true
				syscall.Kill(pid, syscall.SIGINT)
			}
			if rss > r.peak {
				r.peak = rss
				if capKiB > 0 && rss > capKiB && !r.overCap {
					r.overCap = true
					kill()
				}
			}
		case <-deadline.C:
			r.timedOut = true
			kill()
		}
	}
	r.wall = time.Since(r.start)
	if samples > 0 {
		r.runnable = float64(running) / float64(samples)
	}
	// Whatever the runner left behind in its group goes too.
	syscall.Kill(-pid, syscall.SIGKILL)
	if ps := cmd.ProcessState; ps != nil {
		r.cpu = ps.UserTime() + ps.SystemTime()
	}
	switch {
	case r.overCap:
		r.err = fmt.Errorf("over %d GiB", capKiB>>20)
	case r.timedOut:
		r.err = fmt.Errorf("over %s", timeout)
	case err != nil:
		tail := strings.TrimSpace(stderr.String())
		if len(tail) > 1500 {
			tail = tail[len(tail)-1500:]
		}
		r.err = fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, tail)
	}
	return r
}

// current is the process group being measured, for stopMeasuring.
var current struct {
	sync.Mutex
	pgid     int
	stopping bool
}

// stopMeasuring kills the process group being measured, if any, and keeps
// any other from starting.
func stopMeasuring() {
	current.Lock()
	defer current.Unlock()
	current.stopping = true
	if current.pgid > 0 {
		syscall.Kill(-current.pgid, syscall.SIGKILL)
	}
}

// treeRSS is the sum of the RSS of root and its descendants, in KiB.
func treeRSS(root int) int64 {
	rss, _, _ := treeSample(root)
	return rss
}

// treeSample reads the sum of the RSS of root and its descendants, in KiB,
// how many of them are running or runnable, and whether one of them is a
// lollypops-step (a deploy step).
func treeSample(root int) (int64, int, bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, false
	}
	comm := map[int]string{}
	parent := map[int]int{}
	rss := map[int]int64{}
	state := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name (field 2) is in parentheses and may hold
		// spaces: the fields that follow start after the last ')'.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 22 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])   // field 4
		pages, _ := strconv.Atoi(f[21]) // field 24
		parent[pid] = ppid
		state[pid] = f[0] // field 3
		if j := strings.IndexByte(s, '('); j >= 0 && j < i {
			comm[pid] = s[j+1 : i]
		}
		rss[pid] = int64(pages) * int64(os.Getpagesize()) / 1024
	}
	var sum int64
	running := 0
	step := false
	for pid := range rss {
		for p, hops := pid, 0; p > 0 && hops < 64; p, hops = parent[p], hops+1 {
			if p == root {
				sum += rss[pid]
				step = step || comm[pid] == "lollypops-step"
				if state[pid] == "R" {
					running++
				}
				break
			}
		}
	}
	return sum, running, step
}

func loadavg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	x, _ := strconv.ParseFloat(f[0], 64)
	return x
}

var errNoSteps = errors.New("the report has no step that started")
