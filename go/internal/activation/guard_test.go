package activation

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/shelltest"
)

// eachShell runs f under every sh a host may have, in parallel: the
// guard's tests wait for windows of seconds.
func eachShell(t *testing.T, f func(t *testing.T, sh []string)) { shelltest.EachParallel(t, f) }

// world is a fake host for the guard: systems whose
// switch-to-configuration logs its calls, can fail per action, and takes
// stc-ng's lock; a profile with generations; a nix-env that handles --set
// and --switch-generation; a nix-store that pins; a systemctl that lists
// failed units.
type world struct {
	t                           *testing.T
	sh                          []string
	root, dir, profile, current string
	lock, calls, failed, alive  string
	env                         []string
}

func newWorld(t *testing.T, sh []string) *world {
	w := &world{t: t, sh: sh, root: t.TempDir()}
	w.dir = filepath.Join(w.root, "state")
	w.profile = filepath.Join(w.root, "profiles", "system")
	w.current = filepath.Join(w.root, "current-system")
	w.lock = filepath.Join(w.root, "nixos", "switch-to-configuration.lock")
	w.calls = filepath.Join(w.root, "calls")
	w.failed = filepath.Join(w.root, "failed")
	bin := filepath.Join(w.root, "bin")
	for _, d := range []string{w.dir, bin, filepath.Dir(w.profile), filepath.Dir(w.lock)} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(w.failed, nil, 0o644)
	w.write(filepath.Join(bin, "nix-env"), `#!/bin/sh
# nix-env -p PROFILE --set PATH | --switch-generation N
p=$2
case $3 in
--set)
	n=$(ls "$(dirname "$p")" | sed -n 's/^system-\([0-9]*\)-link$/\1/p' | sort -n | tail -1)
	n=$((n + 1))
	ln -s "$4" "$p-$n-link" && ln -sfn "system-$n-link" "$p.tmp" && mv -T "$p.tmp" "$p" ;;
--switch-generation)
	[ -e "$p-$4-link" ] || exit 1
	ln -sfn "system-$4-link" "$p.tmp" && mv -T "$p.tmp" "$p" ;;
*) exit 2 ;;
esac
echo "nix-env $3 ${4##*/}" >>`+w.calls)
	w.write(filepath.Join(bin, "nix-store"), `#!/bin/sh
# nix-store --realise --add-root LINK --indirect -- PATH...: as Nix names
# the roots of several paths, LINK, LINK-2, ...
root=$3
shift 5
n=1
for p do
	r=$root
	[ $n = 1 ] || r=$root-$n
	ln -sfn "$p" "$r"
	n=$((n + 1))
done`)
	w.alive = filepath.Join(w.root, "alive")
	w.write(filepath.Join(bin, "systemctl"), `#!/bin/sh
# is-active --quiet UNIT: while the test says the guard runs.
[ "$1" != is-active ] || exec test -e `+w.alive+`
[ "$1 $2" = "list-units --state=failed" ] || exit 1
while read -r u; do echo "$u loaded failed failed $u"; done <`+w.failed)
	w.env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"),
		"LOLLYPOPS_CURRENT="+w.current, "LOLLYPOPS_STC_LOCK="+w.lock, "LOLLYPOPS_STC_LOCK_WAIT=2")
	return w
}

func (w *world) write(p, s string) {
	if err := os.WriteFile(p, []byte(s+"\n"), 0o755); err != nil {
		w.t.Fatal(err)
	}
}

