package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// children lists the pids whose parent is pid.
func children(t *testing.T, pid int) []int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			c, _ := strconv.Atoi(e.Name())
			out = append(out, c)
		}
	}
	return out
}

func TestTreeRSSCountsDescendants(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// A shell whose child is a shell whose child sleeps: three processes.
	cmd := exec.Command("sh", "-c", "sh -c 'sleep 600; :' & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// Wait until the grandchild exists (not a timing assertion: the test
	// only proceeds once the tree is complete).
	var mid []int
	for len(mid) == 0 || len(children(t, mid[0])) == 0 {
		mid = children(t, cmd.Process.Pid)
		time.Sleep(5 * time.Millisecond)
	}
	defer func() {
		for _, c := range children(t, mid[0]) {
			if p, err := os.FindProcess(c); err == nil {
				p.Kill()
			}
		}
	}()
	whole, part := treeRSS(cmd.Process.Pid), treeRSS(mid[0])
	if part <= 0 || whole <= part {
		t.Errorf("tree RSS %d KiB, subtree %d KiB: want 0 < subtree < tree", whole, part)
	}
	if got := treeRSS(1 << 30); got != 0 {
		t.Errorf("tree RSS of no process = %d, want 0", got)
	}
}

func TestFirstStepStart(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "report.json")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := firstStepStart(write(`{"version": 1, "hosts": [
	  {"name": "host2", "steps": [{"name": "check-vars", "start": "2026-12-02T03:21:46.5Z"}, {"name": "rebuild"}]},
	  {"name": "host1", "steps": [{"name": "check-vars", "start": "2026-12-02T03:21:45.25Z"}]}
	], "future": true}`))
	if want := time.Date(2026, 12, 2, 3, 21, 45, 250_000_000, time.UTC); err != nil || !got.Equal(want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	if _, err := firstStepStart(write(`{"version": 1, "error": "no host", "hosts": []}`)); !errors.Is(err, errNoSteps) || !strings.Contains(err.Error(), "no host") {
		t.Errorf("a report without steps: %v", err)
	}
	if _, err := firstStepStart(write(`{"version": 2, "hosts": []}`)); err == nil {
		t.Error("version 2 was read")
	}
}

func TestTreeSampleCountsRunnable(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// A shell looping on a builtin never sleeps: it is always running or
	// waiting for a CPU.
	busy := exec.Command("sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { busy.Process.Kill(); busy.Wait() }()
	if _, n, _ := treeSample(busy.Process.Pid); n != 1 {
		t.Errorf("busy loop: %d runnable, want 1", n)
	}
}
