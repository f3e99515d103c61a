package activation

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The state directory is made by root in a directory only root can
// change; anything else found in its place is refused, not used.
// Leftovers of other runs that are final, or whose guard never started,
// are removed; the run's own and running ones stay.
func TestPrepare(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	eachShell(t, func(t *testing.T, sh []string) {
		bin := t.TempDir()
		// systemctl: lollypops-activation-running is active.
		os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\n[ \"$3\" = lollypops-activation-running ]\n"), 0o755)
		run := func(root, id, runID string) (string, error) {
			argv := PrepareArgv(id, runID)
			argv[4], argv[5] = root, root+"/activation/"+id
			cmd := exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		base := t.TempDir()
		root := filepath.Join(base, "ok")
		if out, err := run(root, "abc", "me"); err != nil {
			t.Fatalf("%s %v", out, err)
		}
		for _, d := range []string{root, root + "/activation", root + "/activation/abc"} {
			if fi, err := os.Lstat(d); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
				t.Errorf("%s: %v %v", d, fi.Mode(), err)
			}
		}
		if b, _ := os.ReadFile(root + "/activation/abc/status"); string(b) != "starting\n" {
			t.Errorf("status %q", b)
		}
		if b, _ := os.ReadFile(root + "/activation/abc/run"); string(b) != "me\n" {
			t.Errorf("run %q", b)
		}
		if out, err := run(root, "abc", "me"); err == nil || !strings.Contains(out, "File exists") {
			t.Errorf("a second activation with the same id: %s %v", out, err)
		}
		// Leftovers: another run's final, never started and running
		// activations, and this run's.
		for id, st := range map[string]string{"final": "rolled-back x", "never": "starting", "running": "activated", "waiting": "starting", "mine": "confirmed"} {
			d := root + "/activation/" + id
			os.Mkdir(d, 0o700)
			os.WriteFile(d+"/status", []byte(st+"\n"), 0o600)
			owner := "other"
			if id == "mine" {
				owner = "me"
			}
			os.WriteFile(d+"/run", []byte(owner+"\n"), 0o600)
		}
		os.WriteFile(root+"/activation/running/status", []byte("starting\n"), 0o600) // its unit runs
		if out, err := run(root, "def", "me"); err != nil {
			t.Fatalf("%s %v", out, err)
		}
		for id, want := range map[string]bool{"final": false, "never": false, "waiting": false, "running": true, "mine": true, "abc": true, "def": true} {
			if _, err := os.Stat(root + "/activation/" + id); (err == nil) != want {
				t.Errorf("%s: kept %v, want %v", id, err == nil, want)
			}
		}
		for name, setup := range map[string]func(string){
			"writable by other users": func(p string) { os.Mkdir(p, 0o700); os.Chmod(p, 0o770) },
			"not owned by root":       func(p string) { os.Mkdir(p, 0o700); os.Chown(p, 65534, 65534) },
			"not a directory":         func(p string) { os.Symlink(t.TempDir(), p) },
		} {
			p := filepath.Join(base, strings.ReplaceAll(name, " ", "-"))
			setup(p)
			out, err := run(p, "abc", "me")
			if err == nil || !strings.Contains(out, name) {
				t.Errorf("%s: %s %v", name, out, err)
			}
		}
	})
}
