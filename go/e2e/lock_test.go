package e2e

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/lock"
)

// The deploy lock (internal/lock): a run deploying a host keeps every other
// run off it, on the host, until it ends or dies.

// gate is a secret command that says it started, then waits until the test
// opens the gate: a run deploying a host with it holds the host's lock (its
// deploy-flake took it) for as long as the test wants, without a timer.
type gate struct{ dir string }

func newGate(t *testing.T) gate { return gate{dir: t.TempDir()} }

func (g gate) cmd() string {
	return "touch " + g.dir + "/waiting; while [ ! -e " + g.dir + "/open ]; do sleep 0.05; done; echo gated"
}

func (g gate) open(t *testing.T) {
	if err := os.WriteFile(filepath.Join(g.dir, "open"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or a minute passes (a bound for a
// stuck test, never a measurement).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockHeld reports whether a run holds the host's lock in /run/lollypops:
// its holder's record is there. It does not touch the lock itself, which
// would refuse a run taking it at that moment.
func lockHeld(t *testing.T, h *fakehost.Host) bool {
	t.Helper()
	return strings.TrimSpace(sh(t, h, "test -e "+lock.RootDir+"/holder && echo held || :")) == "held"
}

// lockFree reports whether the host's lock can be taken, by taking it for
// a moment: only while no run may try to.
func lockFree(t *testing.T, h *fakehost.Host) bool {
	t.Helper()
	return strings.TrimSpace(sh(t, h, "flock -n "+lock.RootDir+"/lock true && echo free || :")) == "free"
}

// startHolding starts a run of host1 whose secret waits at the gate, and
// returns once it holds host1's lock; the run's result and pid come on the
// channels.
func startHolding(t *testing.T, f *fakehost.Fleet, g gate) (<-chan result, int) {
	t.Helper()
	h := f.Host("host1")
	c := host(f, "host1")
	c.Secrets.Files = []config.Secret{secret("gated", g.cmd(), "/run/keys/gated")}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := make(chan result, 1)
	pid := make(chan int, 1)
	go func() {
		res <- r.runCtx(context.Background(), func(cmd *exec.Cmd) { pid <- cmd.Process.Pid }, "host1")
	}()
	p := <-pid
	eventually(t, "the first run holds host1's lock", func() bool {
		_, err := os.Stat(filepath.Join(g.dir, "waiting"))
		return err == nil && lockHeld(t, h)
	})
	return res, p
}

// A second run is refused on a host another run deploys, with one line
// naming the holder and a hint; its other host is deployed; the first run
// succeeds and leaves the lock free.
func TestLockRefusesSecondRun(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2")...)
	h1, h2 := f.Host("host1"), f.Host("host2")
	g := newGate(t)
	first, pid := startHolding(t, f, g)

	second := newRunner(t, map[string]*config.Host{"host1": host(f, "host1"), "host2": host(f, "host2")})
	res := second.run("all")
	t.Logf("the second run:\n%s", res)
	me, _ := user.Current()
	hostname, _ := os.Hostname()
	want := "lollypops: host1: being deployed by " + me.Username + "@" + hostname + " since "
	var refusal []string
	for _, l := range strings.Split(res.stdout, "\n") {
		if strings.HasPrefix(l, "[host1:deploy-flake] lollypops: ") {
			refusal = append(refusal, strings.TrimPrefix(l, "[host1:deploy-flake] "))
		}
	}
	if len(refusal) != 2 || !strings.HasPrefix(refusal[0], want) || !strings.HasSuffix(refusal[0], " UTC (pid "+strconv.Itoa(pid)+")") ||
		!strings.HasPrefix(refusal[1], "lollypops: hint: wait for that run to end") {
		t.Errorf("the refusal is not one line naming the holder (%s..., pid %d) and a hint: %q", want, pid, refusal)
	}
	if res.code != 3 || !strings.HasPrefix(summaryLine(res, "host1"), "host1 failed") || !strings.HasPrefix(summaryLine(res, "host2"), "host2 ok") {
		t.Errorf("the second run: host1 must fail, host2 be deployed:\n%s", res)
	}
	if calls, _ := h2.RebuildCalls(); len(calls) != 1 {
		t.Errorf("host2: %d rebuilds, want 1", len(calls))
	}
	if calls, _ := h1.RebuildCalls(); len(calls) != 0 {
		t.Errorf("host1 was rebuilt while the first run held it: %d calls", len(calls))
	}
	if !lockHeld(t, h1) {
		t.Error("the refused run released the first run's lock")
	}

	g.open(t)
	r1 := <-first
	if r1.code != 0 || !strings.HasPrefix(summaryLine(r1, "host1"), "host1 ok") {
		t.Fatalf("the first run:\n%s", r1)
	}
	if got := sh(t, h1, "cat /run/keys/gated"); got != "gated\n" {
		t.Errorf("secret: %q", got)
	}
	// The run released the lock before it returned.
	if lockHeld(t, h1) || !lockFree(t, h1) || strings.TrimSpace(sh(t, h1, "ls -A "+lock.RootDir)) != "guard\nlock" {
		t.Errorf("the lock outlived its run: %s", sh(t, h1, "ls -lA "+lock.RootDir))
	}
	if res := second.run("host1"); res.code != 0 {
		t.Errorf("host1 after the first run ended:\n%s", res)
	}
}

// A run killed with SIGKILL while it holds a host's lock does not block
// the next run: its holder's stdin (a connection to the dead process) ends,
// and the holder leaves at once, well before the TTL bound.
func TestLockFreedWhenRunnerKilled(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	g := newGate(t)
	defer g.open(t)
	first, pid := startHolding(t, f, g)
	syscall.Kill(-pid, syscall.SIGKILL)
	<-first

	if lock.TTL <= time.Minute {
		t.Fatalf("the TTL (%s) must exceed this test's bound to tell the two apart", lock.TTL)
	}
	killed := time.Now()
	eventually(t, "the killed run's lock is released (the TTL would take "+lock.TTL.String()+")", func() bool { return lockFree(t, h) })
	t.Logf("the lock was free %s after the kill", time.Since(killed).Round(time.Millisecond))
	eventually(t, "the killed run's holder ends", func() bool { return holders(f) == nil })
	res := newRunner(t, map[string]*config.Host{"host1": host(f, "host1")}).run("host1")
	if res.code != 0 || !strings.HasPrefix(summaryLine(res, "host1"), "host1 ok") {
		t.Errorf("the run after the killed one:\n%s", res)
	}
}

// A cut connection frees the lock: sshd ends the session, the holder's
// stdin ends. The cut run's later steps take the lock again.
func TestLockFreedWhenConnectionDrops(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	g := newGate(t)
	defer g.open(t)
	first, _ := startHolding(t, f, g)
	if err := h.DropConnections(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the lock of the cut session is released", func() bool { return !lockHeld(t, h) })
	g.open(t)
	res := <-first
	t.Logf("the cut run:\n%s", res)
	if lockHeld(t, h) || !lockFree(t, h) {
		t.Error("the lock outlived the cut run")
	}
	if res := newRunner(t, map[string]*config.Host{"host1": host(f, "host1")}).run("host1"); res.code != 0 {
		t.Errorf("the run after the cut one:\n%s", res)
	}
}

// An interrupted run releases its locks before it exits.
func TestLockReleasedOnInterrupt(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	g := newGate(t)
	defer g.open(t)
	first, pid := startHolding(t, f, g)
	// The terminal's Ctrl-C goes to the whole foreground process group.
	syscall.Kill(-pid, syscall.SIGINT)
	res := <-first
	if res.code != 130 {
		t.Errorf("interrupted run:\n%s", res)
	}
	if lockHeld(t, h) || !lockFree(t, h) || holders(f) != nil {
		t.Errorf("the interrupted run left its lock:\n%s", res)
	}
}

// holders returns the pids of the ssh clients holding a fleet host's lock.
func holders(f *fakehost.Fleet) []int { return sshClients(f, "lollypops-lock") }

// The steps of one run share its lock, also when they run in parallel.
func TestLockSharedByParallelSteps(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	c := host(f, "host1")
	c.Secrets.Files = []config.Secret{secret("a", "echo a", "/run/keys/a")}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("-p", "host1:deploy-flake", "host1:deploy-secrets")
	if res.code != 0 {
		t.Fatalf("parallel steps of one run:\n%s", res)
	}
	res = r.run("host1")
	if res.code != 0 || !strings.HasPrefix(summaryLine(res, "host1"), "host1 ok") {
		t.Fatalf("a full deploy:\n%s", res)
	}
	if lockHeld(t, h) || !lockFree(t, h) || holders(f) != nil {
		t.Error("the lock outlived the run")
	}
}

// The lock directory must be root's own: one another user made is refused,
// naming it, before anything is deployed.
func TestLockRefusesForeignDirectory(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "host1", Users: []fakehost.UserSpec{{Name: "alice"}}})
	h := f.Host("host1")
	sh(t, h, "mkdir -m 0777 "+lock.RootDir+" && chown alice "+lock.RootDir)
	res := newRunner(t, map[string]*config.Host{"host1": host(f, "host1")}).run("host1")
	if res.code != 3 || !strings.Contains(res.output(), "deploy lock on host1: lock directory: "+lock.RootDir+" has owner uid") {
		t.Errorf("a foreign lock directory:\n%s", res)
	}
	if calls, _ := h.RebuildCalls(); len(calls) != 0 {
		t.Errorf("host1 rebuilt without its lock")
	}
	if got := sh(t, h, "ls -A "+lock.RootDir); got != "" {
		t.Errorf("files made in alice's directory: %q", got)
	}
}

// A non-root ssh user without sudo keeps the lock in its own home.
func TestLockOfNonRootUser(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "host1", Users: []fakehost.UserSpec{{Name: "alice"}}})
	h := f.Host("host1")
	c := host(f, "host1")
	c.Deployment.SSH.User = ptr("alice")
	c.Deployment.ConfigDir = "/home/alice/lollypops"
	s := secret("token", "echo t", "/home/alice/token")
	s.Owner, s.Group = "alice", "alice"
	c.Secrets.Files = []config.Secret{s}
	res := newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	if got := sh(t, h, "stat -c '%U %a' /home/alice/"+lock.UserDirName+"; ls -A /home/alice/"+lock.UserDirName+"; test ! -e "+lock.RootDir+" && echo no-root-lock"); got != "alice 700\nguard\nlock\nno-root-lock\n" {
		t.Errorf("alice's lock: %q", got)
	}
}

// A host whose steps are over is unlocked while the run goes on: another
// run may deploy it before the run's last host is done.
func TestLockReleasedWhenTheHostIsDone(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2")...)
	g := newGate(t)
	defer g.open(t)
	c2 := host(f, "host2")
	c2.Secrets.Files = []config.Secret{secret("gated", g.cmd(), "/run/keys/gated")}
	r := newRunner(t, map[string]*config.Host{"host1": host(f, "host1"), "host2": c2})
	res := make(chan result, 1)
	go func() { res <- r.run("-p", "host1", "host2") }()
	eventually(t, "host2's secret waits at the gate, holding host2's lock", func() bool {
		_, err := os.Stat(filepath.Join(g.dir, "waiting"))
		return err == nil && lockHeld(t, f.Host("host2"))
	})
	// Done: host1 runs the deployed system (before its deploy, no holder
	// is there either, and lockFree below would take the lock from under
	// the run's first session).
	eventually(t, "host1, done, is unlocked while host2 is not", func() bool {
		return strings.TrimSpace(sh(t, f.Host("host1"), "grep -q "+deployedKernel+" /run/current-system/kernel && echo done || :")) == "done" &&
			!lockHeld(t, f.Host("host1"))
	})
	if !lockFree(t, f.Host("host1")) || !lockHeld(t, f.Host("host2")) {
		t.Error("host1's lock is taken, or host2's is not, while host2 deploys")
	}
	g.open(t)
	if r := <-res; r.code != 0 {
		t.Fatalf("the run:\n%s", r)
	}
	for _, h := range []string{"host1", "host2"} {
		if lockHeld(t, f.Host(h)) || !lockFree(t, f.Host(h)) {
			t.Errorf("%s: the lock outlived the run", h)
		}
	}
	if holders(f) != nil {
		t.Error("a holder outlived the run")
	}
}
