package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// The evaluation cache (docs/eval-cache.md): a second run of an unchanged
// flake starts no `nix eval` for the hosts evaluated before; a changed
// flake is evaluated anew; a failure is never cached; --no-eval-cache
// neither reads nor writes it. The runner's nix is a wrapper that logs
// what each nix process was started for.
func TestFlakeEvalCache(t *testing.T) {
	requireHosts(t)
	realNix, err := exec.LookPath("nix")
	if err != nil {
		t.Fatal(err)
	}
	wrap := t.TempDir()
	nixLog := filepath.Join(wrap, "nix.log")
	script := `#!/bin/sh
case "$*" in
*lollypops-eval*) printf 'hosts %s\n' "$(printf '%s\n' "$*" | tail -n 1)" >>` + nixLog + ` ;;
*attrNames*) echo names >>` + nixLog + ` ;;
*) echo "other $1 $2 $3 $4" >>` + nixLog + ` ;;
esac
exec ` + realNix + ` "$@"
`
	if err := os.WriteFile(filepath.Join(wrap, "nix"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// nixLines returns what the nix processes started since the last call
	// were for.
	seen := 0
	nixLines := func() []string {
		t.Helper()
		data, _ := os.ReadFile(nixLog)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(data) == 0 {
			lines = nil
		}
		out := lines[seen:]
		seen = len(lines)
		return out
	}
	count := func(lines []string, prefix string) int {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				n++
			}
		}
		return n
	}

	// No host is contacted: --list-all and --dry only evaluate and plan.
	stub := &fakehost.Fleet{SSHConfig: "/dev/null"}
	systems := map[string]fakehost.System{"host1": {Kernel: deployedKernel}, "host2": {Kernel: deployedKernel}}
	configs := func(desc string) map[string]string {
		c := map[string]string{}
		for _, n := range []string{"host1", "host2"} {
			h := host(stub, n)
			h.ExtraTasks = map[string]config.ExtraTask{"hello": {Desc: desc + " of " + n, Dir: ".", Deps: []string{}, Cmds: []string{"true"}}}
			c[n] = entryConfig(t, h)
		}
		// host1 prints a warning while it is evaluated, as the module
		// does with the configuration's lollypops.warnings.
		c["host1"] = strings.Replace(c["host1"], "{ name, flake }: ", `{ name, flake }: builtins.trace "warning: host1 has something to say" `, 1)
		c["trap"] = `{ lollypops.inventory-entry = { name, flake }: throw "trap was evaluated"; }`
		c["plain"] = `{ services = { }; }`
		return c
	}
	r := flakeRunner(t, systems, configs("first version"))
	r.env = []string{"PATH=" + wrap + ":" + os.Getenv("PATH")}

	listAll := func(what string, args ...string) result {
		t.Helper()
		res := r.run(append(args, "--list-all")...)
		if res.code != 3 {
			t.Fatalf("%s: --list-all with a host that does not evaluate: exit %d, want 3\n%s", what, res.code, res)
		}
		for _, want := range []string{"lollypops: trap: not evaluated: trap was evaluated",
			"nixosConfigurations.plain does not import lollypops.nixosModules.lollypops",
			"warning: host1 has something to say"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("%s: should say %q:\n%s", what, want, res)
			}
		}
		return res
	}

	cold := listAll("cold")
	lines := nixLines()
	// The names (twice: hosts and homes; once more when the trap's
	// failure asks whether the flake itself evaluates), the hosts.
	if count(lines, "hosts") == 0 || count(lines, "names") < 2 {
		t.Fatalf("cold: the nix processes were for %q, want the lists of names and the hosts", lines)
	}
	if !strings.Contains(cold.stdout, "first version of host1") {
		t.Fatalf("cold: host1's task is not listed:\n%s", cold)
	}

	// The cache's files: private, and without the trap, which failed.
	cacheDir := filepath.Join(r.cacheHome(), "lollypops", "eval")
	files := 0
	err = filepath.Walk(cacheDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		} else {
			files++
			data, _ := os.ReadFile(p)
			if strings.Contains(string(data), `"name":"trap"`) {
				t.Errorf("%s holds the failed trap:\n%s", p, data)
			}
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("the evaluation cache under XDG_CACHE_HOME: %d files, %v", files, err)
	}

	// Warm: the same listing; the only host evaluated is the trap, whose
	// failure was not cached; the names are not listed again (but for the
	// trap's question whether the flake evaluates). host1's warning is
	// printed again, from the cache.
	warm := listAll("warm")
	lines = nixLines()
	if count(lines, "names") > 1 || count(lines, "hosts") != 1 || !strings.Contains(strings.Join(lines, "\n"), `[ "trap" ]`) {
		t.Errorf("warm: the nix processes were for %q, want the trap's evaluation alone", lines)
	}
	if warm.stdout != cold.stdout {
		t.Errorf("warm: another listing:\n%s\ncold:\n%s", warm, cold)
	}
	// One host, warm: no host evaluated at all.
	if res := r.run("--dry", "host1"); res.code != 0 {
		t.Fatalf("--dry host1: %s", res)
	}
	if lines = nixLines(); count(lines, "hosts") != 0 || count(lines, "names") != 0 {
		t.Errorf("--dry host1, warm: the nix processes were for %q, want none for hosts", lines)
	}

	// --no-eval-cache: every host evaluated anew, nothing written.
	before := snapshot(t, cacheDir)
	listAll("--no-eval-cache", "--no-eval-cache")
	lines = nixLines()
	if count(lines, "names") < 2 || !strings.Contains(strings.Join(lines, "\n"), `"host1"`) {
		t.Errorf("--no-eval-cache: the nix processes were for %q, want every host evaluated", lines)
	}
	if after := snapshot(t, cacheDir); after != before {
		t.Errorf("--no-eval-cache wrote to the cache:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// The flake changes: its new value is used, every host is evaluated
	// anew.
	if err := fakehost.WriteFlakeWithConfig(r.flake, systems, configs("second version")); err != nil {
		t.Fatal(err)
	}
	changed := listAll("changed")
	lines = nixLines()
	if count(lines, "names") < 2 || !strings.Contains(strings.Join(lines, "\n"), `"host1"`) {
		t.Errorf("changed: the nix processes were for %q, want every host evaluated", lines)
	}
	if !strings.Contains(changed.stdout, "second version of host1") || strings.Contains(changed.stdout, "first version") {
		t.Errorf("changed: the listing is not the new flake's:\n%s", changed)
	}
}

// snapshot lists the files under dir with their contents' sizes and times.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b.WriteString(p + " " + fi.ModTime().String() + "\n")
		}
		return nil
	})
	return b.String()
}
