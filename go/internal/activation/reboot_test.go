package activation

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// reboot.sh changes names what of a system differs from the booted one,
// as system.autoUpgrade compares them: the links resolved, one readlink
// for all six when they resolve, one a file otherwise.
func TestRebootChanges(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		root := t.TempDir()
		p := func(s ...string) string { return filepath.Join(append([]string{root}, s...)...) }
		for _, d := range []string{"store/k1", "store/k2", "store/i1", "store/m1", "store/m2", "booted", "same", "other", "partial"} {
			os.MkdirAll(p(d), 0o755)
		}
		link := func(sys, kernel, initrd, modules string) {
			for name, to := range map[string]string{"kernel": kernel, "initrd": initrd, "kernel-modules": modules} {
				if to != "" {
					os.Symlink(p("store", to), p(sys, name))
				}
			}
		}
		link("booted", "k1", "i1", "m1")
		link("same", "k1", "i1", "m1")
		link("other", "k2", "i1", "m2")
		link("partial", "k1", "", "m1")
		changes := func(booted, sys string) string {
			t.Helper()
			argv := BootChangesArgv(sys)
			cmd := exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
			cmd.Env = append(os.Environ(), "LOLLYPOPS_BOOTED="+booted)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			return string(out)
		}
		for _, c := range []struct{ booted, sys, want string }{
			{p("booted"), p("same"), ""},
			{p("booted"), p("other"), "kernel\nkernel-modules\n"},
			{p("booted"), p("partial"), "initrd\n"},
			{p("nothing"), p("same"), "unknown\n"},
		} {
			if got := changes(c.booted, c.sys); got != c.want {
				t.Errorf("%s against %s: %q, want %q", c.sys, c.booted, got, c.want)
			}
		}
	})
}
