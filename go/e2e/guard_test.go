package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// The guarded activation against what real NixOS switches do
// (docs/activation.md, "What a switch can do"): each test is one scenario
// of issue 16, named for it.

// guardedHost is a host with rollback enabled and its confirm-timeout.
func guardedHost(f *fakehost.Fleet, name string, confirm int) *config.Host {
	c := host(f, name)
	c.Deployment.Rollback = config.Rollback{Enable: true, ConfirmTimeout: confirm}
	return c
}

// start runs lollypops in the background; its result comes on the channel.
func (r *runner) start(args ...string) <-chan result {
	done := make(chan result, 1)
	go func() { done <- r.run(args...) }()
	return done
}

// waitActivated waits until an activation on the host waits for its
// confirmation.
func waitActivated(t *testing.T, h *fakehost.Host) {
	t.Helper()
	eventually(t, "an activation on "+h.Name+" waits for its confirmation", func() bool {
		return slices.Contains(activationStates(t, h), "activated")
	})
}

// activationStates are the status lines of the host's activations.
func activationStates(t *testing.T, h *fakehost.Host) []string {
	t.Helper()
	out := strings.TrimSpace(sh(t, h, "cat /run/lollypops/activation/*/status 2>/dev/null || :"))
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// Once confirmed or rolled back, nothing of an activation stays on the
// host: no state directory, no GC root of the systems it handled.
func TestActivationLeavesNoState(t *testing.T) {
	f := newFleet(t, hosts("checked")...)
	h := f.Host("checked")
	c := guardedHost(f, "checked", 30)
	r := newRunner(t, map[string]*config.Host{"checked": c})
	if res := r.run("checked"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	if res := r.run("checked", "REBUILD_ACTION=test"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	c.Deployment.HealthChecks = map[string]config.HealthCheck{"no": {Cmd: ptr("false"), Status: 200, Timeout: 5, Interval: 1}}
	r = newRunner(t, map[string]*config.Host{"checked": c})
	if res := r.run("checked"); res.code != 3 || !strings.Contains(summaryLine(res, "checked"), "rolled back") {
		t.Fatalf("%s", res)
	}
	if left := sh(t, h, "ls -A /run/lollypops/activation; find /nix/var/nix/gcroots/auto -lname '/run/lollypops/*' -exec test -e {} ';' -print"); left != "" {
		t.Errorf("left on the host:\n%s", left)
	}
}

// A health check that needs longer than confirm-timeout (a service slow to
// serve) is given its time: the window is confirm-timeout plus the checks'
// worst case, and the host is confirmed, not rolled back.
func TestHealthChecksSlowerThanConfirmTimeout(t *testing.T) {
	f := newFleet(t, hosts("checked")...)
	h := f.Host("checked")
	c := guardedHost(f, "checked", 5)
	// Passes at the third attempt, 2 × 4 s after the first.
	c.Deployment.HealthChecks = map[string]config.HealthCheck{"slow": {
		Cmd:    ptr(`n=$(cat /root/attempts 2>/dev/null || echo 0); echo $((n + 1)) >/root/attempts; [ "$n" -ge 2 ]`),
		Status: 200, Timeout: 5, Retries: 3, Interval: 4,
	}}
	r := newRunner(t, map[string]*config.Host{"checked": c})
	res := r.run("checked")
	if res.code != 0 || !strings.Contains(res.output(), `health check "slow" passed`) {
		t.Fatalf("%s", res)
	}
	if !strings.Contains(res.output(), "unless confirmed within 37s of the activation's end") {
		t.Errorf("the window is not confirm-timeout plus the checks' worst case (5 + 4×5 + 3×4 s):\n%s", res)
	}
	if s := systemOf(t, h); s.kernel != deployedKernel {
		t.Errorf("not the new system: %+v", s)
	}
}

// A run whose deployer dies while its activation waits for the
// confirmation keeps every other run off the host until the guard is done
// (it rolls back): a second run neither switches the host under it nor is
// reverted by it.
func TestDeployLockCoversAWaitingGuard(t *testing.T) {
	f := newFleet(t, hosts("checked")...)
	h := f.Host("checked")
	before := systemOf(t, h)
	c := guardedHost(f, "checked", 5)
	c.Deployment.HealthChecks = map[string]config.HealthCheck{"slow": {Cmd: ptr("sleep 30"), Status: 200, Timeout: 8, Interval: 1}}
	r := newRunner(t, map[string]*config.Host{"checked": c})
	first := make(chan result, 1)
	var pgid int
	go func() {
		first <- r.runCtx(context.Background(), func(cmd *exec.Cmd) { pgid = cmd.Process.Pid }, "checked")
	}()
	waitActivated(t, h)
	// The first deployer dies, with its steps and its connection.
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-first

	second := newRunner(t, map[string]*config.Host{"checked": guardedHost(f, "checked", 30)})
	res := second.run("checked")
	if res.code != 3 || !strings.Contains(summaryLine(res, "checked"), "an activation by another run") ||
		!strings.Contains(res.output(), "is not finished: activated") {
		t.Fatalf("the second run was not refused while the first run's activation waited:\n%s", res)
	}
	// The guard rolls back by itself (window 5 + 8 s), then the host is
	// free again.
	eventually(t, "the first run's activation rolled back", func() bool {
		st := activationStates(t, h)
		return len(st) == 1 && strings.HasPrefix(st[0], "rolled-back no confirmation from the deployer within 13s")
	})
	if s := systemOf(t, h); s.current != before.current {
		t.Errorf("not rolled back: %s", s.current)
	}
	if res := second.run("checked"); res.code != 0 {
		t.Fatalf("after the rollback: %s", res)
	}
	if s := systemOf(t, h); s.kernel != deployedKernel || s.current != s.bootDefault {
		t.Errorf("the second run's system: %+v", s)
	}
}

// A guard that stops before its final state (killed by the OOM killer,
// systemctl stop) is finished by a recovery unit: the deployer's
// confirmation still counts.
func TestGuardKilledIsRecovered(t *testing.T) {
	f := newFleet(t, hosts("checked")...)
	h := f.Host("checked")
	c := guardedHost(f, "checked", 30)
	c.Deployment.HealthChecks = map[string]config.HealthCheck{"slow": {Cmd: ptr("sleep 3"), Status: 200, Timeout: 10, Interval: 1}}
	r := newRunner(t, map[string]*config.Host{"checked": c})
	done := r.start("checked")
	waitActivated(t, h)
	sh(t, h, "for u in /run/fakehost/units/lollypops-activation-*; do systemctl stop \"${u##*/}\"; done")
	res := <-done
	if res.code != 0 || !strings.Contains(res.output(), `stopped in state "activated" without finishing (killed, or out of memory); finishing it`) {
		t.Fatalf("%s", res)
	}
	if s := systemOf(t, h); s.kernel != deployedKernel || s.current != s.bootDefault {
		t.Errorf("not the new system, confirmed: %+v", s)
	}
}

// A reboot that lollypops makes empties /run/keys (a tmpfs): the secrets
// written before the activation are there again before the health checks.
func TestRebootRestoresTheSecretsItTook(t *testing.T) {
	f := newFleet(t, hosts("rebooted")...)
	h := f.Host("rebooted")
	c := rebootHost(f, "rebooted", 60, "test -s /run/keys/api && test -s /etc/keep")
	c.Secrets.Files = []config.Secret{
		secret("api", "echo api-key", "/run/keys/api"),
		secret("keep", "echo kept", "/etc/keep"),
	}
	r := newRunner(t, map[string]*config.Host{"rebooted": c})
	res := r.run("rebooted", "REBUILD_ACTION=boot")
	if res.code != 0 || !strings.Contains(res.output(), "the reboot took 1 secret with its tmpfs: writing them again") {
		t.Fatalf("%s", res)
	}
	if got := sh(t, h, "stat -c '%U %a' /run/keys/api; cat /run/keys/api"); got != "root 400\napi-key\n" {
		t.Errorf("secret after the reboot: %q", got)
	}
}

// Without rollback, an activation lollypops makes (here: local
// evaluation) runs under systemd-run too: a connection that drops in the
// middle of it does not cut switch-to-configuration short.
func TestUnguardedActivationSurvivesADroppedConnection(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	if err := h.SetActivationHook("touch /root/activating; sleep 3; touch /root/activated"); err != nil {
		t.Fatal(err)
	}
	c := host(f, "host1")
	c.Deployment.LocalEvaluation = true
	r := newRunner(t, map[string]*config.Host{"host1": c})
	done := r.start("host1")
	eventually(t, "the activation runs", func() bool { return sh(t, h, "ls /root") == "activating\n" })
	if err := h.KillSessions(); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.code != 0 || !strings.Contains(res.output(), "lost the connection to host1 during the activation") {
		t.Fatalf("%s", res)
	}
	if s := systemOf(t, h); s.kernel != deployedKernel || s.current != s.bootDefault || sh(t, h, "ls /root") != "activated\nactivating\n" {
		t.Errorf("the activation was cut short: %+v", s)
	}
}

// A host that reboots (or loses power) while its activation waits for the
// confirmation boots the system it booted before: the new one is the boot
// default only once confirmed.
func TestRebootBeforeTheConfirmationBootsThePreviousSystem(t *testing.T) {
	f := newFleet(t, hosts("checked")...)
	h := f.Host("checked")
	before := systemOf(t, h)
	c := guardedHost(f, "checked", 30)
	c.Deployment.HealthChecks = map[string]config.HealthCheck{"slow": {Cmd: ptr("sleep 20"), Status: 200, Timeout: 30, Interval: 1}}
	r := newRunner(t, map[string]*config.Host{"checked": c})
	done := r.start("checked")
	waitActivated(t, h)
	if s := systemOf(t, h); s.kernel != deployedKernel {
		t.Fatalf("the new system is not active: %+v", s)
	}
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.code != 3 {
		t.Errorf("a run whose host rebooted before the confirmation: %s", res)
	}
	after := systemOf(t, h)
	if after.current != before.current || after.bootDefault != before.bootDefault || !slices.Equal(after.gens, before.gens) {
		t.Errorf("after the reboot: %+v, want %+v", after, before)
	}
}

// A clock step after the switch (the new system starts timesyncd) neither
// rolls back at once nor postpones a rollback: the window is counted on
// the monotonic clock.
func TestWallClockStepDoesNotRollBack(t *testing.T) {
	f := newFleet(t, hosts("checked")...)
	h := f.Host("checked")
	// Once the activation waits for its confirmation, the host's date
	// jumps an hour ahead after its first call.
	sh(t, h, `cat >/run/wrappers/bin/date <<'EOF'
#!/bin/sh
if [ "$*" = +%s ] && grep -qx activated /run/lollypops/activation/*/status 2>/dev/null; then
	n=$(cat /root/date-calls 2>/dev/null || echo 0)
	echo $((n + 1)) >/root/date-calls
	if [ "$n" -gt 0 ]; then echo $(($(/bin/date +%s) + 3600)); exit 0; fi
fi
exec /bin/date "$@"
EOF
chmod 0755 /run/wrappers/bin/date`)
	c := guardedHost(f, "checked", 10)
	c.Deployment.HealthChecks = map[string]config.HealthCheck{"slow": {Cmd: ptr("sleep 2"), Status: 200, Timeout: 5, Interval: 1}}
	r := newRunner(t, map[string]*config.Host{"checked": c})
	if res := r.run("checked"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	if s := systemOf(t, h); s.kernel != deployedKernel || s.current != s.bootDefault {
		t.Errorf("not confirmed: %+v", s)
	}
}

// The previous systems are pinned while the guard waits: a garbage
// collection then (nix.gc, old generations deleted) cannot take the system
// a rollback returns to, even one that only runs (after a test) and is no
// generation, nor the generation it boots.
func TestGarbageCollectionDuringTheWait(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	dir := t.TempDir()
	flakes := map[string]string{}
	for name, pkgs := range map[string][]string{"tested": {"tested-1"}, "next": {"next-1"}} {
		src := filepath.Join(dir, name, "source")
		if err := fakehost.WriteFlake(src, map[string]fakehost.System{"host1": {Kernel: deployedKernel, Packages: pkgs}}); err != nil {
			t.Fatal(err)
		}
		p, err := storeAdd(src)
		if err != nil {
			t.Fatal(err)
		}
		flakes[name] = p
	}
	c := guardedHost(f, "host1", 10)
	c.Flake = flakes["tested"]
	r := newRunner(t, map[string]*config.Host{"host1": c})
	if res := r.run("host1", "REBUILD_ACTION=test"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	tested := systemOf(t, h)
	c.Flake = flakes["next"]
	c.Deployment.HealthChecks = map[string]config.HealthCheck{
		"a-collect": {Cmd: ptr("nix-collect-garbage -d >/dev/null 2>&1"), Status: 200, Timeout: 30, Interval: 1},
		"b-fail":    {Cmd: ptr("false"), Status: 200, Timeout: 5, Interval: 1},
	}
	r = newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("host1")
	if res.code != 3 || !strings.Contains(summaryLine(res, "host1"), `rolled back to the previous system: health check "b-fail" failed`) {
		t.Fatalf("%s", res)
	}
	if after := systemOf(t, h); after.current != tested.current || after.bootDefault != tested.bootDefault {
		t.Errorf("not back on the tested system: %+v, want %+v", after, tested)
	}
}
