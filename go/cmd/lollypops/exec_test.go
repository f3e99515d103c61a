package main

import (
	"github.com/lollypops/lollypops/go/internal/fault"

	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/adhoc"
)

// "exec" is a subcommand as the first argument, also behind the
// --inventory the Nix app passes first.
func TestExecArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string // nil: not exec
	}{
		{[]string{"exec", "--on", "a", "--", "true"}, []string{"--on", "a", "--", "true"}},
		{[]string{"--inventory", "i.json", "exec", "--", "x"}, []string{"--inventory", "i.json", "--", "x"}},
		{[]string{"--inventory=i.json", "exec"}, []string{"--inventory=i.json"}},
		{[]string{"--inventory", "exec", "host1"}, nil}, // an inventory file named exec
		{[]string{"host1", "exec"}, nil},
		{[]string{"-p", "exec"}, nil},
		{[]string{"--", "exec"}, nil},
		{nil, nil},
	} {
		got, ok := execArgs(c.args)
		if ok != (c.want != nil) || !slices.Equal(got, c.want) {
			t.Errorf("execArgs(%q) = %q, %v; want %q", c.args, got, ok, c.want)
		}
	}
}

func TestParseExecFlags(t *testing.T) {
	inv := []string{"--inventory", "i.json"}
	for _, c := range []struct {
		args []string
		argv []string // the command, when valid
		err  string
	}{
		{[]string{"--on", "*", "--", "uptime"}, []string{"uptime"}, ""},
		{[]string{"--on", "@web", "-C", "2", "-x", "--", "sh", "-c", "echo $HOME", "--on"}, []string{"sh", "-c", "echo $HOME", "--on"}, ""},
		{[]string{"--", "uptime"}, nil, "exec: no hosts given: --on is required"},
		{[]string{"--exclude", "a", "--", "uptime"}, nil, "--on is required"},
		{[]string{"--on", "a"}, nil, "exec: no command given"},
		{[]string{"--on", "a", "--"}, nil, "exec: no command given"},
		{[]string{"--on", "a", "uptime"}, nil, `exec: "uptime" before --: the command goes after --`},
		{[]string{"--on", "a", "ls", "--", "-l"}, nil, `"ls" before --`},
		{[]string{"--on", "a", "-C", "-1", "--", "x"}, nil, "--concurrency -1"},
		{[]string{"--on", "a", "--bogus", "--", "x"}, nil, "exec: unknown flag: --bogus"},
		{[]string{"--on", "a", "--", "printf", "a\x01b"}, nil, "exec: cannot quote"},
	} {
		o, err := parseExecFlags(append(slices.Clone(inv), c.args...))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.args, err)
		case c.err == "" && !slices.Equal(o.Argv, c.argv):
			t.Errorf("%q: command %q, want %q", c.args, o.Argv, c.argv)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want %q", c.args, err, c.err)
		case c.err != "" && fault.HintOf(err) == "":
			t.Errorf("%q: %v: no hint", c.args, err)
		}
	}
	if o, err := parseExecFlags([]string{"--inventory", "i", "--on", "a", "-C", "3", "-x", "-v", "--", "x"}); err != nil || o.Concurrency != 3 || !o.ExitCode || !o.Verbose {
		t.Errorf("flags: %+v, %v", o, err)
	}
	t.Setenv("LOLLYPOPS_INVENTORY", "")
	t.Setenv("LOLLYPOPS_FLAKE", "")
	if _, err := parseExecFlags([]string{"--on", "a", "--", "x"}); err == nil || err.Error() != "no hosts given: neither --flake nor --inventory" {
		t.Errorf("no inventory: %v", err)
	}
	t.Setenv("LOLLYPOPS_INVENTORY", "env.json")
	if o, err := parseExecFlags([]string{"--on", "a", "--", "x"}); err != nil || o.Hosts.Inventory != "env.json" {
		t.Errorf("LOLLYPOPS_INVENTORY: %+v, %v", o, err)
	}
	if _, err := parseExecFlags([]string{"-h"}); !errors.Is(err, errHelp) {
		t.Errorf("-h: %v", err)
	}
}

// What happens before any host is contacted: help, usage errors with their
// hint, selection errors as in a deploy.
func TestExecCommandLine(t *testing.T) {
	for _, c := range []struct {
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{[]string{"exec", "--help"}, exitOK, "Usage: lollypops exec --on HOSTS", nil},
		{[]string{"--inventory", full, "exec", "--", "uptime"}, exitUsage, "", []string{
			"lollypops: exec: no hosts given: --on is required\n",
			"lollypops: hint: --on takes host names, globs and @tags, comma-separated; --on '*' runs on every host\n"}},
		{[]string{"--inventory", full, "exec", "--on", "@wbe", "--", "uptime"}, exitUsage, "", []string{
			"lollypops: --on @wbe matches no host\n",
			`lollypops: hint: did you mean "@web"? hosts: ahorn, birne; tags: @eu-west, @web` + "\n"}},
		{[]string{"--inventory", full, "exec", "--on", "*", "--exclude", "*", "--", "uptime"}, exitUsage, "", []string{
			"lollypops: --on * without the excluded hosts matches no host\n"}},
		{[]string{"--inventory", "/nonexistent.json", "exec", "--on", "*", "--", "uptime"}, exitError, "", []string{
			"/nonexistent.json"}},
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

func TestExecSummaryAndExitCode(t *testing.T) {
	rs := []adhoc.Result{
		{Host: "a", State: adhoc.Exited},
		{Host: "b", State: adhoc.Exited, ExitCode: 7},
		{Host: "c", State: adhoc.Error, Err: errors.New("cannot connect to c: refused")},
		{Host: "d", State: adhoc.Interrupted},
		{Host: "e", State: adhoc.NotRun},
	}
	var got []string
	for _, s := range execSummary(rs) {
		got = append(got, s.Name+" "+s.Status+" "+s.Detail())
	}
	want := []string{"a ok exit 0", "b failed exit 7", "c failed cannot connect to c: refused", "d failed interrupted", "e not run "}
	if !slices.Equal(got, want) {
		t.Errorf("summary:\n got %q\nwant %q", got, want)
	}
	for _, c := range []struct {
		results []adhoc.Result
		x       bool
		want    int
	}{
		{rs[:1], false, exitOK},
		{rs[:1], true, exitOK},
		{rs, false, exitHostsFailed},
		{rs, true, 7},
		{[]adhoc.Result{rs[0], rs[2], rs[1]}, true, exitHostsFailed}, // the first failed host had no exit status
		{nil, false, exitOK},
	} {
		if got := exitCode(execOutcome(c.results, c.x, false), false); got != c.want {
			t.Errorf("execExitCode(%v, -x %v) = %d, want %d", c.results, c.x, got, c.want)
		}
	}
}
