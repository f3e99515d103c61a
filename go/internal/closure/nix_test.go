package closure

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// nixEval evaluates expr with the local nix-instantiate, or skips.
func nixEval(t *testing.T, expr string, v any) {
	t.Helper()
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate is not installed (apt-get install nix-bin)")
	}
	out, err := exec.Command("nix-instantiate", "--eval", "--strict", "--json", "-E", expr).Output()
	if err != nil {
		t.Fatalf("nix-instantiate: %v", err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("nix-instantiate printed %s: %v", out, err)
	}
}

// nixList renders strs as a Nix list of strings (test inputs only: plain
// store-path-name characters and a few others, no quotes or ${).
func nixList(strs []string) string {
	q := make([]string, len(strs))
	for i, s := range strs {
		b, _ := json.Marshal(s)
		q[i] = strings.ReplaceAll(string(b), "${", `\${`)
	}
	return "[ " + strings.Join(q, " ") + " ]"
}

// TestParseNameAgreesWithNix checks the parseDrvName half of ParseName
// against the real builtins.parseDrvName.
func TestParseNameAgreesWithNix(t *testing.T) {
	names := []string{"nix-0.12pre12876", "bash--1-2", "xvidtune-?1-2", "linux-6.6.30", "initrd-linux-6.6.30",
		"nixos-system-host1-24.05.20240601.abcdef", "python3.11-requests-2.31.0", "unit-sshd.service",
		"unit-getty-.service", "etc", "X-Restart-Triggers", "source", "a-", "glibc-2.39-52", "7zip-1", "a-_b", "a-+1", "a-=1"}
	var got []struct{ Name, Version string }
	nixEval(t, "map builtins.parseDrvName "+nixList(names), &got)
	for i, s := range names {
		n := ParseName(s)
		if n.Output != "" {
			t.Fatalf("%q has an output suffix: not a parseDrvName case", s)
		}
		if n.Name != got[i].Name || n.Version != got[i].Version {
			t.Errorf("ParseName(%q) = %q %q, builtins.parseDrvName: %q %q", s, n.Name, n.Version, got[i].Name, got[i].Version)
		}
	}
}

// TestCompareVersionsAgreesWithNix checks compareVersions against the real
// builtins.compareVersions wherever Nix does not call them equal.
func TestCompareVersionsAgreesWithNix(t *testing.T) {
	vs := []string{"", "1", "1.0", "1.0a", "1.0.1", "1.0pre1", "1.2", "1.10", "2.3a", "2.3.1", "6.6.9", "6.6.30",
		"24.05.20240601.abcdef", "24.05.20240602.0123ab", "2024-01-01", "1-0", "a", "b", "pre", "1pre", "0.12pre12876"}
	var got [][]int
	nixEval(t, "let vs = "+nixList(vs)+"; in map (a: map (b: builtins.compareVersions a b) vs) vs", &got)
	for i, a := range vs {
		for j, b := range vs {
			want, c := got[i][j], compareVersions(a, b)
			if want != 0 && c != want {
				t.Errorf("compareVersions(%q, %q) = %d, builtins.compareVersions: %d", a, b, c, want)
			}
			if want == 0 && a != b && c == 0 {
				t.Errorf("compareVersions(%q, %q) = 0: want a total order", a, b)
			}
		}
	}
}
