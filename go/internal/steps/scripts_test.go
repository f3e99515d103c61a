package steps

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/dev/shelltest"
)

// runScript runs argv (sh -c SCRIPT NAME ARGS...) under sh, with bin first
// on PATH; it returns stdout and stderr together, and the exit code.
func runScript(t *testing.T, sh []string, bin string, argv []string) (string, int) {
	t.Helper()
	if argv[0] != "sh" {
		t.Fatalf("argv %q", argv)
	}
	cmd := exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// rebuild.sh under each sh a host may have, with a stand-in for
// nixos-rebuild that prints NIXOS_NO_CHECK and its arguments.
func TestRebuildScriptShells(t *testing.T) {
	store, _ := filepath.Glob("/nix/store/*-source")
	if len(store) == 0 {
		t.Skip("no store path to link to here")
	}
	dir := filepath.Join(t.TempDir(), "it's $(x)")
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "nixos-rebuild"), []byte("#!/bin/sh\necho \"NIXOS_NO_CHECK=${NIXOS_NO_CHECK-}\"\nprintf '%s\\n' \"$@\"\n"), 0o755)
	os.Symlink(store[0], filepath.Join(dir, "flake"))
	shelltest.Each(t, func(t *testing.T, sh []string) {
		out, code := runScript(t, sh, bin, rebuildArgv(rebuildScript, dir, "switch", "web-1", "deploy/a b", "1", "--profile-name", "it's"))
		want := "NIXOS_NO_CHECK=1\nswitch\n--flake\npath:" + store[0] + "?dir=deploy/a b#web-1\n--profile-name\nit's\n"
		if code != 0 || out != want {
			t.Errorf("exit %d, output %q, want %q", code, out, want)
		}
		out, code = runScript(t, sh, bin, rebuildArgv(rebuildScript, dir, "boot", "web-1", ""))
		if want := "NIXOS_NO_CHECK=\nboot\n--flake\npath:" + store[0] + "#web-1\n"; code != 0 || out != want {
			t.Errorf("exit %d, output %q, want %q", code, out, want)
		}
		out, code = runScript(t, sh, bin, rebuildArgv(rebuildScript, filepath.Join(dir, "none"), "switch", "web-1", ""))
		if code != 1 || !strings.Contains(out, "run the task web-1:deploy-flake first") {
			t.Errorf("no link: exit %d, output %q", code, out)
		}
	})
}

// deployed.sh under each sh a host may have: one line for each link, empty
// for what does not resolve, none for a system that is not asked for.
func TestDeployedScriptShells(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "it's $(x)")
	target := filepath.Join(dir, "target")
	os.MkdirAll(target, 0o755)
	os.Symlink(target, filepath.Join(dir, "flake"))
	os.Symlink("flake", filepath.Join(dir, "system"))
	run := func(sh []string, link, sys string) (string, int) {
		return runScript(t, sh, dir, []string{"sh", "-c", deployedScript, "lollypops-deployed", link, sys})
	}
	shelltest.Each(t, func(t *testing.T, sh []string) {
		for _, c := range []struct{ link, sys, want string }{
			{"flake", "system", target + "\n" + target + "\n"},
			{"flake", "", target + "\n"},
			{"none", "system", "\n" + target + "\n"},
			{"flake", "none", target + "\n\n"},
		} {
			sys := c.sys
			if sys != "" {
				sys = filepath.Join(dir, sys)
			}
			if out, code := run(sh, filepath.Join(dir, c.link), sys); code != 0 || out != c.want {
				t.Errorf("%s %q: exit %d, output %q, want %q", c.link, c.sys, code, out, c.want)
			}
		}
	})
}

// manifest.sh under each sh a host may have: the checksum lines only;
// nothing, and success, for a manifest without any or for none at all.
func TestManifestScriptShells(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "it's $(x)")
	os.MkdirAll(dir, 0o755)
	full := filepath.Join(dir, "full")
	os.WriteFile(full, []byte("/run/keys/a\n/run/keys/b c\nsha256=aa /run/keys/a\nsha256=bb /run/keys/b c\n"), 0o600)
	bare := filepath.Join(dir, "bare")
	os.WriteFile(bare, []byte("/run/keys/a\n"), 0o600)
	shelltest.Each(t, func(t *testing.T, sh []string) {
		for _, c := range []struct{ file, want string }{
			{full, "sha256=aa /run/keys/a\nsha256=bb /run/keys/b c\n"},
			{bare, ""},
			{filepath.Join(dir, "none"), ""},
		} {
			out, code := runScript(t, sh, dir, []string{"sh", "-c", manifestScript, "lollypops-manifest", c.file})
			if code != 0 || out != c.want {
				t.Errorf("%s: exit %d, output %q, want %q", filepath.Base(c.file), code, out, c.want)
			}
		}
	})
	if got := manifestSums("sha256=aa /run/keys/a\nsha256=bb /run/keys/b c\n"); got["/run/keys/a"] != "aa" || got["/run/keys/b c"] != "bb" || len(got) != 2 {
		t.Errorf("manifestSums: %v", got)
	}
}
