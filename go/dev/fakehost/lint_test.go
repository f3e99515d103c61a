package fakehost

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestShellcheck lints the system's scripts with shellcheck (skipped
// without it): each file as it is, and each program as build.sh assembles
// it (the shebang, systemConfig=, lib.sh, the script), which is what runs.
func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed (apt-get install shellcheck)")
	}
	dir := t.TempDir()
	if err := writeSystemFiles(dir); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.sh"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	if out, err := exec.Command(sc, append([]string{"-s", "bash"}, files...)...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck -s bash system/*.sh: %v\n%s", err, out)
	}
	lib, err := os.ReadFile(filepath.Join(dir, "lib.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"switch-to-configuration", "activate", "nixos-rebuild", "systemctl", "systemd-run", "journalctl"} {
		body, err := os.ReadFile(filepath.Join(dir, name+".sh"))
		if err != nil {
			t.Fatal(err)
		}
		// Not every program uses every function of lib.sh (SC2317) or
		// systemConfig (a directive here; build.sh writes none).
		cmd := exec.Command(sc, "-s", "bash", "-e", "SC2317", "-")
		cmd.Stdin = strings.NewReader("#!/bin/bash\n# shellcheck disable=SC2034\nsystemConfig=/nix/store/00000000000000000000000000000000-nixos-system\n" +
			string(lib) + string(body))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s as build.sh writes it: %v\n%s", name, err, out)
		}
	}
	// WriteLocalRebuild's script.
	local := filepath.Join(dir, "bin")
	if err := WriteLocalRebuild(local, filepath.Join(dir, "log")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sc, "-s", "bash", filepath.Join(local, "nixos-rebuild")).CombinedOutput(); err != nil {
		t.Errorf("WriteLocalRebuild's nixos-rebuild: %v\n%s", err, out)
	}
}
