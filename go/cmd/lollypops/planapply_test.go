package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/fault"
)

// "plan" and "apply" are subcommands as the first argument, also behind
// the --inventory or --flake the Nix app passes first.
func TestSubArgs(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want []string // nil: not the subcommand
	}{
		{"plan", []string{"plan", "all", "-o", "p.json"}, []string{"all", "-o", "p.json"}},
		{"plan", []string{"--flake", ".", "plan", "a"}, []string{"--flake", ".", "a"}},
		{"apply", []string{"--inventory=i.json", "apply", "p.json"}, []string{"--inventory=i.json", "p.json"}},
		{"apply", []string{"host1", "apply"}, nil},
		{"apply", []string{"--inventory", "apply", "host1"}, nil},
		{"plan", []string{"exec", "plan"}, nil},
	} {
		got, ok := subArgs(c.args, c.name)
		if ok != (c.want != nil) || !slices.Equal(got, c.want) {
			t.Errorf("subArgs(%q, %s) = %q, %v; want %q", c.args, c.name, got, ok, c.want)
		}
	}
}

func TestParsePlanAndApplyFlags(t *testing.T) {
	inv := []string{"--inventory", "i.json"}
	for _, c := range []struct {
		apply bool
		args  []string
		err   string
	}{
		{false, []string{"all", "-o", "p.json"}, ""},
		{false, []string{"--on", "@web", "--exclude", "web-3", "-o", "p.json", "REBUILD_ACTION=boot"}, ""},
		{false, []string{"all"}, "plan: no plan file given: -o is required"},
		{false, []string{"-o", "p.json"}, "plan: no hosts given"},
		{false, []string{"a", "--on", "b", "-o", "p.json"}, `plan: "a" with --on or --exclude`},
		{false, []string{"a:rebuild", "-o", "p.json"}, "a plan is of whole hosts, not of steps"},
		{false, []string{"a", "FOO=1", "-o", "p.json"}, "plan: FOO=: only REBUILD_ACTION"},
		{false, []string{"a", "-C", "-1", "-o", "p.json"}, "--concurrency -1"},
		{false, []string{"a", "--bogus", "-o", "p.json"}, "plan: unknown flag: --bogus"},
		{true, []string{"p.json"}, ""},
		{true, []string{"--confirm", "-C", "2", "p.json"}, ""},
		{true, nil, "apply: no plan file given"},
		{true, []string{"p.json", "q.json"}, `apply: "q.json" after the plan file`},
		{true, []string{"--bogus", "p.json"}, "apply: unknown flag: --bogus"},
	} {
		var err error
		if c.apply {
			_, err = parseApplyFlags(append(slices.Clone(inv), c.args...))
		} else {
			_, err = parsePlanFlags(append(slices.Clone(inv), c.args...))
		}
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.args, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want %q", c.args, err, c.err)
		case c.err != "" && (fault.HintOf(err) == "" || fault.KindOf(err) != fault.Usage):
			t.Errorf("%q: %v: no hint, or not a usage error", c.args, err)
		}
	}
}

// What happens before any host is contacted: help, usage errors with
// their hint, an unreadable plan named in one line, an unknown host.
func TestPlanApplyCommandLine(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte("{"), 0o600)
	for _, c := range []struct {
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{[]string{"plan", "--help"}, exitOK, "Usage: lollypops plan HOST...", nil},
		{[]string{"apply", "--help"}, exitOK, "Usage: lollypops apply FILE [--confirm]", nil},
		{[]string{"--inventory", full, "plan", "ahorn"}, exitUsage, "", []string{
			"lollypops: plan: no plan file given: -o is required\n",
			"lollypops: hint: lollypops plan all -o plan.json, then lollypops apply plan.json\n"}},
		{[]string{"--inventory", full, "plan", "ahron", "-o", filepath.Join(dir, "p.json")}, exitUsage, "", []string{
			`did you mean "ahorn"?`}},
		{[]string{"--inventory", full, "plan", "ahorn", "-o", filepath.Join(dir, "none", "p.json")}, exitUsage, "", []string{
			"lollypops: plan: -o " + filepath.Join(dir, "none", "p.json") + ": no directory"}},
		{[]string{"--inventory", full, "apply", filepath.Join(dir, "missing.json")}, exitError, "", []string{
			"lollypops: plan " + filepath.Join(dir, "missing.json") + ": no such file or directory\n",
			"lollypops: hint: lollypops plan HOSTS -o FILE writes a plan\n"}},
		{[]string{"--inventory", full, "apply", garbage}, exitError, "", []string{
			"lollypops: plan " + garbage + ": not a plan: unexpected end of JSON input"}},
	} {
		code, out, errOut := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(out, c.stdout) {
			t.Errorf("%q: exit %d, want %d\n%s%s", c.args, code, c.code, out, errOut)
		}
		for _, w := range c.stderr {
			if !strings.Contains(errOut, w) {
				t.Errorf("%q: stderr lacks %q:\n%s", c.args, w, errOut)
			}
		}
	}
}