// system makes a system whose switch-to-configuration exits with
// codes[action] (0 when absent), takes stc-ng's lock (exit 11 when it is
// held), records its umask, and says which units it restarts and which
// failed.
func (w *world) system(name string, codes map[string]int) string {
	p := filepath.Join(w.root, name)
	os.MkdirAll(filepath.Join(p, "bin"), 0o755)
	cases := ""
	for a, c := range codes {
		cases += fmt.Sprintf("%s) rc=%d ;;\n", a, c)
	}
	w.write(filepath.Join(p, "bin", "switch-to-configuration"), `#!/bin/sh
exec 8>>`+w.lock+`
flock -n 8 || { echo "Could not acquire lock" >&2; exit 11; }
echo "`+name+` $1 $(umask)${NIXOS_INSTALL_BOOTLOADER:+ install-bootloader}" >>`+w.calls+`
rc=0
case $1 in
`+cases+`esac
case $1 in
switch|test)
	[ "$rc" = 1 ] || [ "$rc" = 100 ] || [ "$rc" = 11 ] || ln -sfn `+p+` `+w.current+`
	[ "$rc" = 2 ] || echo "restarting the following units: a.service, b.service" >&2
	[ "$rc" != 4 ] || echo "warning: the following units failed: flaky.service" >&2 ;;
esac
exit $rc`)
	return p
}

// boot makes sys the running system and the profile's generation 1.
func (w *world) boot(sys string) {
	os.Symlink(sys, w.profile+"-1-link")
	os.Symlink("system-1-link", w.profile)
	os.Symlink(sys, w.current)
}

// start runs the guard as its unit would, and returns its wait function.
func (w *world) start(sys, action string, window int, spec string) (wait func(), cmd *exec.Cmd) {
	argv := append(append([]string{}, w.sh...), "-c", Script("guard.sh"), "lollypops-guard",
		"run", w.dir, sys, action, fmt.Sprint(window), w.profile, spec)
	cmd = exec.Command(argv[0], argv[1:]...)
	cmd.Env = w.env
	// A process group stands for the unit's cgroup: killing the unit
	// kills all of it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return func() { cmd.Wait() }, cmd
}

func (w *world) recover() {
	argv := append(append([]string{}, w.sh...), "-c", Script("guard.sh"), "lollypops-guard", "recover", w.dir)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = w.env
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("recover: %v %s", err, out)
	}
}

func (w *world) status() Status {
	data, _ := os.ReadFile(filepath.Join(w.dir, "status"))
	s, _ := ParseStatus(string(data))
	return s
}

func (w *world) result() map[string]string {
	data, _ := os.ReadFile(filepath.Join(w.dir, "result"))
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(l, " ")
		out[k] = v
	}
	return out
}

func (w *world) waitState(want State) {
	w.t.Helper()
	for range 500 {
		if w.status().State == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.t.Fatalf("state %q, want %q; log:\n%s", w.status().State, want, w.log())
}

func (w *world) log() string {
	data, _ := os.ReadFile(filepath.Join(w.dir, "log"))
	return string(data)
}

func (w *world) confirm() { w.signal("confirm") }

// signal gives the deployer's word as the deployer does: signal.sh, under
// the world's shell.
func (w *world) signal(word ...string) {
	w.t.Helper()
	argv := append(append(append([]string{}, w.sh...), "-c", Script("signal.sh"), "lollypops-signal", w.dir), word...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = w.env
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("signal %v: %v %s", word, err, out)
	}
}

// callLog is what ran, one call a line, with the systems' names.
func (w *world) callLog() string {
	data, _ := os.ReadFile(w.calls)
	return string(data)
}

func (w *world) link(p string) string {
	t, _ := filepath.EvalSymlinks(p)
	return t
}

// want checks the final status, the calls, and where the profile and the
// running system point.
func (w *world) want(state State, reason, calls, profile, current string) {
	w.t.Helper()
	if s := w.status(); s.State != state || (reason != "" && s.Reason != reason) {
		w.t.Errorf("status %q, want %s %s\nlog:\n%s", s.Line, state, reason, w.log())
	}
	if got := w.callLog(); got != calls {
		w.t.Errorf("calls:\n%s\nwant:\n%s", got, calls)
	}
	if w.link(w.profile) != profile || w.link(w.current) != current {
		w.t.Errorf("profile -> %s, current -> %s; want %s, %s", w.link(w.profile), w.link(w.current), profile, current)
	}
	// Final: the GC roots are gone.
	for _, r := range []string{"new", "prev", "prev-2"} {
		if _, err := os.Lstat(filepath.Join(w.dir, r)); err == nil {
			w.t.Errorf("GC root %s left", r)
		}
	}
}

// A switch activates with test, waits for the confirmation, and only then
// becomes the profile's generation and the boot default.
func TestGuardConfirmedSwitch(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		old, new := w.system("old", nil), w.system("new", nil)
		w.boot(old)
		wait, _ := w.start(new, "switch", 9, "")
		w.waitState(Activated)
		if w.link(w.profile) != old {
			t.Errorf("the profile changed before the confirmation: %s", w.link(w.profile))
		}
		if r := w.result(); r["prev_run"] != old || r["prev_boot"] != old || r["prev_gen"] != "system-1-link" || r["target"] != new {
			t.Errorf("result %v", r)
		}
		// One nix-store call: the running system's root, then the
		// booted one's.
		for _, p := range []string{"prev", "prev-2"} {
			if w.link(filepath.Join(w.dir, p)) != old {
				t.Errorf("%s is not pinned", p)
			}
		}
		w.confirm()
		wait()
		w.want(Confirmed, "", "new test 0022\nnix-env --set new\nnew boot 0022\n", new, new)
		rep := ParseReport(w.result(), w.log())
		if rep.ExitCode != 0 || strings.Join(rep.Units.Restarted, " ") != "a.service b.service" {
			t.Errorf("report %+v", rep)
		}
	})
}

