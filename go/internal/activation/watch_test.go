package activation

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// watch.sh waits on the host until the status changes (one command, not a
// poll from the deployer), and hands over the status, the guard's record,
// whether the guard runs, and the log from an offset on.
func TestWatch(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		dir, bin := t.TempDir(), t.TempDir()
		alive := filepath.Join(bin, "alive")
		os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\n[ \"$3\" = lollypops-activation-x ] && [ -e "+alive+" ]\n"), 0o755)
		os.WriteFile(alive, nil, 0o644)
		os.WriteFile(filepath.Join(dir, "status"), []byte("activating\n"), 0o600)
		// A deadline an hour from now, on the host's clock (centiseconds
		// since boot).
		var up float64
		if b, err := os.ReadFile("/proc/uptime"); err == nil {
			fmt.Sscan(string(b), &up)
		}
		deadline := int64(up*100) + 360000
		os.WriteFile(filepath.Join(dir, "result"), []byte(fmt.Sprintf("deadline %d\nstc_rc 4\n", deadline)), 0o600)
		os.WriteFile(filepath.Join(dir, "log"), []byte("first\nsecond\n"), 0o600)
		watch := func(last string, off int64, max time.Duration) (Watch, time.Duration) {
			t.Helper()
			argv := WatchArgv("x", last, off, max)
			argv[4] = dir
			cmd := exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			start := time.Now()
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			w, err := ParseWatch(append([]byte("motd from a login file\n"), out...))
			if err != nil {
				t.Fatalf("%v: %q", err, out)
			}
			return w, time.Since(start)
		}
		w, _ := watch("starting", 6, 10*time.Second)
		if w.Status.State != Activating || !w.Alive || string(w.Log) != "second\n" || w.Result["stc_rc"] != "4" {
			t.Errorf("%+v", w)
		}
		// Unchanged: it waits until the status changes.
		go func() {
			time.Sleep(600 * time.Millisecond)
			os.WriteFile(filepath.Join(dir, "status.tmp"), []byte("activated\n"), 0o600)
			os.Rename(filepath.Join(dir, "status.tmp"), filepath.Join(dir, "status"))
		}()
		// The bounds tell "ended at the change" from "ended at the
		// deadline" with room for a loaded machine.
		w, took := watch("activating", 13, time.Minute)
		if w.Status.State != Activated || took < 500*time.Millisecond || took > 30*time.Second {
			t.Errorf("%+v after %s", w, took)
		}
		if r, ok := w.Remaining(); !ok || r <= 0 {
			t.Errorf("remaining %s %v", r, ok)
		}
		// At most max seconds.
		_, took = watch("activated", 13, time.Second)
		if took < time.Second || took > 30*time.Second {
			t.Errorf("took %s", took)
		}
		// A guard that is gone ends the wait at the first tick.
		os.Remove(alive)
		w, took = watch("activated", 13, time.Minute)
		if w.Alive || took > 30*time.Second {
			t.Errorf("%+v after %s", w, took)
		}
		if strings.Contains(string(w.Log), "first") {
			t.Errorf("log from the offset: %q", w.Log)
		}
	})
}

// A watch waits through the states it is given: the deployer waiting for
// the activation's end is not woken when it begins.
func TestWatchThrough(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		dir, bin := t.TempDir(), t.TempDir()
		os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
		set := func(st string) {
			os.WriteFile(filepath.Join(dir, "status.tmp"), []byte(st+"\n"), 0o600)
			os.Rename(filepath.Join(dir, "status.tmp"), filepath.Join(dir, "status"))
		}
		set("starting")
		go func() {
			time.Sleep(300 * time.Millisecond)
			set("activating")
			time.Sleep(600 * time.Millisecond)
			set("activated 120")
		}()
		argv := WatchArgv("x", "starting", 0, time.Minute, Starting, Activating)
		argv[4] = dir
		cmd := exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		w, err := ParseWatch(out)
		if err != nil || w.Status.State != Activated {
			t.Errorf("%+v %v: waited through starting and activating, not until activated", w, err)
		}
		// Not through: the status it was last seen in still ends the wait
		// once it changes, and an unreadable one is a change.
		os.Remove(filepath.Join(dir, "status"))
		argv = WatchArgv("x", "activated 120", 0, time.Minute, Starting, Activating)
		argv[4] = dir
		cmd = exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		if out, err = cmd.Output(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if w, err = ParseWatch(out); err == nil {
			t.Errorf("%+v: a missing status parsed", w)
		}
	})
}

