package fakehost

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// addFlake writes a test flake with WriteFlake and adds it to the
// deployer's store, named "source" as Nix names a flake's copy.
func addFlake(t *testing.T, systems map[string]System) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "source")
	if err := WriteFlake(dir, systems); err != nil {
		t.Fatal(err)
	}
	return nixStoreAdd(t, dir)
}

// buildToplevel builds a configuration of a flake with the deployer's Nix.
func buildToplevel(t *testing.T, flake, name string) string {
	t.Helper()
	// Nix 2.8 has no --print-out-paths: read the out link.
	link := filepath.Join(t.TempDir(), "result")
	out, err := exec.Command("nix", "--extra-experimental-features", "nix-command flakes", "build", "--out-link", link,
		flake+"#nixosConfigurations."+name+".config.system.build.toplevel").CombinedOutput()
	if err != nil {
		t.Fatalf("nix build %s: %v: %s", name, err, out)
	}
	p, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sshRun runs a command on a host over ssh; it returns the combined output
// and the exit code (-1 when ssh did not run).
func sshRun(t *testing.T, f *Fleet, dest, command string) (string, int) {
	t.Helper()
	out, err := ssh(t, f, dest, command)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("ssh %s: %v", dest, err)
	return "", -1
}

func execOut(t *testing.T, h *Host, script string) string {
	t.Helper()
	out, err := h.Exec(context.Background(), "sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func currentSystem(t *testing.T, h *Host) string {
	t.Helper()
	p, err := h.CurrentSystem(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func bootDefault(t *testing.T, h *Host) string {
	t.Helper()
	p, err := h.BootDefault()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantGens checks the profile: paths of generations 1.. and the current one.
func wantGens(t *testing.T, h *Host, current int, paths ...string) {
	t.Helper()
	gens, err := h.Generations()
	if err != nil {
		t.Fatal(err)
	}
	var want []Generation
	for i, p := range paths {
		want = append(want, Generation{Number: i + 1, Path: p, Current: i+1 == current})
	}
	if !slices.Equal(gens, want) {
		t.Fatalf("generations:\n got %+v\nwant %+v", gens, want)
	}
}

func lastActivation(t *testing.T, h *Host) RebuildCall {
	t.Helper()
	acts, err := h.Activations()
	if err != nil || len(acts) == 0 {
		t.Fatalf("activations: %v %+v", err, acts)
	}
	return acts[len(acts)-1]
}

// TestSystem runs NixOS's deploy path on a fake host: a flake copied to
// the host, nixos-rebuild with each action, the profile, the boot loader,
// reboots, rollbacks, a failing activation, a system without sshd and a
// deployer-side nixos-rebuild --target-host.
func TestSystem(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip("fakehost: " + err.Error())
	}
	if _, err := lookTool("sudo"); err != nil {
		t.Skip("fakehost: sudo is not installed")
	}
	ctx := context.Background()
	f, err := New(ctx, t.TempDir(), []HostSpec{{Name: "sys1", NixDaemon: true,
		Users: []UserSpec{{Name: "deploy", Sudo: true, Trusted: true}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h := f.Host("sys1")
	flake := addFlake(t, map[string]System{
		"sys1":       {},
		"sys1-k2":    {Kernel: "k2", Packages: []string{"hello-2.12"}},
		"sys1-k3":    {Kernel: "k3"},
		"sys1-fail":  {FailActivation: true},
		"sys1-nossh": {StopSSHD: true},
		"sys1-local": {Packages: []string{"local-1.0"}},
	})
	sys1, k2, k3 := buildToplevel(t, flake, "sys1"), buildToplevel(t, flake, "sys1-k2"), buildToplevel(t, flake, "sys1-k3")
	// kernel and initrd link into store paths of their own, which systems
	// with the same kernel share, as on NixOS.
	links := func(top string) [2]string {
		var l [2]string
		for i, f := range []string{"kernel", "initrd"} {
			p, err := os.Readlink(filepath.Join(top, f))
			if err != nil {
				t.Fatal(err)
			}
			l[i] = p
		}
		return l
	}
	if l := links(sys1); !strings.HasSuffix(l[0], "-linux-6.6.30/bzImage") || !strings.HasSuffix(l[1], "-initrd-linux-6.6.30/initrd") {
		t.Errorf("sys1: kernel and initrd links %q", l)
	}
	if l := links(k2); !strings.HasSuffix(l[0], "-linux-k2/bzImage") {
		t.Errorf("sys1-k2: kernel link %q", l)
	}
	if a, b := links(sys1), links(buildToplevel(t, flake, "sys1-local")); a != b {
		t.Errorf("systems with the same kernel have different kernels: %q, %q", a, b)
	}
	ref := func(name string) string { return "path:" + flake + "#" + name }

	t.Run("bash is /bin/sh", func(t *testing.T) {
		got := execOut(t, h, `sh -c 'echo "$BASH_VERSION"'; dash -c 'echo "$BASH_VERSION"'; stat -L -c %d:%i /bin/sh /bin/bash`)
		l := strings.Split(got, "\n")
		if len(l) < 4 || l[0] == "" || l[1] == "" || l[2] != l[3] {
			t.Errorf("sh and dash in the host: %q", got)
		}
		out, code := sshRun(t, f, "deploy@sys1", `echo "$SHELL $BASH_VERSION" | cut -c1-40; getent passwd root | cut -d: -f7`)
		if code != 0 || !strings.HasPrefix(out, "/run/current-system/sw/bin/bash 5") || !strings.HasSuffix(out, "\n/run/current-system/sw/bin/bash\n") {
			t.Errorf("login shell: %q (exit %d)", out, code)
		}
		// The real machine keeps its /bin/sh.
		if out, _ := exec.Command("/bin/sh", "-c", `echo "$BASH_VERSION"`).Output(); f.tools.shTarget != f.tools.bash && string(out) != "\n" {
			t.Errorf("the real /bin/sh became bash: %q", out)
		}
	})

	t.Run("homes", func(t *testing.T) {
		if got := execOut(t, h, "stat -c '%a %U %G %n' /home/deploy /root"); got != "700 deploy deploy /home/deploy\n700 root root /root\n" {
			t.Errorf("homes: %q", got)
		}
	})

	t.Run("sudo", func(t *testing.T) {
		out, code := sshRun(t, f, "deploy@sys1", `command -v sudo; sudo -n sh -c 'echo "$PATH"; id -un; command -v nixos-rebuild'; sudo -n -l`)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		want := "/run/wrappers/bin/sudo\n" + sessionPath + "\nroot\n/run/current-system/sw/bin/nixos-rebuild\n"
		if !strings.HasPrefix(out, want) {
			t.Errorf("sudo:\n%s\nwant the start:\n%s", out, want)
		}
		for _, bad := range []string{"secure_path", "unable to resolve host"} {
			if strings.Contains(out, bad) {
				t.Errorf("sudo output has %q:\n%s", bad, out)
			}
		}
	})

	t.Run("first generation", func(t *testing.T) {
		// Built by the host from the same system.nix: the same path.
		wantGens(t, h, 1, sys1)
		booted, err := h.BootedSystem(ctx)
		if err != nil || booted != sys1 || currentSystem(t, h) != sys1 || bootDefault(t, h) != sys1 {
			t.Errorf("booted %q (%v), current %q, boot default %q, want %s", booted, err, currentSystem(t, h), bootDefault(t, h), sys1)
		}
		if out := execOut(t, h, "systemctl is-active sshd; cat /run/current-system/nixos-version"); out != "active\n24.05.fake\n" {
			t.Errorf("%q", out)
		}
	})

	if out, err := nixCopy(f, "ssh://sys1", flake); err != nil {
		t.Fatalf("nix copy: %v: %s", err, out)
	}

	t.Run("symlink reference", func(t *testing.T) {
		execOut(t, h, "mkdir -p /var/src/lollypops && ln -sfn "+flake+" /var/src/lollypops/flake")
		out, code := sshRun(t, f, "sys1", "nixos-rebuild switch --flake /var/src/lollypops/flake#sys1-k2")
		if code != 1 || !strings.Contains(out, "path '/var/src/lollypops/flake' is not a flake (because it's not a directory)") {
			t.Errorf("exit %d: %s", code, out)
		}
		calls, err := h.RebuildCalls()
		if err != nil || len(calls) != 1 || calls[0].Exit != 1 || calls[0].FlakeTarget != "" || calls[0].FlakeValid ||
			calls[0].Flake != "/var/src/lollypops/flake#sys1-k2" {
			t.Errorf("calls: %v %+v", err, calls)
		}
		wantGens(t, h, 1, sys1)
	})

	t.Run("switch", func(t *testing.T) {
		out, code := sshRun(t, f, "sys1", "nixos-rebuild switch --flake "+ref("sys1-k2"))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		wantGens(t, h, 2, sys1, k2)
		if currentSystem(t, h) != k2 || bootDefault(t, h) != k2 {
			t.Errorf("current %s, boot %s, want %s", currentSystem(t, h), bootDefault(t, h), k2)
		}
		if got := execOut(t, h, "cat /run/current-system/kernel; readlink /run/booted-system"); got != "k2\n"+sys1+"\n" {
			t.Errorf("kernel, booted: %q", got)
		}
		calls, _ := h.RebuildCalls()
		if c := calls[len(calls)-1]; c.FlakeTarget != flake || !c.FlakeValid || c.Exit != 0 || c.Flake != ref("sys1-k2") {
			t.Errorf("call: %+v", c)
		}
		if a := lastActivation(t, h); !slices.Equal(a.Args, []string{"switch"}) || a.Exit != 0 || a.User != "root" {
			t.Errorf("activation: %+v", a)
		}
	})

	t.Run("boot", func(t *testing.T) {
		if err := h.SetActivationHook("echo activated >>/root/hook.log"); err != nil {
			t.Fatal(err)
		}
		defer h.SetActivationHook("")
		if out, code := sshRun(t, f, "sys1", "nixos-rebuild boot --flake "+ref("sys1")); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		wantGens(t, h, 3, sys1, k2, sys1)
		if currentSystem(t, h) != k2 || bootDefault(t, h) != sys1 {
			t.Errorf("current %s (want %s), boot %s (want %s)", currentSystem(t, h), k2, bootDefault(t, h), sys1)
		}
		if got := execOut(t, h, "cat /root/hook.log 2>/dev/null || true"); got != "" {
			t.Errorf("boot activated: %q", got)
		}
		// test: activated, profile and boot loader untouched.
		if out, code := sshRun(t, f, "sys1", "nixos-rebuild test --flake "+ref("sys1-k3")); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		wantGens(t, h, 3, sys1, k2, sys1)
		if currentSystem(t, h) != k3 || bootDefault(t, h) != sys1 {
			t.Errorf("after test: current %s (want %s), boot %s", currentSystem(t, h), k3, bootDefault(t, h))
		}
		if got := execOut(t, h, "cat /root/hook.log"); got != "activated\n" {
			t.Errorf("hook: %q", got)
		}
	})

	t.Run("dry-activate and build", func(t *testing.T) {
		out, code := sshRun(t, f, "sys1", "nixos-rebuild dry-activate --flake "+ref("sys1-nossh"))
		if code != 0 || !strings.Contains(out, "would stop the following units: sshd.service") {
			t.Fatalf("exit %d: %s", code, out)
		}
		// In the host's own /root: /tmp is the machine's.
		out, code = sshRun(t, f, "sys1", "mkdir -p /root/build && cd /root/build && rm -f result && "+
			"nixos-rebuild build --flake "+ref("sys1-k2")+" && readlink result && rm result")
		if code != 0 || !strings.HasSuffix(out, k2+"\n") {
			t.Fatalf("build: exit %d: %s", code, out)
		}
		wantGens(t, h, 3, sys1, k2, sys1)
		if currentSystem(t, h) != k3 || bootDefault(t, h) != sys1 || !strings.Contains(execOut(t, h, "systemctl is-active sshd"), "active") {
			t.Error("dry-activate or build changed the host")
		}
	})

	t.Run("reboot", func(t *testing.T) {
		if err := h.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := h.Start(); err != nil {
			t.Fatal(err)
		}
		booted, err := h.BootedSystem(ctx)
		if err != nil || booted != sys1 || currentSystem(t, h) != sys1 {
			t.Errorf("after reboot: booted %s (%v), current %s, want %s", booted, err, currentSystem(t, h), sys1)
		}
		if out, err := h.Exec(ctx, "ls", "/run/keys"); err != nil || len(out) != 0 {
			t.Errorf("/run survived the reboot: %q %v", out, err)
		}
	})

	t.Run("rollback", func(t *testing.T) {
		// switch --rollback: the profile's previous generation, activated.
		if out, code := sshRun(t, f, "sys1", "nixos-rebuild switch --rollback"); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		wantGens(t, h, 2, sys1, k2, sys1)
		if currentSystem(t, h) != k2 || bootDefault(t, h) != k2 {
			t.Errorf("current %s, boot %s, want %s", currentSystem(t, h), bootDefault(t, h), k2)
		}
		// test --rollback: the generation before the current one, profile
		// and boot loader untouched.
		if out, code := sshRun(t, f, "sys1", "mkdir -p /root/build && cd /root/build && rm -f result && nixos-rebuild test --rollback"); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		wantGens(t, h, 2, sys1, k2, sys1)
		if currentSystem(t, h) != sys1 || bootDefault(t, h) != k2 {
			t.Errorf("current %s (want %s), boot %s (want %s)", currentSystem(t, h), sys1, bootDefault(t, h), k2)
		}
	})

	t.Run("failing activation", func(t *testing.T) {
		fail := buildToplevel(t, flake, "sys1-fail")
		out, code := sshRun(t, f, "sys1", "nixos-rebuild switch --flake "+ref("sys1-fail"))
		if code != 1 || !strings.Contains(out, "warning: error(s) occurred while switching to the new configuration") {
			t.Errorf("exit %d: %s", code, out)
		}
		if a := lastActivation(t, h); a.Exit != 2 || !slices.Equal(a.Args, []string{"switch"}) {
			t.Errorf("switch-to-configuration: %+v, want exit 2", a)
		}
		// The profile moved on, and so did /run/current-system.
		if currentSystem(t, h) != fail || bootDefault(t, h) != fail {
			t.Errorf("current %s, boot %s, want %s", currentSystem(t, h), bootDefault(t, h), fail)
		}
		if calls, _ := h.RebuildCalls(); calls[len(calls)-1].Exit != 1 {
			t.Errorf("recorded: %+v", calls[len(calls)-1])
		}
	})

	t.Run("stop sshd", func(t *testing.T) {
		// A session started before the switch finishes after it.
		long := exec.Command("ssh", "-F", f.SSHConfig, "sys1", "echo started; sleep 2; echo finished")
		stdout, err := long.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := long.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(stdout)
		if line, _ := r.ReadString('\n'); line != "started\n" {
			t.Fatalf("session: %q", line)
		}
		out, code := sshRun(t, f, "sys1", "nixos-rebuild switch --flake "+ref("sys1-nossh"))
		if code != 0 || !strings.Contains(out, "stopping the following units: sshd.service") {
			t.Fatalf("exit %d: %s", code, out)
		}
		if out, code := sshRun(t, f, "sys1", "true"); code != 255 || !strings.Contains(out, "Connection refused") {
			t.Errorf("new connection: exit %d: %s", code, out)
		}
		if line, _ := r.ReadString('\n'); line != "finished\n" {
			t.Errorf("the running session: %q", line)
		}
		if err := long.Wait(); err != nil {
			t.Errorf("the running session: %v", err)
		}
		// Back to a system with sshd, from the console.
		out2, err := h.Exec(ctx, "sh", "-c", "nixos-rebuild switch --flake "+ref("sys1")+" 2>&1")
		if err != nil || !strings.Contains(string(out2), "the following new units were started: sshd.service") {
			t.Fatalf("%v: %s", err, out2)
		}
		if out, code := sshRun(t, f, "sys1", "systemctl is-active sshd"); code != 0 || out != "active\n" {
			t.Errorf("after switching back: exit %d: %s", code, out)
		}
		// And from Go.
		if err := h.StopSSHD(); err != nil {
			t.Fatal(err)
		}
		if _, code := sshRun(t, f, "sys1", "true"); code != 255 {
			t.Errorf("StopSSHD: ssh exit %d", code)
		}
		if err := h.StartSSHD(); err != nil {
			t.Fatal(err)
		}
		if out, code := sshRun(t, f, "sys1", "true"); code != 0 {
			t.Errorf("StartSSHD: exit %d: %s", code, out)
		}
	})

	t.Run("local rebuild", func(t *testing.T) {
		bin, logs := t.TempDir(), t.TempDir()
		if err := WriteLocalRebuild(bin, logs); err != nil {
			t.Fatal(err)
		}
		before, _ := h.Generations()
		args := []string{"switch", "--flake", flake + "#sys1-local", "--target-host", "deploy@sys1", "--use-remote-sudo"}
		cmd := exec.Command(filepath.Join(bin, "nixos-rebuild"), args...)
		cmd.Env = append(os.Environ(), "NIX_SSHOPTS=-F "+f.SSHConfig)
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...).CombinedOutput(); err == nil {
			t.Fatalf("without NIX_SSHOPTS the host is unknown, yet: %s", out)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("local nixos-rebuild: %v: %s", err, out)
		}
		local := buildToplevel(t, flake, "sys1-local")
		calls, err := ReadLocalRebuildCalls(logs)
		if err != nil || len(calls) != 2 {
			t.Fatalf("local calls: %+v, %v", calls, err)
		}
		c := calls[1]
		if !slices.Equal(c.Args, args) || c.TargetHost != "deploy@sys1" || !c.RemoteSudo || c.Action != "switch" ||
			c.NixSSHOpts != "-F "+f.SSHConfig || !strings.HasSuffix(c.SSH, "/ssh") || c.Exit != 0 || c.Toplevel != local {
			t.Errorf("local call: %+v", c)
		}
		if calls[0].Exit == 0 || calls[0].Toplevel != local {
			t.Errorf("first call: %+v", calls[0])
		}
		gens, _ := h.Generations()
		if len(gens) != len(before)+1 || !gens[len(gens)-1].Current || gens[len(gens)-1].Path != local {
			t.Errorf("generations: %+v", gens)
		}
		if currentSystem(t, h) != local || bootDefault(t, h) != local {
			t.Errorf("current %s, boot %s, want %s", currentSystem(t, h), bootDefault(t, h), local)
		}
		// The closure came along: the package is in the host's store.
		if out := execOut(t, h, "cat /run/current-system/fakehost/packages | xargs -I{} cat {}/share/name"); out != "local-1.0\n" {
			t.Errorf("package: %q", out)
		}
		if a := lastActivation(t, h); a.User != "root" || !slices.Equal(a.Args, []string{"switch"}) || a.Exit != 0 {
			t.Errorf("activation: %+v", a)
		}
	})
}
