package fakehost

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readlink is os.Readlink or a fatal error.
func readlink(t *testing.T, p string) string {
	t.Helper()
	l, err := os.Readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSystemShape checks the toplevel's new parts without a host:
// kernel-modules, init-interface-version and specialisations.
func TestSystemShape(t *testing.T) {
	if _, err := exec.LookPath("nix"); err != nil {
		t.Skip("no nix")
	}
	flake := addFlake(t, map[string]System{
		"base": {},
		"mods": {KernelModules: "nvidia-550"},
		"k2":   {Kernel: "k2"},
		"spec": {Specialisations: []string{"gpu", "quiet"}, InitInterface: "systemd 3"},
	})
	base, mods, k2, spec := buildToplevel(t, flake, "base"), buildToplevel(t, flake, "mods"),
		buildToplevel(t, flake, "k2"), buildToplevel(t, flake, "spec")

	t.Run("kernel modules", func(t *testing.T) {
		// A store path of its own, named as NixOS names it, shared by
		// systems with the same kernel and modules.
		bm, mm := readlink(t, filepath.Join(base, "kernel-modules")), readlink(t, filepath.Join(mods, "kernel-modules"))
		if !strings.HasSuffix(bm, "-linux-6.6.30-modules") || !strings.HasSuffix(mm, "-linux-6.6.30-modules") || bm == mm {
			t.Errorf("kernel-modules: base %s, mods %s", bm, mm)
		}
		if got := readFile(t, filepath.Join(mm, "lib/modules/6.6.30/modules.fake")); got != "nvidia-550\n" {
			t.Errorf("modules: %q", got)
		}
		// New modules, same kernel and initrd: a deployer sees that only the
		// modules changed.
		for _, f := range []string{"kernel", "initrd"} {
			if a, b := readlink(t, filepath.Join(base, f)), readlink(t, filepath.Join(mods, f)); a != b {
				t.Errorf("%s differs: %s, %s", f, a, b)
			}
		}
		if km := readlink(t, filepath.Join(k2, "kernel-modules")); !strings.HasSuffix(km, "-linux-k2-modules") {
			t.Errorf("k2: %s", km)
		}
		if bm != readlink(t, filepath.Join(spec, "kernel-modules")) {
			t.Error("two systems with the same kernel and modules have different kernel-modules")
		}
	})

	t.Run("init interface", func(t *testing.T) {
		if got := readFile(t, filepath.Join(base, "init-interface-version")); got != "systemd 2" {
			t.Errorf("base: %q", got)
		}
		if got := readFile(t, filepath.Join(spec, "init-interface-version")); got != "systemd 3" {
			t.Errorf("spec: %q", got)
		}
	})

	t.Run("specialisations", func(t *testing.T) {
		if ents, err := os.ReadDir(filepath.Join(base, "specialisation")); err != nil || len(ents) != 0 {
			t.Errorf("base specialisation/: %v %v", ents, err)
		}
		if _, err := os.Stat(filepath.Join(base, "fakehost/specialisation")); !os.IsNotExist(err) {
			t.Errorf("base has a specialisation marker: %v", err)
		}
		for _, name := range []string{"gpu", "quiet"} {
			s := readlink(t, filepath.Join(spec, "specialisation", name))
			if !strings.HasPrefix(s, "/nix/store/") || s == spec {
				t.Fatalf("%s: %s", name, s)
			}
			if got := readFile(t, filepath.Join(s, "fakehost/specialisation")); got != name+"\n" {
				t.Errorf("%s: marker %q", name, got)
			}
			// A toplevel of its own, with the parent's settings and no
			// specialisations of its own.
			if got := readFile(t, filepath.Join(s, "init-interface-version")); got != "systemd 3" {
				t.Errorf("%s: init interface %q", name, got)
			}
			if ents, err := os.ReadDir(filepath.Join(s, "specialisation")); err != nil || len(ents) != 0 {
				t.Errorf("%s: specialisation/ %v %v", name, ents, err)
			}
			if _, err := os.Stat(filepath.Join(s, "bin/switch-to-configuration")); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}