// The deployer's word that it reached the host again starts the window
// again, once: a deployer slow to reconnect (many hosts at once) does not
// roll a healthy host back.
func TestGuardReachedStartsTheWindowAgain(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		old, new := w.system("old", nil), w.system("new", nil)
		w.boot(old)
		wait, _ := w.start(new, "switch", 5, "")
		w.waitState(Activated)
		d0, _ := strconv.Atoi(w.result()["deadline"])
		time.Sleep(time.Second)
		w.signal("reached")
		reached := func() string {
			for range 500 {
				if r := w.result()["reached"]; r != "" {
					return r
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Fatalf("the guard did not note the reached word; status %q", w.status().Line)
			return ""
		}
		r := reached()
		d1, _ := strconv.Atoi(w.result()["deadline"])
		// On the host's monotonic clock, in centiseconds: the new deadline
		// is the window from when the guard saw the word, a second or more
		// after the first one began.
		if d1 < d0+100 || strconv.Itoa(d1) != r {
			t.Errorf("deadline %d → %d (reached %s), want at least %d", d0, d1, r, d0+100)
		}
		// Once: a second word moves nothing.
		os.Remove(filepath.Join(w.dir, "reached"))
		time.Sleep(300 * time.Millisecond)
		w.signal("reached")
		time.Sleep(600 * time.Millisecond)
		if d2, _ := strconv.Atoi(w.result()["deadline"]); d2 != d1 {
			t.Errorf("a second reached moved the deadline %d → %d", d1, d2)
		}
		w.confirm()
		wait()
		w.want(Confirmed, "", "new test 0022\nnix-env --set new\nnew boot 0022\n", new, new)
	})
}

// A test is confirmed without touching the profile.
func TestGuardConfirmedTest(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		old, new := w.system("old", nil), w.system("new", nil)
		w.boot(old)
		wait, _ := w.start(new, "test", 9, "")
		w.waitState(Activated)
		w.confirm()
		wait()
		w.want(Confirmed, "", "new test 0022\n", old, new)
	})
}

