package e2e

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
)

// host:diff builds the new system and shows what it changes against the
// running one, on the host or built here; it activates nothing and leaves
// no GC root behind. --json prints one document for scripts.
func TestDiff(t *testing.T) {
	f := newFleet(t, hosts("host2", "host3", "samekernel")...)
	h2, h3, hs := f.Host("host2"), f.Host("host3"), f.Host("samekernel")
	local := host(f, "host3")
	local.Deployment.LocalEvaluation = true
	r := newRunner(t, map[string]*config.Host{"host2": host(f, "host2"), "host3": local, "samekernel": host(f, "samekernel")})
	before2, before3, befores := systemOf(t, h2), systemOf(t, h3), systemOf(t, hs)

	res := r.run("-p", "host2:diff", "host3:diff", "samekernel:diff")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	out := res.output()
	for _, want := range []string{
		"[host2:diff] closure size ",
		"kernel changed (linux-6.6.30 → linux-" + deployedKernel + "); initrd changed (initrd-linux-6.6.30 → initrd-linux-" + deployedKernel + ")",
		"[host2:diff] + curl: 8.5.0",
		"[host2:diff] + hello: 2.12.1",
		"[host3:diff] closure size ",
		"[samekernel:diff] + hello: 2.12.1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, res)
		}
	}
	if strings.Contains(out, "[host3:diff] + hello") {
		t.Errorf("host3's system has no hello:\n%s", res)
	}
	if !strings.Contains(summaryLine(res, "host2"), "diff (2 added, 0 removed, 2 changed)") ||
		!strings.Contains(summaryLine(res, "samekernel"), "diff (1 added, 0 removed, 0 changed)") {
		t.Errorf("summary: %s", res)
	}
	// The kernel the host booted, in the same store path: no change.
	if !regexp.MustCompile(`(?m)^\[samekernel:diff\] closure size .*; kernel unchanged; initrd unchanged$`).MatchString(out) ||
		strings.Contains(out, "[samekernel:diff] ~ linux") {
		t.Errorf("samekernel's kernel did not change:\n%s", res)
	}
	// Nothing activated, no generation added, no GC root left.
	for _, c := range []struct {
		h      string
		before system
	}{{"host2", before2}, {"host3", before3}, {"samekernel", befores}} {
		h := f.Host(c.h)
		after := systemOf(t, h)
		if after.current != c.before.current || len(after.gens) != len(c.before.gens) || len(activations(t, h)) != 0 {
			t.Errorf("%s changed: %+v -> %+v", c.h, c.before, after)
		}
		if left := sh(t, h, "ls /run/lollypops/activation 2>/dev/null | wc -l"); strings.TrimSpace(left) != "0" {
			t.Errorf("%s: state left in /run/lollypops/activation: %s", c.h, left)
		}
	}

	// --json: stdout is one JSON document, the steps' output goes to stderr.
	res = r.run("--json", "host2:diff")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	var doc struct {
		Version int
		Hosts   map[string]struct {
			Version int
			Kernel  struct{ Changed bool }
			Added   []struct{ Name string }
		}
	}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, res)
	}
	d := doc.Hosts["host2"]
	var added []string
	for _, a := range d.Added {
		added = append(added, a.Name)
	}
	if doc.Version != 1 || d.Version != 1 || !d.Kernel.Changed || !slices.Equal(added, []string{"curl", "hello"}) {
		t.Errorf("--json: %+v\n%s", doc, res)
	}
	if res = r.run("--json", "host2:rebuild"); res.code != 2 || !strings.Contains(res.stderr, "--json applies to --list, --list-all and diff tasks") {
		t.Errorf("--json with a rebuild: %s", res)
	}
}
