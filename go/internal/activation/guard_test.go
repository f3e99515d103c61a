package activation

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// world is a fake host for the guard: systems whose
// switch-to-configuration logs its calls and can fail, a profile with
// generations, and a nix-env that handles --set and --switch-generation.
type world struct {
	t                           *testing.T
	root, dir, profile, current string
	calls                       string
	env                         []string
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, root: t.TempDir()}
	w.dir = filepath.Join(w.root, "state")
	w.profile = filepath.Join(w.root, "profiles", "system")
	w.current = filepath.Join(w.root, "current-system")
	w.calls = filepath.Join(w.root, "calls")
	bin := filepath.Join(w.root, "bin")
	for _, d := range []string{w.dir, bin, filepath.Dir(w.profile)} {
		os.MkdirAll(d, 0o755)
	}
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
echo "nix-env $3 ${4-}" >>`+w.calls)
	w.env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	return w
}

func (w *world) write(p, s string) {
	if err := os.WriteFile(p, []byte(s+"\n"), 0o755); err != nil {
		w.t.Fatal(err)
	}
}

// system makes a system whose activation exits with code.
func (w *world) system(name string, code int) string {
	p := filepath.Join(w.root, name)
	os.MkdirAll(filepath.Join(p, "bin"), 0o755)
	w.write(filepath.Join(p, "bin", "switch-to-configuration"), `#!/bin/sh
echo "`+name+` $1" >>`+w.calls+`
case $1 in switch|test) ln -sfn `+p+` `+w.current+`;; esac
exit `+string(rune('0'+code)))
	return p
}

// boot makes sys the running system and the profile's generation 1.
func (w *world) boot(sys string) {
	os.Symlink(sys, w.profile+"-1-link")
	os.Symlink("system-1-link", w.profile)
	os.Symlink(sys, w.current)
}

// start runs the guard as the unit would, and returns its wait function.
func (w *world) start(sys, action string, timeout int) func() {
	cmd := exec.Command("/bin/sh", "-c", Script, "lollypops-activation", w.dir, sys, action, string(rune('0'+timeout)), w.profile, w.current)
	cmd.Env = w.env
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	return func() { cmd.Wait() }
}

func (w *world) status() Status {
	data, _ := os.ReadFile(filepath.Join(w.dir, "status"))
	s, _ := ParseStatus(string(data))
	return s
}

func (w *world) waitState(want State) {
	w.t.Helper()
	for i := 0; i < 500; i++ {
		if w.status().State == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(w.dir, "log"))
	w.t.Fatalf("state %q, want %q; log:\n%s", w.status().State, want, log)
}

func (w *world) callLog() string {
	data, _ := os.ReadFile(w.calls)
	return string(data)
}

func (w *world) link(p string) string {
	t, _ := filepath.EvalSymlinks(p)
	return t
}

func TestGuardConfirmed(t *testing.T) {
	w := newWorld(t)
	old, new := w.system("old", 0), w.system("new", 0)
	w.boot(old)
	wait := w.start(new, "switch", 9)
	w.waitState(Activated)
	os.WriteFile(filepath.Join(w.dir, "confirm"), nil, 0o600)
	wait()
	if s := w.status(); s.State != Confirmed {
		t.Errorf("status %+v", s)
	}
	if w.link(w.profile) != new || w.link(w.current) != new {
		t.Errorf("profile -> %s, current -> %s", w.link(w.profile), w.link(w.current))
	}
	if got := w.callLog(); got != "nix-env --set "+new+"\nnew switch\n" {
		t.Errorf("calls:\n%s", got)
	}
}

func TestGuardRollsBackWithoutConfirmation(t *testing.T) {
	w := newWorld(t)
	old, new := w.system("old", 0), w.system("new", 0)
	w.boot(old)
	w.start(new, "switch", 1)()
	if s := w.status(); s.State != RolledBack || s.Reason != "no confirmation from the deployer within 1s" {
		t.Errorf("status %+v", s)
	}
	if w.link(w.profile) != old || w.link(w.current) != old {
		t.Errorf("profile -> %s, current -> %s", w.link(w.profile), w.link(w.current))
	}
	if got := w.callLog(); got != "nix-env --set "+new+"\nnew switch\nnix-env --switch-generation 1\nold switch\n" {
		t.Errorf("calls:\n%s", got)
	}
}

func TestGuardRollsBackAFailedActivation(t *testing.T) {
	w := newWorld(t)
	old, bad := w.system("old", 0), w.system("bad", 2)
	w.boot(old)
	w.start(bad, "switch", 9)()
	if s := w.status(); s.State != RolledBack || s.Reason != "switch-to-configuration switch failed (exit 2)" {
		t.Errorf("status %+v", s)
	}
	if w.link(w.profile) != old || w.link(w.current) != old {
		t.Errorf("profile -> %s, current -> %s", w.link(w.profile), w.link(w.current))
	}
}

func TestGuardAbortedByTheDeployer(t *testing.T) {
	w := newWorld(t)
	old, new := w.system("old", 0), w.system("new", 0)
	w.boot(old)
	wait := w.start(new, "test", 9)
	w.waitState(Activated)
	os.WriteFile(filepath.Join(w.dir, "abort"), []byte("health check \"http\" failed: 500\n"), 0o600)
	wait()
	if s := w.status(); s.State != RolledBack || s.Reason != `health check "http" failed: 500` {
		t.Errorf("status %+v", s)
	}
	// test leaves the profile alone, and rolls back with test.
	if got := w.callLog(); got != "new test\nold test\n" || w.link(w.current) != old || w.link(w.profile) != old {
		t.Errorf("calls:\n%s", got)
	}
}

// A host running a system other than its boot default (after a test)
// gets both back: the boot default with boot, the running one with test.
func TestGuardRestoresBootAndRunningSystems(t *testing.T) {
	w := newWorld(t)
	booted, running, new := w.system("booted", 0), w.system("running", 0), w.system("new", 0)
	w.boot(booted)
	os.Remove(w.current)
	os.Symlink(running, w.current)
	w.start(new, "switch", 0)()
	if got := w.callLog(); !strings.HasSuffix(got, "nix-env --switch-generation 1\nbooted boot\nrunning test\n") {
		t.Errorf("calls:\n%s", got)
	}
	if w.link(w.profile) != booted || w.link(w.current) != running {
		t.Errorf("profile -> %s, current -> %s", w.link(w.profile), w.link(w.current))
	}
}

func TestGuardRollbackFailure(t *testing.T) {
	w := newWorld(t)
	old, bad := w.system("old", 4), w.system("bad", 2)
	w.boot(old)
	w.start(bad, "switch", 9)()
	if s := w.status(); s.State != RollbackFailed {
		t.Errorf("status %+v", s)
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]Status{
		"activated\n":                 {State: Activated},
		"rolled-back no confirmation": {State: RolledBack, Reason: "no confirmation"},
	} {
		if got, err := ParseStatus(in); err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	if _, err := ParseStatus("garbage"); err == nil {
		t.Error("garbage parsed")
	}
}