// The guard's outcomes that need nothing from the deployer: how each exit
// of switch-to-configuration ends, and what runs and boots then.
func TestGuardOutcomes(t *testing.T) {
	type codes = map[string]int
	cases := []struct {
		name             string
		old, new         codes // exit codes per action
		action           string
		window           int
		state            State
		reason, calls    string
		profile, current string // "old" or "new"
		rollbackExitCode string
	}{
		// No confirmation: the profile and the boot loader were never
		// touched, only the running system returns.
		{"no confirmation", nil, nil, "switch", 1, RolledBack, "no confirmation from the deployer within 1s",
			"new test 0022\nold test 0022\n", "old", "old", "0"},
		{"activation failed", nil, codes{"test": 2}, "switch", 9, RolledBack, "switch-to-configuration test failed (exit 2)",
			"new test 0022\nold test 0022\n", "old", "old", "0"},
		// Exits that activated nothing need no rollback: the pre-switch
		// checks (exit 1, the running system unchanged), a new init (100).
		{"refused", nil, codes{"test": 1}, "switch", 9, Refused, "switch-to-configuration test exited 1 without activating anything",
			"new test 0022\n", "old", "old", ""},
		{"new init", nil, codes{"test": 100}, "switch", 9, NeedsReboot, "",
			"new test 0022\n", "old", "old", ""},
		// The previous system's own failed unit (exit 4) still returns the
		// host, degraded; another exit is a failed rollback.
		{"degraded rollback", codes{"test": 4}, codes{"test": 2}, "switch", 9, RolledBack, "",
			"new test 0022\nold test 0022\n", "old", "old", "4"},
		{"failed rollback", codes{"test": 2}, codes{"test": 2}, "switch", 9, RollbackFailed, "",
			"new test 0022\nold test 0022\n", "old", "old", "2"},
		// Unguarded, as nixos-rebuild: the profile first for switch and
		// boot, then switch-to-configuration with the action.
		{"unguarded switch", codes{"test": 4}, codes{"switch": 4}, "switch", 0, Done, "4",
			"nix-env --set new\nnew switch 0022\n", "new", "new", ""},
		{"unguarded boot", nil, codes{"switch": 4}, "boot", 0, Done, "0",
			"nix-env --set new\nnew boot 0022\n", "new", "old", ""},
	}
	eachShell(t, func(t *testing.T, sh []string) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				w := newWorld(t, sh)
				systems := map[string]string{"old": w.system("old", c.old), "new": w.system("new", c.new)}
				w.boot(systems["old"])
				wait, _ := w.start(systems["new"], c.action, c.window, "")
				wait()
				w.want(c.state, c.reason, c.calls, systems[c.profile], systems[c.current])
				if got := w.result()["rollback_rc"]; got != c.rollbackExitCode {
					t.Errorf("rollback exit code %q, want %q", got, c.rollbackExitCode)
				}
			})
		}
	})
}

// The window is counted on the monotonic clock: a wall clock that jumps
// (timesyncd starting in the new system) changes nothing.
func TestGuardIgnoresTheWallClock(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		// A date that says the window is long over, and one that says
		// it has not begun.
		w.write(filepath.Join(w.root, "bin", "date"), `#!/bin/sh
n=$(cat `+w.root+`/date-calls 2>/dev/null || echo 0); echo $((n+1)) >`+w.root+`/date-calls
if [ $((n % 2)) = 0 ]; then echo 4000000000; else echo 1; fi`)
		old, new := w.system("old", nil), w.system("new", nil)
		w.boot(old)
		wait, _ := w.start(new, "switch", 3, "")
		w.waitState(Activated)
		time.Sleep(500 * time.Millisecond)
		w.confirm()
		wait()
		w.want(Confirmed, "", "new test 0022\nnix-env --set new\nnew boot 0022\n", new, new)
	})
}

// Exit 4 (a unit failed) is activated all the same: the health checks
// decide. The units that had failed before are recorded, so that only new
// failures count.
func TestGuardFailedUnitsLeaveItToTheChecks(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		os.WriteFile(w.failed, []byte("flaky.service\nold.service\n"), 0o644)
		old, new := w.system("old", nil), w.system("new", map[string]int{"test": 4})
		w.boot(old)
		wait, _ := w.start(new, "switch", 9, "")
		w.waitState(Activated)
		w.confirm()
		wait()
		w.want(Confirmed, "", "new test 0022\nnix-env --set new\nnew boot 0022\n", new, new)
		rep := ParseReport(w.result(), w.log())
		if rep.ExitCode != 4 || strings.Join(rep.Units.Failed, " ") != "flaky.service" ||
			strings.Join(rep.FailedBefore, " ") != "flaky.service old.service" || len(rep.NewlyFailed()) != 0 {
			t.Errorf("report %+v", rep)
		}
	})
}

