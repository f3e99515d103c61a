package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// What real NixOS switches do, played by the fake hosts' knobs
// (docs/fakehosts.md), against the guarded activation (docs/activation.md).

// flakeOf writes a flake whose host1 (or name) is system, adds it to the
// deployer's store and returns its store path.
func flakeOf(t *testing.T, name string, system fakehost.System) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "source")
	if err := fakehost.WriteFlake(src, map[string]fakehost.System{name: system}); err != nil {
		t.Fatal(err)
	}
	p, err := storeAdd(src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// guardedWith is a guarded host deploying system.
func guardedWith(t *testing.T, f *fakehost.Fleet, name string, confirm int, system fakehost.System) *config.Host {
	c := guardedHost(f, name, confirm)
	c.Flake = flakeOf(t, name, system)
	return c
}

// newKernelActive is a health check: the deployed system (its kernel) is
// the running one.
var newKernelActive = config.HealthCheck{Cmd: ptr("grep -q " + deployedKernel + " /run/current-system/kernel"), Status: 200, Timeout: 5, Interval: 1}

// A switch that takes longer than confirm-timeout and restarts the network
// (every ssh session and the master die, new logins are refused for a few
// seconds): the deployer reconnects, waits for the activation to end, and
// only then checks and confirms — the window starts when the activation
// ends, on both sides.
func TestSlowSwitchRestartingTheNetwork(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	c := guardedWith(t, f, "host1", 5, fakehost.System{Kernel: deployedKernel, ActivationTime: 8 * time.Second, RestartNetwork: 3 * time.Second})
	c.Deployment.HealthChecks = map[string]config.HealthCheck{"active": newKernelActive}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("host1")
	if res.code != 0 || !strings.Contains(res.output(), "lost the connection to host1 during the activation") ||
		!strings.Contains(res.output(), `health check "active" passed`) {
		t.Fatalf("%s", res)
	}
	if s := systemOf(t, h); s.kernel != deployedKernel || s.current != s.bootDefault {
		t.Errorf("not the new system, confirmed: %+v", s)
	}
}

// A unit that fails in the switch (exit 4) leaves the decision to the
// health checks and is named; one that failed before the switch already
// does not count against it; a rollback whose only complaint is that same
// unit returns a degraded host, not a failed rollback.
func TestFailedUnits(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	c := guardedWith(t, f, "host1", 10, fakehost.System{Kernel: deployedKernel, FailUnits: []string{"new-thing.service"}})
	report := filepath.Join(t.TempDir(), "report.json")
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("--report", report, "host1")
	if line := summaryLine(res, "host1"); res.code != 0 || !strings.Contains(line, "rebuild (switch, activated in ") || !strings.Contains(line, ", failed: new-thing.service") {
		t.Fatalf("%s", res)
	}
	var rep struct {
		Hosts []struct {
			Activation struct {
				Action      string   `json:"action"`
				NewlyFailed []string `json:"newly_failed"`
				Units       struct {
					Failed []string `json:"failed"`
				} `json:"units"`
				DurationMS int64 `json:"duration_ms"`
			} `json:"activation"`
		} `json:"hosts"`
	}
	data, _ := os.ReadFile(report)
	if err := json.Unmarshal(data, &rep); err != nil || len(rep.Hosts) != 1 {
		t.Fatalf("report: %v %s", err, data)
	}
	if a := rep.Hosts[0].Activation; a.Action != "switch" || !slices.Equal(a.NewlyFailed, []string{"new-thing.service"}) ||
		!slices.Equal(a.Units.Failed, []string{"new-thing.service"}) {
		t.Errorf("report's activation: %+v", a)
	}

	// A flaky unit every system fails: failing before, not counted.
	if err := h.SetFailingUnits("flaky.service"); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	before := systemOf(t, h)
	c2 := guardedWith(t, f, "host1", 10, fakehost.System{Kernel: deployedKernel, Packages: []string{"other-1"}})
	c2.Deployment.HealthChecks = map[string]config.HealthCheck{"no": {Cmd: ptr("false"), Status: 200, Timeout: 5, Interval: 1}}
	r = newRunner(t, map[string]*config.Host{"host1": c2})
	res = r.run("host1")
	line := summaryLine(res, "host1")
	if res.code != 3 || !strings.Contains(line, `rolled back to the previous system: health check "no" failed`) ||
		!strings.Contains(line, "(it runs again, degraded: flaky.service") || strings.Contains(line, "rollback failed") {
		t.Fatalf("%s", res)
	}
	if !strings.Contains(res.output(), "failing before too: flaky.service") {
		t.Errorf("the unit that failed before is not named apart:\n%s", res)
	}
	if after := systemOf(t, h); after.current != before.current {
		t.Errorf("not rolled back: %+v", after)
	}
}

// A new init (switch-to-configuration's exit 100) activates nothing: the
// host fails saying it needs a reboot, unchanged; with reboot.enable it
// becomes the boot default and the host reboots into it.
func TestNewInitNeedsAReboot(t *testing.T) {
	f := newFleet(t, hosts("rebooted")...)
	h := f.Host("rebooted")
	before := systemOf(t, h)
	sys := fakehost.System{Kernel: deployedKernel, InitInterface: "systemd 3"}
	c := guardedWith(t, f, "rebooted", 10, sys)
	r := newRunner(t, map[string]*config.Host{"rebooted": c})
	res := r.run("rebooted")
	if res.code != 3 || !strings.Contains(summaryLine(res, "rebooted"), "needs a reboot") {
		t.Fatalf("%s", res)
	}
	if after := systemOf(t, h); after.current != before.current || after.bootDefault != before.bootDefault || !slices.Equal(after.gens, before.gens) {
		t.Errorf("changed: %+v -> %+v", before, after)
	}
	c.Deployment.Reboot = config.Reboot{Enable: true, Timeout: 60}
	c.Deployment.HealthChecks = map[string]config.HealthCheck{"active": newKernelActive}
	r = newRunner(t, map[string]*config.Host{"rebooted": c})
	res = r.run("rebooted")
	if res.code != 0 || !strings.Contains(summaryLine(res, "rebooted"), "rebuild (switch, rebooted)") {
		t.Fatalf("%s", res)
	}
	if s := systemOf(t, h); s.kernel != deployedKernel || booted(t, h) != s.current || s.bootDefault != s.current {
		t.Errorf("after the reboot: %+v", s)
	}
}

// Another switch holding switch-to-configuration's lock (stc-ng fails at
// once) is waited for; while the guard waits for the confirmation, it holds
// that lock itself, so no other switch slips in to be reverted.
func TestSwitchLock(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	release, err := h.HoldSwitchLock()
	if err != nil {
		t.Fatal(err)
	}
	// Released once the guard says it waits for it (a fixed delay would
	// end before a slow build does), and after a minute at the latest.
	go func() {
		defer release()
		for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			if out, _ := h.Exec(context.Background(), "sh", "-c", "grep -rl 'another switch-to-configuration holds its lock' /run/lollypops 2>/dev/null"); len(out) > 0 {
				time.Sleep(time.Second)
				return
			}
		}
	}()
	c := guardedHost(f, "host1", 10)
	c.Deployment.HealthChecks = map[string]config.HealthCheck{"held": {Cmd: ptr("! flock -n /run/nixos/switch-to-configuration.lock true"), Status: 200, Timeout: 5, Interval: 1}}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("host1")
	if res.code != 0 || !strings.Contains(res.output(), "another switch-to-configuration holds its lock") ||
		!strings.Contains(res.output(), `health check "held" passed`) {
		t.Fatalf("%s", res)
	}
}

