package closure

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/ssh"
)

// inNamespace runs the sh script body as root in a mount namespace of its
// own whose /nix is dir/nix: a private, empty Nix store and database, so
// that the test's paths never reach the machine's store. The machine's
// Nix (2.8 on the project's machines) builds and answers there, with a
// configuration of the test's own. It skips unless that is possible.
func inNamespace(t *testing.T, dir, body string, env ...string) (string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (a mount namespace with a private /nix)")
	}
	for _, tool := range []string{"unshare", "nix", "nix-build"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install nix-bin util-linux)", tool)
		}
	}
	conf := filepath.Join(dir, "nix-conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "nix.conf"),
		[]byte("build-users-group =\nsandbox = false\nsubstituters =\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "nix"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-euc",
		`mkdir -p /nix; mount --bind "$1/nix" /nix; shift; eval "$1"`, "in-namespace", dir, body)
	var kept []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "NIX_CONF_DIR", "NIX_USER_CONF_FILES", "NIX_CONFIG", "NIX_REMOTE", "NIX_PATH", "NIX_STORE_DIR", "NIX_STATE_DIR":
			continue
		}
		kept = append(kept, kv)
	}
	cmd.Env = append(kept, "NIX_CONF_DIR="+conf, "NIX_USER_CONF_FILES=", "T="+dir)
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestScriptWithNix builds two small systems in a private store, points a
// "current-system" link at the old one, runs Script with the real Nix and
// checks what ParseOutput and Compare make of it, against Nix's own
// closure sizes.
func TestScriptWithNix(t *testing.T) {
	dir := t.TempDir()
	nixFile, err := filepath.Abs("testdata/system.nix")
	if err != nil {
		t.Fatal(err)
	}
	body := `
build() { nix-build --no-out-link --quiet "$SYSTEM_NIX" "$@"; }
old=$(build)
new=$(build --argstr version 24.05.20240608.123456 --argstr kernel 6.6.31 --argstr etc two \
	--arg packages '[ "htop-3.3.0" ]')
ln -s "$old" "$T/current-system"
sh -c "$SCRIPT" lollypops-closure "$new" "$T/current-system" >"$T/out"
# The fake hosts' and NixOS's /bin/sh is bash: the same output there.
if command -v bash >/dev/null; then
	bash -c "$SCRIPT" lollypops-closure "$new" "$T/current-system" >"$T/out-bash"
	cmp "$T/out" "$T/out-bash"
fi
sh -c "$SCRIPT" lollypops-closure "$new" "$T/no-such-system" >"$T/out-first"
# Nix's own closure sizes, to check the sums against.
nix --extra-experimental-features nix-command path-info --closure-size "$old" "$new" >"$T/sizes"
echo "$old" >"$T/old"
echo "$new" >"$T/new"
if sh -c "$SCRIPT" lollypops-closure /nix/store/00000000000000000000000000000000-nixos-system-gone-1 2>"$T/gone-err" >/dev/null; then
	echo "the script succeeded on a missing system" >&2
	exit 1
fi
`
	if out, err := inNamespace(t, dir, body, "SCRIPT="+Script, "SYSTEM_NIX="+nixFile); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	oldTop, newTop := strings.TrimSpace(read("old")), strings.TrimSpace(read("new"))
	sizes := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(read("sizes")), "\n") {
		f := strings.Fields(l)
		sizes[f[0]] = f[1]
	}

	t.Logf("the script printed:\n%s", read("out"))
	c, err := ParseOutput([]byte(read("out")))
	if err != nil {
		t.Fatalf("%v\n%s", err, read("out"))
	}
	if c.Current.Toplevel != oldTop || c.New.Toplevel != newTop {
		t.Errorf("toplevels %s → %s, want %s → %s", c.Current.Toplevel, c.New.Toplevel, oldTop, newTop)
	}
	if !strings.HasSuffix(c.Current.Kernel, "-linux-6.6.30/bzImage") || !strings.HasSuffix(c.New.Kernel, "-linux-6.6.31/bzImage") ||
		!strings.HasSuffix(c.New.Initrd, "-initrd-linux-6.6.31/initrd") {
		t.Errorf("kernel %s → %s, initrd %s → %s", c.Current.Kernel, c.New.Kernel, c.Current.Initrd, c.New.Initrd)
	}
	d, err := Compare(c.Current, c.New)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := d.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("the diff:\n%s", text.String())
	for what, got := range map[string]string{"before": strconv.FormatUint(d.Before.Size, 10), "after": strconv.FormatUint(d.After.Size, 10)} {
		want := sizes[map[string]string{"before": oldTop, "after": newTop}[what]]
		if got != want {
			t.Errorf("closure size %s: %s, nix path-info --closure-size: %s", what, got, want)
		}
	}
	names := func(ps []Package) (s []string) {
		for _, p := range ps {
			s = append(s, p.Name)
		}
		return s
	}
	for _, c := range []struct {
		what string
		got  []string
		want string
	}{
		{"added", names(d.Added), "htop"},
		{"removed", names(d.Removed), "hello"},
		{"changed", names(d.Changed), "initrd-linux linux nixos-system-host1"},
		{"rebuilt", names(d.Rebuilt), "etc"},
	} {
		if got := strings.Join(c.got, " "); got != c.want {
			t.Errorf("%s: %q, want %q", c.what, got, c.want)
		}
	}
	if !d.Kernel.Changed || !d.Initrd.Changed || d.Before.Paths != 6 || d.After.Paths != 5 {
		t.Errorf("kernel %v initrd %v, paths %d → %d, want changed, changed, 6 → 5", d.Kernel.Changed, d.Initrd.Changed, d.Before.Paths, d.After.Paths)
	}
	if first := strings.SplitN(text.String(), "\n", 2)[0]; !strings.Contains(first, "kernel changed (linux-6.6.30 → linux-6.6.31)") {
		t.Errorf("first line: %s", first)
	}

	// No current system: everything is new.
	c, err = ParseOutput([]byte(read("out-first")))
	if err != nil {
		t.Fatalf("%v\n%s", err, read("out-first"))
	}
	if c.Current.Toplevel != "" || c.New.Toplevel != newTop || len(c.New.Paths) != 5 {
		t.Errorf("first deployment: current %q, new %q with %d paths", c.Current.Toplevel, c.New.Toplevel, len(c.New.Paths))
	}
	if got := read("gone-err"); !strings.Contains(got, "no such path on this machine") {
		t.Errorf("missing new system: stderr %q", got)
	}
}

