package e2e

import (
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// rebootHost is a host with reboot enabled (timeout in seconds) and a
// health check "booted", a command on the host.
func rebootHost(f *fakehost.Fleet, name string, timeout int, check string) *config.Host {
	c := host(f, name)
	c.Deployment.Rollback.Enable = true
	c.Deployment.Reboot = config.Reboot{Enable: true, Timeout: timeout}
	c.Deployment.HealthChecks = map[string]config.HealthCheck{
		"booted": {Cmd: ptr(check), Status: 200, Timeout: 10, Retries: 0, Interval: 1},
	}
	return c
}

// bootedDeployed is a health check: the host booted the system it runs,
// the deployed one.
const bootedDeployed = `test "$(readlink /run/booted-system)" = "$(readlink /run/current-system)" && grep -q ` + deployedKernel + ` /run/current-system/kernel`

func booted(t *testing.T, h *fakehost.Host) string {
	t.Helper()
	b, err := h.BootedSystem(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// REBUILD_ACTION=boot with reboot enabled: the new generation becomes the
// boot default, the host reboots into it, lollypops waits until it runs
// it, then runs the health checks; the summary says it rebooted.
func TestRebootAfterBoot(t *testing.T) {
	f := newFleet(t, hosts("rebooted")...)
	h := f.Host("rebooted")
	before, boots := systemOf(t, h), h.Boots()
	c := rebootHost(f, "rebooted", 60, bootedDeployed)
	// The run holds the host's deploy lock again after the reboot.
	c.Deployment.HealthChecks["locked"] = config.HealthCheck{Cmd: ptr("test -s /run/lollypops/holder"), Status: 200, Timeout: 10, Interval: 1}
	r := newRunner(t, map[string]*config.Host{"rebooted": c})
	res := r.run("rebooted", "REBUILD_ACTION=boot")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	if n := h.Boots(); n != boots+1 {
		t.Errorf("%d boots, want %d", n, boots+1)
	}
	after := systemOf(t, h)
	if len(after.gens) != len(before.gens)+1 {
		t.Fatalf("generations: %+v -> %+v", before.gens, after.gens)
	}
	newSys := after.gens[len(after.gens)-1].Path
	if after.current != newSys || booted(t, h) != newSys || after.bootDefault != newSys || after.kernel != deployedKernel {
		t.Errorf("after the reboot: %+v, booted %s; want %s", after, booted(t, h), newSys)
	}
	// boot does not activate: the only activations are the boot itself and
	// the new boot's.
	if acts := activations(t, h); len(acts) != 1 || acts[0] != "boot" {
		t.Errorf("activations: %q", acts)
	}
	out := res.output()
	back := strings.Index(out, "[rebooted:rebuild] rebooted is back with the new system after ")
	check := strings.Index(out, `[rebooted:rebuild] health check "booted" passed`)
	if !strings.Contains(out, "[rebooted:rebuild] rebooting rebooted (REBUILD_ACTION=boot); waiting up to 1m0s for it to come back") ||
		back < 0 || check < back {
		t.Errorf("no reboot, then health checks:\n%s", res)
	}
	if line := summaryLine(res, "rebooted"); !strings.Contains(line, "rebuild (boot, rebooted)") {
		t.Errorf("summary: %q\n%s", line, res)
	}
}

// A host that does not come back within reboot.timeout fails, with one
// line that says so and a hint.
func TestRebootTimeout(t *testing.T) {
	f := newFleet(t, hosts("rebooted")...)
	h := f.Host("rebooted")
	boots := h.Boots()
	h.HangNextBoot()
	r := newRunner(t, map[string]*config.Host{"rebooted": rebootHost(f, "rebooted", 10, bootedDeployed)})
	res := r.run("rebooted", "REBUILD_ACTION=boot")
	if res.code != 3 {
		t.Fatalf("want exit 3: %s", res)
	}
	want := "rebuild: did not come back with the new system within 10s after the reboot"
	if line := summaryLine(res, "rebooted"); !strings.Contains(line, want) {
		t.Errorf("summary %q lacks %q\n%s", line, want, res)
	}
	if !strings.Contains(res.output(), "[rebooted:rebuild] lollypops: hint: check the host's console; lollypops.deployment.reboot.timeout sets how long to wait") {
		t.Errorf("no hint:\n%s", res)
	}
	if strings.Contains(res.output(), `health check "booted"`) {
		t.Errorf("health checks ran on a host that is down:\n%s", res)
	}
	if n := h.Boots(); n != boots {
		t.Errorf("the host booted (%d boots, want %d)", n, boots)
	}
	// Powered on again, it boots the new system.
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	if s := systemOf(t, h); s.kernel != deployedKernel || s.current != s.bootDefault {
		t.Errorf("after a start: %+v", s)
	}
}

// A switch reboots only when the kernel or initrd changed: samekernel's
// new system keeps the kernel the host booted, rebooted's has another.
// The health checks run under the guard, on the kernel the host booted,
// and again after a reboot.
func TestRebootOnlyWhenTheKernelChanged(t *testing.T) {
	f := newFleet(t, hosts("samekernel", "rebooted")...)
	same, changed := f.Host("samekernel"), f.Host("rebooted")
	bootsSame, bootsChanged := same.Boots(), changed.Boots()
	r := newRunner(t, map[string]*config.Host{
		"samekernel": rebootHost(f, "samekernel", 60, "cat /run/current-system/kernel"),
		"rebooted":   rebootHost(f, "rebooted", 60, "cat /run/current-system/kernel"),
	})
	res := r.run("-p", "samekernel", "rebooted")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	if n := same.Boots(); n != bootsSame {
		t.Errorf("samekernel rebooted (%d boots, want %d)", n, bootsSame)
	}
	if s := systemOf(t, same); s.gens[len(s.gens)-1].Path != s.current || booted(t, same) == s.current {
		t.Errorf("samekernel: %+v, booted %s", s, booted(t, same))
	}
	if line := summaryLine(res, "samekernel"); !strings.Contains(line, "rebuild (switch, activated in ") || strings.Contains(line, "rebooted") {
		t.Errorf("samekernel: summary %q\n%s", line, res)
	}
	if strings.Contains(res.output(), "rebooting samekernel") {
		t.Errorf("samekernel rebooted:\n%s", res)
	}

	if n := changed.Boots(); n != bootsChanged+1 {
		t.Errorf("rebooted: %d boots, want %d", n, bootsChanged+1)
	}
	if s := systemOf(t, changed); s.kernel != deployedKernel || booted(t, changed) != s.current {
		t.Errorf("rebooted: %+v, booted %s", s, booted(t, changed))
	}
	out := res.output()
	reboot := strings.Index(out, "[rebooted:rebuild] rebooting rebooted (the kernel, initrd and kernel modules changed)")
	back := strings.Index(out, "[rebooted:rebuild] rebooted is back with the new system after ")
	check := strings.LastIndex(out, `[rebooted:rebuild] health check "booted" passed`)
	if reboot < 0 || back < reboot || check < back || strings.Count(out, `[rebooted:rebuild] health check "booted" passed`) != 2 {
		t.Errorf("want health checks under the guard, a reboot for the new kernel, health checks again:\n%s", res)
	}
	if line := summaryLine(res, "rebooted"); !strings.Contains(line, "rebuild (switch, activated in ") || !strings.HasSuffix(line, ", rebooted)") {
		t.Errorf("rebooted: summary %q\n%s", line, res)
	}
}