// Pre-switch checks that refuse the new system: nothing is activated, and
// the hint says how to skip them; NIXOS_NO_CHECK=1 does.
func TestPreSwitchChecksRefuse(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	before := systemOf(t, h)
	c := guardedWith(t, f, "host1", 10, fakehost.System{Kernel: deployedKernel, PreSwitchCheckFails: true})
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("host1")
	if res.code != 3 || !strings.Contains(summaryLine(res, "host1"), "not activated: switch-to-configuration test exited 1 without activating anything") ||
		!strings.Contains(res.output(), "NIXOS_NO_CHECK=1 in lollypops' environment skips them") {
		t.Fatalf("%s", res)
	}
	if after := systemOf(t, h); after.current != before.current || !slices.Equal(after.gens, before.gens) {
		t.Errorf("changed: %+v", after)
	}
	r.env = append(r.env, "NIXOS_NO_CHECK=1")
	if res := r.run("host1"); res.code != 0 {
		t.Fatalf("with NIXOS_NO_CHECK=1: %s", res)
	}
}

// A boot loader the host does not have yet cannot be updated: the switch
// rolls back, naming --install-bootloader, which installs it.
func TestBootLoaderToInstall(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	before := systemOf(t, h)
	c := guardedWith(t, f, "host1", 10, fakehost.System{Kernel: deployedKernel, BootLoader: "systemd-boot"})
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("host1")
	if res.code != 3 || !strings.Contains(summaryLine(res, "host1"), "installing the boot loader failed") ||
		!strings.Contains(res.output(), "--install-bootloader") {
		t.Fatalf("%s", res)
	}
	if after := systemOf(t, h); after.current != before.current || after.bootDefault != before.bootDefault {
		t.Errorf("not rolled back: %+v", after)
	}
	if res := r.run("--install-bootloader", "host1"); res.code != 0 {
		t.Fatalf("with --install-bootloader: %s", res)
	}
	if s := systemOf(t, h); s.kernel != deployedKernel || s.bootDefault != s.current {
		t.Errorf("not switched: %+v", s)
	}
}