func TestGuardAbortedByTheDeployer(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		old, new := w.system("old", nil), w.system("new", nil)
		w.boot(old)
		wait, _ := w.start(new, "test", 9, "")
		w.waitState(Activated)
		w.signal("abort", `health check "http" failed: 500`)
		wait()
		w.want(RolledBack, `health check "http" failed: 500`, "new test 0022\nold test 0022\n", old, old)
	})
}

// A host running a system other than its boot default (after a test) gets
// the running one back; the boot default was never touched.
func TestGuardRestoresTheRunningSystem(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		booted, running, new := w.system("booted", nil), w.system("running", nil), w.system("new", nil)
		w.boot(booted)
		os.Remove(w.current)
		os.Symlink(running, w.current)
		wait, _ := w.start(new, "switch", 1, "")
		wait()
		w.want(RolledBack, "", "new test 0022\nrunning test 0022\n", booted, running)
	})
}

// A boot loader that cannot be installed at the confirmation returns the
// host: profile (by path when the generation was collected meanwhile),
// boot loader and running system.
func TestGuardBootLoaderFailure(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		old, new := w.system("old", nil), w.system("new", map[string]int{"boot": 1})
		w.boot(old)
		wait, _ := w.start(new, "switch", 9, "")
		w.waitState(Activated)
		w.confirm()
		wait()
		w.want(RolledBack, "installing the boot loader failed (switch-to-configuration boot exited 1)",
			"new test 0022\nnix-env --set new\nnew boot 0022\nnix-env --switch-generation 1\nold boot 0022\nold test 0022\n", old, old)

		// The previous generation was garbage-collected during the wait.
		w2 := newWorld(t, sh)
		old2, new2 := w2.system("old", nil), w2.system("new", map[string]int{"boot": 1})
		w2.boot(old2)
		wait, _ = w2.start(new2, "switch", 9, "")
		w2.waitState(Activated)
		os.Remove(w2.profile + "-1-link")
		w2.confirm()
		wait()
		w2.want(RolledBack, "", "new test 0022\nnix-env --set new\nnew boot 0022\nnix-env --set old\nold boot 0022\nold test 0022\n", old2, old2)
	})
}

// Someone who switches the host while the guard waits is not reverted.
func TestGuardSuperseded(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		old, new, other := w.system("old", nil), w.system("new", nil), w.system("other", nil)
		w.boot(old)
		wait, _ := w.start(new, "switch", 1, "")
		w.waitState(Activated)
		os.Remove(w.current)
		os.Symlink(other, w.current)
		wait()
		w.want(Superseded, "", "new test 0022\n", old, other)
	})
}

