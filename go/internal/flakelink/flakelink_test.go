package flakelink

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lollypops/lollypops/go/dev/shelltest"
)

// flake_ref resolves the link to its store path, names the task to run
// when the link is missing, and refuses a link outside the store, with
// hostile paths and directories kept whole.
func TestResolve(t *testing.T) {
	store, _ := filepath.Glob("/nix/store/*-source")
	if len(store) == 0 {
		t.Skip("no store path to link to here")
	}
	dir := filepath.Join(t.TempDir(), "it's $(touch x) \"a\"\nb")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	link, outside := Path(dir), filepath.Join(dir, "outside")
	os.Symlink(store[0], link)
	os.Symlink(dir, outside)
	script := WithResolve(`flake_ref "$1" "$2" "$3" || exit 1
printf '%s|' "$ref"`)
	shelltest.Each(t, func(t *testing.T, sh []string) {
		for _, c := range []struct{ flakeDir, want string }{
			{"", "path:" + store[0] + "|"},
			{"deploy/it's $(x)\n", "path:" + store[0] + "?dir=deploy/it's $(x)\n|"},
		} {
			if out, stderr, code := shelltest.Run(t, sh, nil, script, "lollypops-test", link, "web-1", c.flakeDir); code != 0 || out != c.want {
				t.Errorf("dir %q: exit %d, ref %q, want %q; stderr %q", c.flakeDir, code, out, c.want, stderr)
			}
		}
		gone := filepath.Join(dir, "gone")
		want := "lollypops: " + gone + " does not exist on this host; run the task web-1:deploy-flake first\n"
		if out, stderr, code := shelltest.Run(t, sh, nil, script, "lollypops-test", gone, "web-1", ""); code != 1 || out != "" || stderr != want {
			t.Errorf("missing link: exit %d, stdout %q, stderr %q; want 1 and %q", code, out, stderr, want)
		}
		want = "lollypops: " + outside + " points to " + dir + ", which is not in the Nix store\n"
		if out, stderr, code := shelltest.Run(t, sh, nil, script, "lollypops-test", outside, "web-1", ""); code != 1 || out != "" || stderr != want {
			t.Errorf("link outside the store: exit %d, stdout %q, stderr %q; want 1 and %q", code, out, stderr, want)
		}
	})
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a path's $(...) ran")
	}
}

// link.sh creates the configuration directory (0755, whatever the umask)
// and hands the link to nix-store, here a stand-in that prints its
// arguments, one a line.
func TestLink(t *testing.T) {
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	os.Mkdir(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "nix-store"), []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" >\"$ARGS\"\n"), 0o755)
	env := []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
	shelltest.Each(t, func(t *testing.T, sh []string) {
		dir := filepath.Join(t.TempDir(), "etc", "it's $(x) \"q\"")
		args := filepath.Join(t.TempDir(), "args")
		argv := LinkArgv(dir, "/nix/store/abc-source")
		if argv[0] != "sh" {
			t.Fatalf("argv %q", argv)
		}
		cmd := exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
		cmd.Env = append(append(os.Environ(), env...), "ARGS="+args)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		got, _ := os.ReadFile(args)
		if want := "--realise\n/nix/store/abc-source\n--add-root\n" + dir + "/flake\n--indirect\n"; string(got) != want {
			t.Errorf("nix-store %q, want %q", got, want)
		}
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("%s: %v, %v; want a directory 0755", d, fi, err)
			}
		}
		// Without nix-store, the script fails.
		fail := exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
		fail.Env = append(os.Environ(), "PATH="+t.TempDir()+":/usr/bin:/bin")
		if err := fail.Run(); err == nil {
			t.Error("link.sh succeeded without nix-store")
		}
	})
}
