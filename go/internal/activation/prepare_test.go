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
func TestPrepare(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	run := func(root string) (string, error) {
		argv := PrepareArgv("abc")
		argv[4], argv[5] = root, root+"/activation/abc"
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		return string(out), err
	}
	base := t.TempDir()
	root := filepath.Join(base, "ok")
	if out, err := run(root); err != nil {
		t.Fatalf("%s %v", out, err)
	}
	for _, d := range []string{root, root + "/activation", root + "/activation/abc"} {
		if fi, err := os.Lstat(d); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
			t.Errorf("%s: %v %v", d, fi.Mode(), err)
		}
	}
	if out, err := run(root); err == nil || !strings.Contains(out, "File exists") {
		t.Errorf("a second activation with the same id: %s %v", out, err)
	}
	for name, setup := range map[string]func(string){
		"writable by other users": func(p string) { os.Mkdir(p, 0o700); os.Chmod(p, 0o770) },
		"not owned by root":       func(p string) { os.Mkdir(p, 0o700); os.Chown(p, 65534, 65534) },
		"not a directory":         func(p string) { os.Symlink(t.TempDir(), p) },
	} {
		p := filepath.Join(base, strings.ReplaceAll(name, " ", "-"))
		setup(p)
		out, err := run(p)
		if err == nil || !strings.Contains(out, name) {
			t.Errorf("%s: %s %v", name, out, err)
		}
	}
}