// Nothing polls: the guard's status changes wake the watch, the
// deployer's word wakes the guard, and the lock's holder says when it
// holds the lock. With a ticker that would tick once an hour, a guarded
// switch still goes from start to confirmed, watched all the way, and
// leaves no FIFO behind.
func TestWakeups(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		w.env = append(w.env, "LOLLYPOPS_TICK=3600")
		old, new := w.system("old", nil), w.system("new", nil)
		w.boot(old)
		os.WriteFile(w.alive, nil, 0o644)
		os.WriteFile(filepath.Join(w.dir, "status"), []byte("starting\n"), 0o600)
		os.WriteFile(filepath.Join(w.dir, "log"), nil, 0o600)
		// A watch is killed (with its ticker) after a minute: had it
		// missed its wakeup, it would wait for the hour's tick.
		var guard *exec.Cmd
		watch := func(last string, through ...State) Watch {
			t.Helper()
			argv := WatchArgv("x", last, 0, time.Hour, through...)
			argv[4] = w.dir
			cmd := exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
			cmd.Env = w.env
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// What was stuck, seen before the kill: the guard (its status,
			// its record, its processes) or the watch (what it printed).
			stuckc := make(chan string, 1)
			timer := time.AfterFunc(time.Minute, func() {
				all, _ := exec.Command("ps", "-eo", "pid,ppid,pgid,stat,wchan:24,comm").Output()
				var ps string
				for _, l := range strings.Split(string(all), "\n") {
					if f := strings.Fields(l); len(f) > 2 && (f[2] == fmt.Sprint(guard.Process.Pid) || f[2] == fmt.Sprint(cmd.Process.Pid)) {
						// With where its descriptors lead: which one holds
						// the watch's output open.
						fds, _ := filepath.Glob("/proc/" + f[0] + "/fd/*")
						l += "   "
						for _, fd := range fds {
							to, _ := os.Readlink(fd)
							l += " " + filepath.Base(fd) + "=" + to
						}
						ps += l + "\n"
					}
				}
				stuckc <- fmt.Sprintf("status %+v\nresult %v\nprocesses (group %d: the guard, %d: the watch):\n%s",
					w.status(), w.result(), guard.Process.Pid, cmd.Process.Pid, ps)
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			})
			err := cmd.Wait()
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // a ticker's sleep
			if !timer.Stop() {
				t.Fatalf("the watch from %q did not end within a minute; it printed %q\n%s\nlog:\n%s", last, out.Bytes(), <-stuckc, w.log())
			}
			if err != nil {
				t.Fatalf("%v: %s", err, out.Bytes())
			}
			st, err := ParseWatch(out.Bytes())
			if err != nil {
				t.Fatalf("%v: %q", err, out.Bytes())
			}
			return st
		}
		var wait func()
		wait, guard = w.start(new, "switch", 600, "")
		if st := watch("starting", Starting, Activating); st.Status.State != Activated || !st.Alive {
			t.Fatalf("%+v", st)
		}
		if w.result()["deadline"] == "" {
			t.Errorf("no deadline noted: %v", w.result())
		}
		w.confirm()
		if st := watch("activated", Activated, Confirming); st.Status.State != Confirmed {
			t.Fatalf("%+v; log:\n%s", st, w.log())
		}
		done := make(chan struct{})
		go func() { wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatal("the guard did not end")
		}
		w.want(Confirmed, "", "new test 0022\nnix-env --set new\nnew boot 0022\n", new, new)
		if left, _ := filepath.Glob(filepath.Join(w.dir, "wake.*")); len(left) > 0 {
			t.Errorf("FIFOs left: %v", left)
		}
	})
}