// While another switch holds stc's lock, the guard waits for it (stc-ng
// would fail at once); one that holds it too long refuses. While it waits
// for the confirmation, the guard holds the lock itself.
func TestGuardSwitchLock(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		old, new := w.system("old", nil), w.system("new", nil)
		w.boot(old)
		// Held until the guard says it waits (a fixed second ends before
		// a loaded machine starts the guard), a minute at most.
		release := filepath.Join(t.TempDir(), "release")
		holder := exec.Command("flock", w.lock, "sh", "-c", `i=0; while [ ! -e "$1" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done`, "holder", release)
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if exec.Command("flock", "-n", w.lock, "true").Run() != nil {
				break // the holder has it
			}
		}
		wait, _ := w.start(new, "test", 9, "")
		for end := time.Now().Add(time.Minute); time.Now().Before(end) && !strings.Contains(w.log(), "holds its lock"); {
			time.Sleep(50 * time.Millisecond)
		}
		os.WriteFile(release, nil, 0o600)
		w.waitState(Activated)
		holder.Wait()
		if !strings.Contains(w.log(), "another switch-to-configuration holds its lock") {
			t.Errorf("no wait for the lock:\n%s", w.log())
		}
		// Held by the waiting guard: another stc fails at once.
		if out, err := exec.Command(filepath.Join(old, "bin", "switch-to-configuration"), "test").CombinedOutput(); err == nil {
			t.Errorf("a switch during the wait ran: %s", out)
		}
		w.confirm()
		wait()
		w.want(Confirmed, "", "new test 0022\n", old, new)

		w2 := newWorld(t, sh)
		old2, new2 := w2.system("old", nil), w2.system("new", nil)
		w2.boot(old2)
		holder = exec.Command("flock", w2.lock, "sleep", "5")
		holder.Start()
		defer holder.Process.Kill()
		time.Sleep(100 * time.Millisecond)
		wait, _ = w2.start(new2, "switch", 9, "")
		wait()
		w2.want(Refused, "another switch-to-configuration held its lock for 2s", "", old2, old2)
	})
}

// A lock taken by someone else between the switch and the wait (a switch
// that started meanwhile) is not waited for beyond the holder's 10 s: the
// guard says so and waits for the confirmation without it, however
// seldom its ticker ticks.
func TestGuardLockTakenMeanwhile(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		w.env = append(w.env, "LOLLYPOPS_TICK=3600")
		old, new := w.system("old", nil), w.system("new", nil)
		w.boot(old)
		// The new system's test hands its lock over to a process that
		// holds it for a minute (its pid in w.root/other), and ends once
		// that one has it. (That one waits for it: the test's own look,
		// a flock, holds it for a moment.)
		pid := filepath.Join(w.root, "other")
		stc := filepath.Join(new, "bin", "switch-to-configuration")
		script, _ := os.ReadFile(stc)
		w.write(stc, strings.Replace(string(script), "exit $rc", `if [ "$1" = test ]; then
	exec 8>&-
	( exec 9>>`+w.lock+` </dev/null >/dev/null 2>&1; flock -w 30 9 && exec sleep 60 ) &
	echo $! >`+pid+`
	while flock -n `+w.lock+` true; do sleep 0.01; done
fi
exit $rc`, 1))
		wait, _ := w.start(new, "switch", 600, "")
		for end := time.Now().Add(time.Minute); time.Now().Before(end) && w.status().State != Activated; {
			time.Sleep(50 * time.Millisecond)
		}
		if w.status().State != Activated {
			t.Fatalf("state %q, want activated; log:\n%s", w.status().State, w.log())
		}
		if !strings.Contains(w.log(), "another process holds switch-to-configuration's lock; waiting for the confirmation without it") {
			t.Errorf("the log does not say the lock is not held:\n%s", w.log())
		}
		data, _ := os.ReadFile(pid)
		p, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		syscall.Kill(p, syscall.SIGKILL)
		w.confirm()
		wait()
		w.want(Confirmed, "", "new test 0022\nnix-env --set new\nnew boot 0022\n", new, new)
	})
}