// New kernel modules for the same kernel (extraModulePackages) need a
// reboot as a new kernel does, as NixOS's system.autoUpgrade compares them:
// pending without reboot.enable, made with it.
func TestKernelModulesNeedAReboot(t *testing.T) {
	f := newFleet(t, hosts("samekernel")...)
	h := f.Host("samekernel")
	sys := fakehost.System{KernelModules: "zfs-2.2"}
	c := guardedWith(t, f, "samekernel", 10, sys)
	r := newRunner(t, map[string]*config.Host{"samekernel": c})
	res := r.run("samekernel")
	if res.code != 0 || !strings.Contains(summaryLine(res, "samekernel"), "reboot pending: the kernel modules changed") {
		t.Fatalf("%s", res)
	}
	boots := h.Boots()
	c.Deployment.Reboot = config.Reboot{Enable: true, Timeout: 60}
	r = newRunner(t, map[string]*config.Host{"samekernel": c})
	res = r.run("samekernel")
	if res.code != 0 || !strings.Contains(res.output(), "rebooting samekernel (the kernel modules changed)") || h.Boots() != boots+1 {
		t.Fatalf("%s", res)
	}
}

// A specialisation by name (--specialisation), and the one the host runs
// (keep-specialisation): it is what runs; the profile gets the system.
func TestSpecialisations(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	sys := fakehost.System{Kernel: deployedKernel, Specialisations: []string{"web"}}
	c := guardedWith(t, f, "host1", 10, sys)
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("--specialisation", "web", "host1")
	if res.code != 0 || !strings.Contains(summaryLine(res, "host1"), "rebuild (switch of specialisation web, activated in ") {
		t.Fatalf("%s", res)
	}
	// The profile's generation is the system, which runs (and, as with
	// nixos-rebuild --specialisation, boots) its specialisation.
	s := systemOf(t, h)
	spec := strings.TrimSpace(sh(t, h, "readlink -f /nix/var/nix/profiles/system/specialisation/web"))
	if s.current != spec || s.gens[len(s.gens)-1].Path == spec {
		t.Errorf("runs %s, want the specialisation %s of the profile's %s", s.current, spec, s.gens[len(s.gens)-1].Path)
	}
	// A new system that has "web" too: kept.
	c2 := guardedWith(t, f, "host1", 10, fakehost.System{Kernel: deployedKernel, Specialisations: []string{"web"}, Packages: []string{"next-1"}})
	c2.Deployment.Activation.KeepSpecialisation = true
	r = newRunner(t, map[string]*config.Host{"host1": c2})
	if res := r.run("host1"); res.code != 0 || !strings.Contains(summaryLine(res, "host1"), "of specialisation web") {
		t.Fatalf("%s", res)
	}
	s2 := systemOf(t, h)
	if spec2 := strings.TrimSpace(sh(t, h, "readlink -f /nix/var/nix/profiles/system/specialisation/web")); s2.current != spec2 || spec2 == spec {
		t.Errorf("runs %s, want the new system's specialisation %s", s2.current, spec2)
	}
}

// A reboot that systemd refuses fails the host at once with its message,
// instead of waiting reboot.timeout for a host that never went down.
func TestRefusedReboot(t *testing.T) {
	f := newFleet(t, hosts("rebooted")...)
	h := f.Host("rebooted")
	if err := h.SetRebootFails("Failed to reboot system via logind: Transaction is destructive."); err != nil {
		t.Fatal(err)
	}
	boots := h.Boots()
	r := newRunner(t, map[string]*config.Host{"rebooted": rebootHost(f, "rebooted", 300, bootedDeployed)})
	res := r.run("rebooted", "REBUILD_ACTION=boot")
	if res.code != 3 || !strings.Contains(summaryLine(res, "rebooted"), "the reboot was refused: Failed to reboot system via logind: Transaction is destructive.") {
		t.Fatalf("%s", res)
	}
	if strings.Contains(res.output(), "did not come back") || h.Boots() != boots {
		t.Errorf("waited for a reboot that never started:\n%s", res)
	}
}

// switch-to-configuration runs with systemd's umask (0022), not the
// guard's own (0077): the boot loader's files stay readable.
func TestSwitchUmask(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	if err := h.SetActivationHook("umask >/root/umask"); err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, map[string]*config.Host{"host1": guardedHost(f, "host1", 10)})
	if res := r.run("host1"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	if got := sh(t, h, "cat /root/umask"); got != "0022\n" {
		t.Errorf("umask %q", got)
	}
}

// The deployer's first look at the activation comes before the guard wrote
// anything (a loaded host): that is no lost connection, and the health
// checks still wait for the activation's end.
func TestFirstStatusReadBeforeTheGuardStarts(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	if err := h.SetUnitStartDelay(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	c := guardedHost(f, "host1", 10)
	c.Deployment.HealthChecks = map[string]config.HealthCheck{"active": newKernelActive}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("host1")
	if res.code != 0 || strings.Contains(res.output(), "lost the connection") {
		t.Fatalf("%s", res)
	}
	if s := systemOf(t, h); s.kernel != deployedKernel || s.current != s.bootDefault {
		t.Errorf("not the new system, confirmed: %+v", s)
	}
}
