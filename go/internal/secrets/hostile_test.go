package secrets

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Part of issue 17's standing guard (see go/e2e/hostile_test.go): the
// receiver, under bash, dash, busybox sh and mksh, with every hostile
// spelling the inventory lets through in paths (quotes, $(...), backticks,
// ";", leading dashes, globs, backslashes, a missing group ending in "$"),
// in values (escape sequences, NUL, no final newline) and in the list of
// stale files. Each file lands exactly where it was asked, with exactly its
// bytes; no word runs; the report names the paths as they are.
func TestReceiverHostileValues(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		dir := t.TempDir()
		canary := filepath.Join(dir, "canary")
		names := []string{
			"it's \"q\"", "$(touch " + canary + ")", "`touch " + canary + "`", "x;touch " + canary,
			"-rf", "--", "-n", "*", "?[a]", "~root", "%s%n", "back\\slash", "\\'", "'\\''",
			"$nl", "a b\tc", "日本 é 👍", ".lollypops-XXXXXXXXXX", "lollypops-secrets: wrote x",
		}
		var values []Value
		for i, n := range names {
			sub := "d" + string(rune('a'+i))
			if i%3 == 0 {
				sub = n // a hostile directory name too
			}
			values = append(values, Value{secret(filepath.Join(dir, "keys", sub, n), "0400"),
				[]byte("\x1b]0;pwned\x07\x00" + n + "\r\n$(touch " + canary + ")")})
		}
		stale := filepath.Join(dir, "keys", "stale $(touch "+canary+") -rf")
		os.MkdirAll(filepath.Dir(stale), 0o755)
		os.WriteFile(stale, []byte("old"), 0o600)
		manifest := filepath.Join(dir, "state", "secrets.manifest")
		os.MkdirAll(filepath.Dir(manifest), 0o755)
		os.WriteFile(manifest, []byte(stale+"\n"), 0o600)
		var keep []string
		for _, v := range values {
			keep = append(keep, v.Secret.Path)
		}
		out, errOut, err := receive(t, sh, encode(t, &Stream{Values: values, Manifest: manifest, Keep: keep, RemoveStale: true}))
		if err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
		for _, v := range values {
			got, err := os.ReadFile(v.Secret.Path)
			if err != nil || !bytes.Equal(got, v.Data) {
				t.Errorf("%q: %q %v", v.Secret.Path, got, err)
			}
		}
		rep, err := ParseReport([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if !slices.Contains(rep.Wrote, v.Secret.Path) {
				t.Errorf("the report lacks %q: %q", v.Secret.Path, rep.Wrote)
			}
		}
		if len(rep.Removed) != 1 || rep.Removed[0] != stale {
			t.Errorf("removed %q, want %q", rep.Removed, stale)
		}
		if _, err := os.Stat(stale); !os.IsNotExist(err) {
			t.Errorf("the stale file is still there: %v", err)
		}
		if _, err := os.Stat(canary); err == nil {
			t.Error("a word ran as a command")
		}
		// A line per path, then a line per path with its value's sum.
		if m, _ := os.ReadFile(manifest); strings.Count(string(m), "\n") != 2*len(values) ||
			strings.Count(string(m), "\nsha256=") != len(values) {
			t.Errorf("manifest: %q", m)
		}
	})
}

// A group that does not exist, spelled with the "$" the inventory allows
// (machine accounts), in a soft session: pending, reported as it is.
func TestReceiverHostileMissingGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	eachShell(t, func(t *testing.T, sh []string) {
		dir := t.TempDir()
		s := secret(filepath.Join(dir, "k $(id)"), "0640")
		s.Group = "lollypops-no-such$"
		out, errOut, err := receive(t, sh, encode(t, &Stream{Soft: true, Values: []Value{{s, []byte("v")}}}))
		if err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
		rep, _ := ParseReport([]byte(out))
		if len(rep.Pending) != 1 || rep.Pending[0].Group != "lollypops-no-such$" || rep.Pending[0].Path != s.Path || rep.Pending[0].Wrote != "root:root 600" {
			t.Errorf("pending: %+v", rep.Pending)
		}
	})
}