// A watch leaves nothing behind that holds the session open: once it
// has ended, its output ends (sshd ends the session only then), and no
// shell of its stays (mksh puts a TERM off until the ticker's sleep
// ends); a sleep on the FIFO may, for up to a tick (here an hour). Run
// many times, with a status that ends the watch at once: a ticker that
// had not yet started when the watch ended is among them.
func TestWatchLeavesNothingOpen(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		dir, bin := t.TempDir(), t.TempDir()
		os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
		os.WriteFile(filepath.Join(dir, "status"), []byte("activated\n"), 0o600)
		for i := range 20 {
			argv := WatchArgv("x", "starting", 0, time.Hour)
			argv[4] = dir
			cmd := exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "LOLLYPOPS_TICK=3600")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var out bytes.Buffer
			cmd.Stdout = &out
			cmd.WaitDelay = 20 * time.Second
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			pgid := cmd.Process.Pid
			left := ""
			for range 100 {
				left = ""
				all, _ := exec.Command("ps", "-eo", "pgid=,stat=,comm=").Output()
				for _, l := range strings.Split(string(all), "\n") {
					if f := strings.Fields(l); len(f) == 3 && f[0] == fmt.Sprint(pgid) && f[2] != "sleep" && !strings.HasPrefix(f[1], "Z") {
						left += l + "\n"
					}
				}
				if left == "" {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			syscall.Kill(-pgid, syscall.SIGKILL) // the sleep
			if errors.Is(err, exec.ErrWaitDelay) {
				t.Fatalf("run %d: the watch's output stayed open after it ended", i)
			}
			if err != nil {
				t.Fatalf("run %d: %v: %s", i, err, out.Bytes())
			}
			if left != "" {
				t.Fatalf("run %d: left running after the watch ended:\n%s", i, left)
			}
			if w, err := ParseWatch(out.Bytes()); err != nil || w.Status.State != Activated {
				t.Fatalf("run %d: %+v %v", i, w, err)
			}
		}
		if left, _ := filepath.Glob(filepath.Join(dir, "wake.*")); len(left) > 0 {
			t.Errorf("left: %v", left)
		}
	})
}

// Where no FIFO can be made, a watch looks every 100 ms instead.
func TestWatchWithoutFIFO(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		dir, bin := t.TempDir(), t.TempDir()
		os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
		os.WriteFile(filepath.Join(bin, "mkfifo"), []byte("#!/bin/sh\nexit 1\n"), 0o755)
		os.WriteFile(filepath.Join(dir, "status"), []byte("activating\n"), 0o600)
		go func() {
			time.Sleep(300 * time.Millisecond)
			os.WriteFile(filepath.Join(dir, "status.tmp"), []byte("activated\n"), 0o600)
			os.Rename(filepath.Join(dir, "status.tmp"), filepath.Join(dir, "status"))
		}()
		argv := WatchArgv("x", "activating", 0, time.Minute)
		argv[4] = dir
		cmd := exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "LOLLYPOPS_TICK=3600")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if w, err := ParseWatch(out); err != nil || w.Status.State != Activated {
			t.Errorf("%+v %v", w, err)
		}
	})
}

func TestParseReport(t *testing.T) {
	log := `lollypops: switch-to-configuration test of /nix/store/x
stopping the following units: old.service
activating the configuration...
reloading the following units: dbus.service
restarting the following units: nginx.service, sshd.service
starting the following units: new.service
the following new units were started: new.service, run-x.scope
warning: the following units failed: flaky.service, new.service
lollypops: switch-to-configuration test exited 4
lollypops: switch-to-configuration test of /nix/store/old
restarting the following units: rollback.service
lollypops: switch-to-configuration test exited 0
`
	r := ParseReport(map[string]string{"stc_rc": "4", "stc_started": "100.25", "stc_ended": "112.75", "failed_before": "flaky.service "}, log)
	if r.ExitCode != 4 || r.Duration != 12500*time.Millisecond {
		t.Errorf("%+v", r)
	}
	u := r.Units
	if strings.Join(u.Stopped, ",") != "old.service" || strings.Join(u.Reloaded, ",") != "dbus.service" ||
		strings.Join(u.Restarted, ",") != "nginx.service,sshd.service" || strings.Join(u.Started, ",") != "new.service" ||
		strings.Join(u.New, ",") != "new.service,run-x.scope" || strings.Join(u.Failed, ",") != "flaky.service,new.service" {
		t.Errorf("%+v", u)
	}
	if got := r.NewlyFailed(); len(got) != 1 || got[0] != "new.service" {
		t.Errorf("newly failed %v", got)
	}
}
