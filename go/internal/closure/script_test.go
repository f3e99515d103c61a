package closure

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/dev/shelltest"
)

// collect.sh under each sh a host may have, with a stand-in for nix that
// knows no --json-format (as Nix 2.32 and older) and systems that are
// directories of links here: the same output under every shell.
func TestScriptShells(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	nix := "#!/bin/sh\nfor a; do [ \"$a\" != --json-format ] || { echo \"unknown flag '$a'\" >&2; exit 1; }; done\n" +
		"eval \"top=\\${$#}\"\nprintf '[{\"path\":\"%s\",\"narSize\":8}]\\n' \"$top\"\n"
	if err := os.WriteFile(filepath.Join(bin, "nix"), []byte(nix), 0o755); err != nil {
		t.Fatal(err)
	}
	system := func(name string, kernel bool) string {
		p := filepath.Join(dir, name)
		os.Mkdir(p, 0o755)
		if kernel {
			os.WriteFile(filepath.Join(dir, name+"-bzImage"), nil, 0o644)
			os.Symlink(filepath.Join(dir, name+"-bzImage"), filepath.Join(p, "kernel"))
		}
		return p
	}
	newSys, cur := system("new $(x) 'q'", true), system("cur", false)
	link := filepath.Join(dir, "current-system")
	os.Symlink(cur, link)
	want := "lollypops-closure 1\n" +
		"=== new toplevel\n" + newSys + "\n=== new kernel\n" + newSys + "-bzImage\n=== new initrd\n=== new paths\n" +
		`[{"path":"` + newSys + `","narSize":8}]` + "\n\n" +
		"=== current toplevel\n" + cur + "\n=== current kernel\n=== current initrd\n=== current paths\n" +
		`[{"path":"` + cur + `","narSize":8}]` + "\n\n=== end\n"
	run := func(sh []string, args ...string) (string, string, int) {
		return shelltest.Run(t, sh, []string{"PATH=" + bin + ":" + os.Getenv("PATH")}, Script, "lollypops-closure", args...)
	}
	shelltest.Each(t, func(t *testing.T, sh []string) {
		if out, stderr, code := run(sh, newSys, link); code != 0 || out != want {
			t.Errorf("exit %d, output\n%s\nwant\n%s\nstderr: %s", code, out, want, stderr)
		}
		if out, _, code := run(sh, newSys, filepath.Join(dir, "none")); code != 0 || !strings.Contains(out, "=== current missing\n=== end\n") {
			t.Errorf("no current system: exit %d, output\n%s", code, out)
		}
		if _, stderr, code := run(sh, filepath.Join(dir, "gone")); code != 1 || !strings.Contains(stderr, "no such path on this machine") {
			t.Errorf("missing new system: exit %d, stderr %q", code, stderr)
		}
		for _, args := range [][]string{{}, {"a", "b", "c"}} {
			if _, stderr, code := run(sh, args...); code != 2 || !strings.Contains(stderr, "usage:") {
				t.Errorf("%q: exit %d, stderr %q; want 2 and a usage line", args, code, stderr)
			}
		}
	})
}
