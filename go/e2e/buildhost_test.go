package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
)

// A third host builds (lollypops.deployment.build-host): the system is
// evaluated here, built in the build host's store, copied from there to
// each target and activated under the guard. Two targets share the build
// host's one connection. --build-host overrides the option's user for the
// run and keeps its ssh options.
func TestBuildHost(t *testing.T) {
	f := newFleet(t, hosts("built", "host3", "host2", "builder")...)
	inv := map[string]*config.Host{}
	for _, n := range []string{"built", "host3"} {
		c := host(f, n)
		c.Deployment.Rollback.Enable = true
		c.Deployment.BuildHost = &config.BuildHost{Host: "builder", User: ptr("nobody"),
			Opts: []string{"-F", f.SSHConfig}, HostKeyPolicy: config.HostKeyStrict}
		inv[n] = c
	}
	r := newRunner(t, inv)
	res := r.run("-p", "built", "host3", "--build-host", "root@builder")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	builder := f.Host("builder")
	for _, n := range []string{"built", "host3"} {
		h := f.Host(n)
		s := systemOf(t, h)
		if s.kernel != deployedKernel || len(s.gens) != 2 || s.gens[1].Path != s.current || s.bootDefault != s.current {
			t.Errorf("%s runs %+v", n, s)
		}
		if calls, _ := h.RebuildCalls(); len(calls) != 0 {
			t.Errorf("%s: nixos-rebuild ran on the host: %+v", n, calls)
		}
		// Built on the build host, where its derivation and build log
		// are; the target only received it.
		drv := strings.TrimSpace(sh(t, builder, "nix-store -q --deriver "+s.current))
		if !strings.HasSuffix(drv, ".drv") {
			t.Errorf("%s: deriver on the build host: %q", n, drv)
		}
		sh(t, builder, "nix-store --check-validity "+drv+" && nix-store --read-log "+s.current+" >/dev/null")
		if _, err := h.Exec(t.Context(), "nix-store", "--read-log", s.current); err == nil {
			t.Errorf("%s: the system has a build log on the target: built there", n)
		}
		// Evaluated here: the derivation is in the deployer's store.
		if err := exec.Command("nix-store", "--check-validity", drv).Run(); err != nil {
			t.Errorf("%s: %s is not in the deployer's store: %v", n, drv, err)
		}
		if n == "built" {
			// No other test builds this system: not built here.
			if err := exec.Command("nix-store", "--check-validity", s.current).Run(); err == nil {
				t.Errorf("%s: the system is in the deployer's store", n)
			}
		}
	}
	if !strings.Contains(res.output(), "building the system of built on build host root@builder") {
		t.Errorf("not built on the build host:\n%s", res)
	}
	// One connection to the build host for both targets, and the GC roots
	// it held for them gone.
	if n := authCount(t, builder); n != 1 {
		t.Errorf("%d ssh authentications on the build host, want 1", n)
	}
	if left := sh(t, builder, "ls -d /tmp/lollypops-build.* 2>/dev/null || true"); left != "" {
		t.Errorf("left on the build host: %s", left)
	}

	// The diff builds as the rebuild does.
	res = r.run("built:diff", "--build-host", "root@builder")
	if res.code != 0 || !strings.Contains(res.output(), "building the system of built on build host root@builder") {
		t.Errorf("diff:\n%s", res)
	}

	// A build that fails fails its target alone, with nix's last line;
	// a system the build host has already built is not built again.
	sh(t, builder, "echo 'build-users-group = lollypops-no-such-group' >> /etc/nix/nix.conf")
	two := host(f, "host2")
	two.Deployment.BuildHost = inv["built"].Deployment.BuildHost
	inv["host2"] = two
	res = newRunner(t, inv).run("-p", "built", "host2", "--build-host", "root@builder")
	if res.code == 0 || !strings.HasPrefix(summaryLine(res, "host2"), "host2 failed") || !strings.HasPrefix(summaryLine(res, "built"), "built ok") {
		t.Fatalf("%s", res)
	}
	if !strings.Contains(summaryLine(res, "host2"), "rebuild: build host root@builder: building the system: ") ||
		!strings.Contains(summaryLine(res, "host2"), "lollypops-no-such-group") {
		t.Errorf("the failed build's summary:\n%s", res)
	}
	delete(inv, "host2")

	// A build host that cannot be reached fails the hosts it builds for,
	// naming it; a host without one goes on.
	if err := builder.StopSSHD(); err != nil {
		t.Fatal(err)
	}
	inv["built"].Deployment.BuildHost.User = ptr("root")
	inv["host3"].Deployment.BuildHost = nil
	res = newRunner(t, inv).run("-p", "built", "host3")
	if res.code == 0 || !strings.HasPrefix(summaryLine(res, "built"), "built failed") || !strings.HasPrefix(summaryLine(res, "host3"), "host3 ok") {
		t.Fatalf("%s", res)
	}
	if !strings.Contains(res.output(), "build host: cannot connect to root@builder") {
		t.Errorf("the error does not name the build host:\n%s", res)
	}
}