// A specialisation by name, or the one the host runs (":keep"), is what
// switch-to-configuration runs; the profile gets the base system.
// A switch-to-configuration that finds its lock taken (by a switch that
// started after the guard looked) fails at once, as stc-ng does; the
// guard tries again. After an exit 11 without stc-ng's message it does
// not: the message is looked for in that try's output only.
func TestGuardRetriesABusyLock(t *testing.T) {
	const busy = `echo "Could not acquire lock" >&2; exit 11`
	const other = `echo "something else" >&2; exit 11`
	eachShell(t, func(t *testing.T, sh []string) {
		for _, c := range []struct {
			name  string
			tries []string // what the first calls do instead of switching
			want  State
		}{
			{"busy once", []string{busy}, Activated},
			{"exit 11", []string{other}, Refused},
			{"busy, then exit 11", []string{busy, other}, Refused},
		} {
			w := newWorld(t, sh)
			old, new := w.system("old", nil), w.system("new", nil)
			w.boot(old)
			stc := filepath.Join(new, "bin", "switch-to-configuration")
			os.Rename(stc, stc+".real")
			count := filepath.Join(w.root, "tries")
			cases := ""
			for i, c := range c.tries {
				cases += fmt.Sprintf("%d) %s ;;\n", i, c)
			}
			w.write(stc, "#!/bin/sh\nn=$(cat "+count+" 2>/dev/null || echo 0)\necho $((n + 1)) >"+count+"\ncase $n in\n"+cases+"esac\nexec "+stc+".real \"$@\"")
			wait, _ := w.start(new, "test", 9, "")
			if c.want == Activated {
				w.waitState(Activated)
				w.confirm()
				wait()
				w.want(Confirmed, "", "new test 0022\n", old, new)
			} else {
				wait()
				w.want(Refused, "another switch-to-configuration held its lock for 2s", "", old, old)
			}
			want := len(c.tries)
			if c.want == Activated {
				want++
			}
			if n := strings.Count(w.log(), "switch-to-configuration test of"); n != want {
				t.Errorf("%s: %d tries, want %d:\n%s", c.name, n, want, w.log())
			}
		}
	})
}

func TestGuardSpecialisation(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		old, new := w.system("old", nil), w.system("new", nil)
		os.MkdirAll(filepath.Join(new, "specialisation"), 0o755)
		os.MkdirAll(filepath.Join(old, "specialisation"), 0o755)
		spec := w.system("new-web", nil)
		os.Symlink(spec, filepath.Join(new, "specialisation", "web"))
		oldSpec := w.system("old-web", nil)
		os.Symlink(oldSpec, filepath.Join(old, "specialisation", "web"))
		w.boot(old)
		os.Remove(w.current)
		os.Symlink(oldSpec, w.current) // the host runs old's "web"
		wait, _ := w.start(new, "switch", 9, Keep)
		w.waitState(Activated)
		w.confirm()
		wait()
		w.want(Confirmed, "", "new-web test 0022\nnix-env --set new\nnew-web boot 0022\n", new, spec)
		if r := w.result(); r["specialisation"] != "web" {
			t.Errorf("result %v", r)
		}

		w2 := newWorld(t, sh)
		old2, new2 := w2.system("old", nil), w2.system("new", nil)
		w2.boot(old2)
		wait, _ = w2.start(new2, "switch", 9, "missing")
		wait()
		w2.want(Refused, `the new system has no specialisation "missing"`, "", old2, old2)
	})
}

// A guard that stops before a final state (killed, out of memory) is
// finished by recover: rolled back while unconfirmed.
func TestGuardRecover(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		w := newWorld(t, sh)
		old, new := w.system("old", nil), w.system("new", nil)
		w.boot(old)
		wait, cmd := w.start(new, "switch", 30, "")
		w.waitState(Activated)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		wait()
		w.recover()
		w.want(RolledBack, "the guard stopped (state activated) before the activation was confirmed", "new test 0022\nold test 0022\n", old, old)

		// Confirmed by the deployer after the guard stopped: completed.
		w2 := newWorld(t, sh)
		old2, new2 := w2.system("old", nil), w2.system("new", nil)
		w2.boot(old2)
		wait, cmd = w2.start(new2, "switch", 30, "")
		w2.waitState(Activated)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		wait()
		w2.confirm()
		w2.recover()
		w2.want(Confirmed, "", "new test 0022\nnix-env --set new\nnew boot 0022\n", new2, new2)
	})
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]Status{
		"activated\n":                 {State: Activated, Line: "activated"},
		"rolled-back no confirmation": {State: RolledBack, Reason: "no confirmation", Line: "rolled-back no confirmation"},
	} {
		if got, err := ParseStatus(in); err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	if _, err := ParseStatus("garbage"); err == nil {
		t.Error("garbage parsed")
	}
}
