package fakehost

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rebuild runs the host's nixos-rebuild over ssh.
func rebuild(t *testing.T, f *Fleet, host, args string) (string, int) {
	t.Helper()
	return sshRun(t, f, host, "nixos-rebuild "+args)
}

func wantFailedUnits(t *testing.T, h *Host, want ...string) {
	t.Helper()
	got, err := h.FailedUnits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("failed units: %q, want %q", got, want)
	}
}

// TestSwitch covers what a real switch does besides activating: slow
// activations, a network restart, failing and restarted units, the init
// interface, pre-switch checks, boot loaders, specialisations, the lock,
// refused reboots, and nixos-rebuild running switch-to-configuration
// through systemd-run.
func TestSwitch(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip("fakehost: " + err.Error())
	}
	ctx := context.Background()
	f, err := New(ctx, t.TempDir(), []HostSpec{{Name: "sw1"}, {Name: "sw2"}, {Name: "sw3"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	sw1, sw2, sw3 := f.Host("sw1"), f.Host("sw2"), f.Host("sw3")
	flake := addFlake(t, map[string]System{
		"sw1": {}, "sw2": {}, "sw3": {},
		"slow":     {ActivationTime: 1500 * time.Millisecond},
		"failing":  {FailUnits: []string{"flaky-app", "B-db.service"}},
		"restart":  {RestartUnits: []string{"worker.service", "app", "a_b"}},
		"check":    {PreSwitchCheckFails: true},
		"spec":     {Specialisations: []string{"gpu", "quiet"}},
		"sdboot":   {BootLoader: BootLoaderSystemdBoot},
		"sdboot2":  {BootLoader: BootLoaderSystemdBoot, Kernel: "k2"},
		"sdspec":   {BootLoader: BootLoaderSystemdBoot, Specialisations: []string{"gpu"}},
		"init3":    {InitInterface: "systemd 3"},
		"init3b":   {InitInterface: "systemd 3", Kernel: "k3"},
		"net":      {RestartNetwork: 2 * time.Second, ActivationTime: 3 * time.Second},
		"otherkrn": {Kernel: "k4"},
	})
	for _, h := range f.Hosts() {
		if out, err := nixCopy(f, "ssh://"+h.Name, flake); err != nil {
			t.Fatalf("nix copy: %v: %s", err, out)
		}
	}
	ref := func(name string) string { return "--flake path:" + flake + "#" + name }
	top := func(name string) string { return buildToplevel(t, flake, name) }
	switchTo := func(t *testing.T, h *Host, name string) {
		t.Helper()
		if out, code := rebuild(t, f, h.Name, "switch "+ref(name)); code != 0 {
			t.Fatalf("switch to %s: exit %d: %s", name, code, out)
		}
	}

	t.Run("activation time", func(t *testing.T) {
		if out, code := rebuild(t, f, "sw1", "test "+ref("sw1")); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		if a := lastActivation(t, sw1); a.End.Sub(a.Start) >= 1500*time.Millisecond {
			t.Fatalf("a default activation took %s", a.End.Sub(a.Start))
		}
		out, code := rebuild(t, f, "sw1", "test "+ref("slow"))
		if code != 0 || !strings.Contains(out, "activating the configuration...") {
			t.Fatalf("exit %d: %s", code, out)
		}
		if a := lastActivation(t, sw1); a.Exit != 0 || a.End.Sub(a.Start) < 1500*time.Millisecond || a.End.Sub(a.Start) > 20*time.Second {
			t.Errorf("activation: %+v (%s)", a, a.End.Sub(a.Start))
		}
	})

	t.Run("detached from the session", func(t *testing.T) {
		// nixos-rebuild runs switch-to-configuration through systemd-run:
		// the end of its ssh session does not end the activation.
		slow := top("slow")
		cmd := exec.Command("ssh", "-F", f.SSHConfig, "sw1", "nixos-rebuild test "+ref("slow"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the activation", func() bool {
			acts, _ := sw1.Activations()
			a := acts[len(acts)-1]
			return a.Toplevel == slow && a.End.IsZero()
		})
		if err := sw1.KillSessions(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil {
			t.Fatal("ssh survived KillSessions")
		}
		waitFor(t, "the activation's end", func() bool { return !lastActivation(t, sw1).End.IsZero() })
		a := lastActivation(t, sw1)
		if a.Exit != 0 || a.InvocationID == "" || a.Toplevel != slow || currentSystem(t, sw1) != slow {
			t.Errorf("activation %+v, current %s", a, currentSystem(t, sw1))
		}
		calls, _ := sw1.RebuildCalls()
		if c := calls[len(calls)-1]; c.Exit != -1 {
			t.Errorf("nixos-rebuild was not killed: %+v", c)
		}
	})

	t.Run("failing units", func(t *testing.T) {
		out, code := rebuild(t, f, "sw1", "switch "+ref("failing"))
		if code != 1 || !strings.Contains(out, "warning: the following units failed: B-db.service, flaky-app.service\n") ||
			!strings.Contains(out, "× flaky-app.service\n") || !strings.Contains(out, "Active: failed (Result: exit-code)") ||
			!strings.Contains(out, "warning: error(s) occurred while switching to the new configuration") {
			t.Fatalf("exit %d: %s", code, out)
		}
		if a := lastActivation(t, sw1); a.Exit != 4 {
			t.Errorf("switch-to-configuration: %+v", a)
		}
		if currentSystem(t, sw1) != top("failing") {
			t.Error("the system was not activated")
		}
		wantFailedUnits(t, sw1, "B-db.service", "flaky-app.service")
		if out, code := sshRun(t, f, "sw1", "systemctl is-failed flaky-app; systemctl is-active B-db.service"); code != 3 || out != "failed\nfailed\n" {
			t.Errorf("is-failed, is-active: exit %d: %q", code, out)
		}
		out, code = sshRun(t, f, "sw1", "systemctl --failed")
		want := "  UNIT              LOAD   ACTIVE SUB    DESCRIPTION\n" +
			"● B-db.service      loaded failed failed B-db.service\n" +
			"● flaky-app.service loaded failed failed flaky-app.service\n\n" +
			"LOAD   = Reflects whether the unit definition was properly loaded.\n" +
			"ACTIVE = The high-level unit activation state, i.e. generalization of SUB.\n" +
			"SUB    = The low-level unit activation state, values depend on unit type.\n" +
			"2 loaded units listed.\n"
		if code != 0 || out != want {
			t.Errorf("systemctl --failed: exit %d:\n%s\nwant:\n%s", code, out, want)
		}
		out, _ = sshRun(t, f, "sw1", "systemctl list-units --state=failed --no-legend --plain --type=service")
		if out != "B-db.service      loaded failed failed B-db.service\nflaky-app.service loaded failed failed flaky-app.service\n" {
			t.Errorf("list-units --plain: %q", out)
		}
		// systemctl reset-failed forgets them ...
		if out, code := sshRun(t, f, "sw1", "systemctl reset-failed; systemctl list-units --failed"); code != 0 ||
			out != "  UNIT LOAD ACTIVE SUB DESCRIPTION\n0 loaded units listed.\n" {
			t.Errorf("after reset-failed: exit %d: %q", code, out)
		}
		// ... and so does the next activation, as stc-ng's: a failed unit
		// of the old system is not a failure of the new one.
		if out, code := rebuild(t, f, "sw1", "test "+ref("failing")); code != 1 {
			t.Fatalf("exit %d: %s", code, out)
		}
		wantFailedUnits(t, sw1, "B-db.service", "flaky-app.service")
		switchTo(t, sw1, "sw1")
		wantFailedUnits(t, sw1)
	})

	t.Run("restarted units", func(t *testing.T) {
		// Sorted as stc-ng sorts units: by their lowercase names.
		out, code := rebuild(t, f, "sw1", "test "+ref("restart"))
		if code != 0 || !strings.Contains(out, "restarting the following units: a_b.service, app.service, worker.service\n") {
			t.Fatalf("exit %d: %s", code, out)
		}
		if out, code := sshRun(t, f, "sw1", "systemctl is-active app worker.service"); code != 0 || out != "active\nactive\n" {
			t.Errorf("is-active: exit %d: %q", code, out)
		}
		if out, _ := sshRun(t, f, "sw1", "systemctl status app"); !strings.HasPrefix(out, "● app.service\n") ||
			!strings.Contains(out, "Active: active (exited)") {
			t.Errorf("status: %q", out)
		}
		// try-restart restarts a running one, and counts it; reload is not
		// applicable to a unit without ExecReload=.
		if out, code := sshRun(t, f, "sw1", "systemctl try-restart -- app.service worker.service && cat /run/fakehost/units/app.service/restarts"); code != 0 || out != "x\n" {
			t.Errorf("try-restart: exit %d: %q", code, out)
		}
		if out, code := sshRun(t, f, "sw1", "systemctl reload app"); code != 3 ||
			out != "Failed to reload app.service: Job type reload is not applicable for unit app.service.\n" {
			t.Errorf("reload: exit %d: %q", code, out)
		}
		// A system without them stops them.
		out, code = rebuild(t, f, "sw1", "test "+ref("sw1"))
		if code != 0 || !strings.Contains(out, "stopping the following units: a_b.service, app.service, worker.service\n") {
			t.Fatalf("exit %d: %s", code, out)
		}
		if out, code := sshRun(t, f, "sw1", "systemctl is-active app"); code != 3 || out != "inactive\n" {
			t.Errorf("after: exit %d: %q", code, out)
		}
	})

	t.Run("pre-switch check", func(t *testing.T) {
		cur, boot := currentSystem(t, sw1), bootDefault(t, sw1)
		for _, action := range []string{"switch", "boot", "test", "dry-activate"} {
			out, code := rebuild(t, f, "sw1", action+" "+ref("check"))
			if code != 1 || !strings.Contains(out, "Pre-switch checks failed\n") {
				t.Errorf("%s: exit %d: %s", action, code, out)
			}
			if a := lastActivation(t, sw1); a.Exit != 1 || !slices.Equal(a.Args, []string{action}) {
				t.Errorf("%s: %+v", action, a)
			}
		}
		if currentSystem(t, sw1) != cur || bootDefault(t, sw1) != boot {
			t.Error("a refused switch changed the running system or the boot loader")
		}
		check := top("check")
		stc := check + "/bin/switch-to-configuration"
		if out, code := sshRun(t, f, "sw1", stc+" check"); code != 1 || out != "Pre-switch check 'fakehost' failed (System.PreSwitchCheckFails)\nPre-switch checks failed\n" {
			t.Errorf("check: exit %d: %q", code, out)
		}
		if out, code := sshRun(t, f, "sw1", "NIXOS_NO_CHECK=1 "+stc+" check && NIXOS_NO_CHECK=1 "+stc+" test"); code != 0 {
			t.Errorf("NIXOS_NO_CHECK=1: exit %d: %s", code, out)
		}
		if currentSystem(t, sw1) != check {
			t.Error("NIXOS_NO_CHECK=1 test did not activate")
		}
		switchTo(t, sw1, "sw1")
	})

	t.Run("switch lock", func(t *testing.T) {
		release, err := sw1.HoldSwitchLock()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sw1.HoldSwitchLock(); err == nil {
			t.Error("the lock was taken twice")
		}
		out, code := rebuild(t, f, "sw1", "test "+ref("slow"))
		if code != 1 || !strings.Contains(out, "Could not acquire lock\n") {
			t.Errorf("exit %d: %s", code, out)
		}
		if a := lastActivation(t, sw1); a.Exit != 11 {
			t.Errorf("switch-to-configuration: %+v", a)
		}
		if out, code := sshRun(t, f, "sw1", "/run/current-system/bin/switch-to-configuration test"); code != 11 || out != "Could not acquire lock\n" {
			t.Errorf("direct: exit %d: %q", code, out)
		}
		if err := release(); err != nil {
			t.Fatal(err)
		}
		if err := release(); err != nil {
			t.Errorf("second release: %v", err)
		}
		if out, code := rebuild(t, f, "sw1", "test "+ref("sw1")); code != 0 {
			t.Errorf("after release: exit %d: %s", code, out)
		}
	})

	t.Run("specialisations", func(t *testing.T) {
		spec := top("spec")
		gpu, quiet := readlink(t, spec+"/specialisation/gpu"), readlink(t, spec+"/specialisation/quiet")
		out, code := rebuild(t, f, "sw1", "switch -c gpu "+ref("spec"))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		gens, _ := sw1.Generations()
		g := gens[len(gens)-1]
		if !g.Current || g.Path != spec || currentSystem(t, sw1) != gpu {
			t.Errorf("profile %+v (want %s), current %s (want %s)", g, spec, currentSystem(t, sw1), gpu)
		}
		if a := lastActivation(t, sw1); a.Toplevel != gpu || a.Exit != 0 {
			t.Errorf("activation: %+v", a)
		}
		// The fake loader, as GRUB, boots the given system; the entries
		// list the specialisations.
		if bootDefault(t, sw1) != gpu {
			t.Errorf("boot default %s", bootDefault(t, sw1))
		}
		entries := execOut(t, sw1, "ls /boot/entries")
		n := "nixos-generation-" + strconv.Itoa(g.Number)
		if !strings.Contains(entries, n+"-specialisation-gpu\n") || !strings.Contains(entries, n+"-specialisation-quiet\n") {
			t.Errorf("entries: %s", entries)
		}
		if out, code := rebuild(t, f, "sw1", "test --specialisation quiet "+ref("spec")); code != 0 || currentSystem(t, sw1) != quiet {
			t.Errorf("test -c quiet: exit %d: %s", code, out)
		}
		if out, code := rebuild(t, f, "sw1", "boot -c gpu "+ref("spec")); code != 1 ||
			!strings.Contains(out, "error: ‘--specialisation’ can only be used with ‘switch’ and ‘test’") {
			t.Errorf("boot -c: exit %d: %s", code, out)
		}
		if out, code := rebuild(t, f, "sw1", "test -c nope "+ref("spec")); code != 1 ||
			!strings.Contains(out, "error: specialisation not found: nope") {
			t.Errorf("-c nope: exit %d: %s", code, out)
		}
		if currentSystem(t, sw1) != quiet {
			t.Error("a failed -c changed the system")
		}
		switchTo(t, sw1, "sw1")
	})

	t.Run("failing units on the host", func(t *testing.T) {
		if err := sw2.SetFailingUnits("flaky"); err != nil {
			t.Fatal(err)
		}
		out, code := rebuild(t, f, "sw2", "switch "+ref("otherkrn"))
		if code != 1 || !strings.Contains(out, "warning: the following units failed: flaky.service\n") {
			t.Fatalf("exit %d: %s", code, out)
		}
		wantFailedUnits(t, sw2, "flaky.service")
		// Any system, an older one too.
		if out, code := rebuild(t, f, "sw2", "switch --rollback"); code != 1 || lastActivation(t, sw2).Exit != 4 ||
			currentSystem(t, sw2) != top("sw2") {
			t.Errorf("rollback: exit %d: %s", code, out)
		}
		wantFailedUnits(t, sw2, "flaky.service")
		// And at boot, with the booted system's own.
		if out, code := rebuild(t, f, "sw2", "boot "+ref("failing")); code != 0 {
			t.Fatalf("boot: exit %d: %s", code, out)
		}
		if err := sw2.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := sw2.Start(); err != nil {
			t.Fatal(err)
		}
		wantFailedUnits(t, sw2, "B-db.service", "flaky-app.service", "flaky.service")
		if err := sw2.SetFailingUnits(); err != nil {
			t.Fatal(err)
		}
		switchTo(t, sw2, "sw2")
		wantFailedUnits(t, sw2)
	})

	t.Run("reboot fails", func(t *testing.T) {
		msg := `Failed to reboot system: Operation inhibited by "backup" (PID 812 "restic", user root), reason is "Backup in progress".`
		if err := sw2.SetRebootFails(msg); err != nil {
			t.Fatal(err)
		}
		boots := sw2.Boots()
		for _, c := range []string{"systemctl reboot", "reboot"} {
			if out, code := sshRun(t, f, "sw2", c); code != 1 || out != msg+"\n" {
				t.Errorf("%s: exit %d: %q", c, code, out)
			}
		}
		if sw2.Rebooting() || sw2.Boots() != boots {
			t.Error("the host rebooted")
		}
		if err := sw2.SetRebootFails(""); err != nil {
			t.Fatal(err)
		}
		sshRun(t, f, "sw2", "systemctl reboot")
		waitFor(t, "the reboot", func() bool { return sw2.Boots() == boots+1 && !sw2.Rebooting() })
	})

	t.Run("boot loader", func(t *testing.T) {
		if l, err := sw2.BootLoader(); err != nil || l != "" {
			t.Fatalf("boot loader %q, %v", l, err)
		}
		cur, boot, entries := currentSystem(t, sw2), bootDefault(t, sw2), execOut(t, sw2, "ls -l /boot/entries")
		out, code := rebuild(t, f, "sw2", "switch "+ref("sdboot"))
		if code != 1 || !strings.Contains(out, "Could not find any previously installed systemd-boot. If you are switching to systemd-boot from a different bootloader, you need to run `nixos-rebuild switch --install-bootloader`\n") ||
			!strings.Contains(out, "Failed to install bootloader\n") {
			t.Fatalf("exit %d: %s", code, out)
		}
		if a := lastActivation(t, sw2); a.Exit != 1 || a.InstallBootloader {
			t.Errorf("activation: %+v", a)
		}
		if currentSystem(t, sw2) != cur || bootDefault(t, sw2) != boot || execOut(t, sw2, "ls -l /boot/entries") != entries {
			t.Error("a failed boot loader install changed the system or /boot")
		}
		if l, _ := sw2.BootLoader(); l != "" {
			t.Errorf("boot loader %q", l)
		}
		// --install-bootloader: NIXOS_INSTALL_BOOTLOADER=1 for stc.
		out, code = rebuild(t, f, "sw2", "switch --install-bootloader "+ref("sdboot"))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		if a := lastActivation(t, sw2); !a.InstallBootloader || a.InvocationID == "" {
			t.Errorf("activation: %+v", a)
		}
		if l, _ := sw2.BootLoader(); l != BootLoaderSystemdBoot || bootDefault(t, sw2) != top("sdboot") {
			t.Errorf("boot loader %q, default %s", l, bootDefault(t, sw2))
		}
		switchTo(t, sw2, "sdboot2")
		if bootDefault(t, sw2) != top("sdboot2") {
			t.Errorf("default %s", bootDefault(t, sw2))
		}
		// systemd-boot makes only a generation the default: after
		// switch -c it keeps the previous one.
		switchTo(t, sw2, "sdspec")
		if out, code := rebuild(t, f, "sw2", "switch -c gpu "+ref("sdspec")); code != 0 || bootDefault(t, sw2) != top("sdspec") {
			t.Errorf("switch -c gpu: exit %d, default %s: %s", code, bootDefault(t, sw2), out)
		}
		// Back to the fake loader: an install again.
		if out, code := rebuild(t, f, "sw2", "switch "+ref("sw2")); code != 1 || !strings.Contains(out, "Failed to install bootloader\n") {
			t.Errorf("exit %d: %s", code, out)
		}
		if out, code := rebuild(t, f, "sw2", "switch --install-bootloader "+ref("sw2")); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		if l, _ := sw2.BootLoader(); l != "" || bootDefault(t, sw2) != top("sw2") {
			t.Errorf("boot loader %q, default %s", l, bootDefault(t, sw2))
		}
	})

	t.Run("init interface", func(t *testing.T) {
		cur, init3 := currentSystem(t, sw2), top("init3")
		warning := "Warning: the new NixOS configuration has an ‘init’ that is\nincompatible with the current configuration.  The new configuration\nwon't take effect until you reboot the system.\n"
		out, code := rebuild(t, f, "sw2", "switch "+ref("init3"))
		if code != 1 || !strings.Contains(out, warning) {
			t.Fatalf("exit %d: %s", code, out)
		}
		if a := lastActivation(t, sw2); a.Exit != 100 {
			t.Errorf("activation: %+v", a)
		}
		// Nothing was activated, but switch installed the boot loader.
		if currentSystem(t, sw2) != cur || bootDefault(t, sw2) != init3 {
			t.Errorf("current %s (want %s), boot %s (want %s)", currentSystem(t, sw2), cur, bootDefault(t, sw2), init3)
		}
		if out, code := rebuild(t, f, "sw2", "test "+ref("init3")); code != 1 || lastActivation(t, sw2).Exit != 100 {
			t.Errorf("test: exit %d: %s", code, out)
		}
		// Booted, it is the current system; switching between systems with
		// its init works.
		if err := sw2.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := sw2.Start(); err != nil {
			t.Fatal(err)
		}
		if currentSystem(t, sw2) != init3 {
			t.Fatalf("booted %s", currentSystem(t, sw2))
		}
		switchTo(t, sw2, "init3b")
		if out, code := rebuild(t, f, "sw2", "test "+ref("sw2")); code != 1 || lastActivation(t, sw2).Exit != 100 {
			t.Errorf("back: exit %d: %s", code, out)
		}
	})

	t.Run("network restart", func(t *testing.T) {
		net := top("net")
		port, key := sw3.Port, sw3.HostKey()
		// A session and a ControlMaster connection, both dropped by the
		// restart.
		session := exec.Command("ssh", "-F", f.SSHConfig, "sw3", "echo up; exec sleep 600")
		stdout, err := session.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := session.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := readLine(stdout); err != nil || line != "up" {
			t.Fatalf("session: %q, %v", line, err)
		}
		cp := filepath.Join(t.TempDir(), "cm")
		master := exec.Command("ssh", "-F", f.SSHConfig, "-o", "ControlMaster=yes", "-o", "ControlPath="+cp, "-N", "sw3")
		if err := master.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the master", func() bool {
			return exec.Command("ssh", "-F", f.SSHConfig, "-o", "ControlPath="+cp, "-O", "check", "sw3").Run() == nil
		})
		sessionDone, masterDone := make(chan error, 1), make(chan error, 1)
		go func() { sessionDone <- session.Wait() }()
		go func() { masterDone <- master.Wait() }()
		deploy := exec.Command("ssh", "-F", f.SSHConfig, "sw3", "nixos-rebuild switch "+ref("net"))
		if err := deploy.Start(); err != nil {
			t.Fatal(err)
		}
		var dropped time.Time
		select {
		case err := <-sessionDone:
			dropped = time.Now()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 255 {
				t.Errorf("the session ended with %v, want ssh's 255", err)
			}
		case <-time.After(60 * time.Second):
			session.Process.Kill()
			master.Process.Kill()
			deploy.Process.Kill()
			t.Fatal("the session was not dropped")
		}
		select {
		case <-masterDone:
		case <-time.After(10 * time.Second):
			master.Process.Kill()
			t.Error("the ControlMaster connection was not dropped")
		}
		if err := deploy.Wait(); err == nil {
			t.Error("the deploying session was not dropped")
		}
		if out, code := sshRun(t, f, "sw3", "true"); code != 255 || !strings.Contains(out, "Connection refused") {
			t.Errorf("during the restart: exit %d: %s", code, out)
		}
		// Init goes on serving requests while sshd is down.
		if out, err := sw3.Exec(ctx, "systemd-run", "-q", "--wait", "--pipe", "echo", "served"); err != nil || string(out) != "served\n" {
			t.Errorf("systemd-run while the network is down: %q, %v", out, err)
		}
		var up time.Time
		waitFor(t, "sshd again", func() bool {
			if _, code := sshRun(t, f, "sw3", "true"); code == 0 {
				up = time.Now()
				return true
			}
			return false
		})
		if d := up.Sub(dropped); d < 1500*time.Millisecond {
			t.Errorf("sshd was down for %s only", d)
		}
		if sw3.Port != port || sw3.HostKey() != key {
			t.Error("port or host key changed")
		}
		// The activation went on.
		waitFor(t, "the activation's end", func() bool { return !lastActivation(t, sw3).End.IsZero() })
		if a := lastActivation(t, sw3); a.Exit != 0 || currentSystem(t, sw3) != net {
			t.Errorf("activation %+v, current %s", a, currentSystem(t, sw3))
		}
	})
}