// TestScriptArgs runs ScriptArgs' argv through ssh.Command, as the lead's
// step will, and the resulting command line through the local sh: the
// multi-line script must arrive whole, with its arguments as words.
func TestScriptArgs(t *testing.T) {
	const gone = "/nix/store/00000000000000000000000000000000-nixos-system-it's gone-1"
	if _, err := ScriptArgs(gone, ""); err == nil {
		t.Fatal("a store path with a space and a quote was accepted")
	}
	const missing = "/nix/store/00000000000000000000000000000000-nixos-system-gone-1"
	argv, err := ScriptArgs(missing, "")
	if err != nil {
		t.Fatal(err)
	}
	if argv[len(argv)-1] != CurrentSystem {
		t.Errorf("current system %q, want %s", argv[len(argv)-1], CurrentSystem)
	}
	line, err := ssh.Command(nil, argv...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", line).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1\n%s", err, out)
	}
	if want := "lollypops-closure: " + missing + ": no such path on this machine"; !strings.Contains(string(out), want) {
		t.Errorf("output %q, want %q", out, want)
	}
	if _, err := ScriptArgs(missing, "run/current-system"); err == nil {
		t.Error("a relative current system was accepted")
	}
	// Wrong arguments: exit 2.
	for _, args := range [][]string{{}, {"a", "b", "c"}} {
		cmd := exec.Command("sh", append([]string{"-c", Script, "lollypops-closure"}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "usage:") {
			t.Errorf("%q: exit %v, output %q; want 2 and a usage line", args, err, out)
		}
	}
}

func TestParseOutputErrors(t *testing.T) {
	const top = "/nix/store/bd68cm2jxnd5c4hbz7hvwpraswa20zy7-nixos-system-a-1"
	side := func(s string) string {
		return "=== " + s + " toplevel\n" + top + "\n=== " + s + " kernel\n=== " + s + " initrd\n=== " + s + " paths\n" +
			`[{"path":"` + top + `","narSize":8}]` + "\n"
	}
	good := header + "\n" + side("new") + "=== current missing\n=== end\n"
	if c, err := ParseOutput([]byte(good)); err != nil || c.New.Toplevel != top || c.Current.Toplevel != "" || c.New.Kernel != "" {
		t.Fatalf("good output: %+v, %v", c, err)
	}
	if c, err := ParseOutput([]byte(header + "\n" + side("new") + side("current") + "=== end\n")); err != nil || c.Current.Toplevel != top {
		t.Fatalf("both sides: %+v, %v", c, err)
	}
	for _, c := range []struct{ name, out, want string }{
		{"empty", "", "want \"lollypops-closure 1\" first"},
		{"other shell", "fish: Unknown command\n", "is the remote shell POSIX sh?"},
		{"other version", "lollypops-closure 2\n=== end\n", "want \"lollypops-closure 1\""},
		{"cut", strings.TrimSuffix(good, "=== end\n"), "ends before \"=== end\""},
		{"after end", good + "more\n", "output after \"=== end\""},
		{"unknown section", header + "\n=== new surprise\n=== end\n", `unknown section "new surprise"`},
		{"twice", header + "\n" + side("new") + side("new") + "=== end\n", "twice"},
		{"no new", header + "\n=== current missing\n=== end\n", `no "new toplevel" section`},
		{"no current", header + "\n" + side("new") + "=== end\n", `no "current toplevel" section`},
		{"both", header + "\n" + side("new") + side("current") + "=== current missing\n=== end\n", `"current missing" and`},
		{"before sections", header + "\nnoise\n" + side("new") + "=== current missing\n=== end\n", "before the first section"},
		{"not a store path", strings.Replace(good, top+"\n", "/run/current-system\n", 1), "is not a store path"},
		{"two toplevels", strings.Replace(good, top+"\n", top+"\n"+top+"\n", 1), "2 lines, want one"},
		{"relative kernel", strings.Replace(good, "=== new kernel\n", "=== new kernel\nbzImage\n", 1), "is not absolute"},
		{"bad json", strings.Replace(good, `"narSize":8`, `"narSize":"8"`, 1), "new system " + top},
		{"no paths", strings.Replace(good, `[{"path":"`+top+`","narSize":8}]`, "", 1), "printed nothing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseOutput([]byte(c.out))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}
