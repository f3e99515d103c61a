package activation

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// then.sh runs two commands in one session: the second only once the first
// succeeded, each with its own words however hostile, and a line between
// them that says the first one ran.
func TestThen(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		run := func(first, second []string) (string, int) { return runThen(t, sh, first, second) }
		hostile := []string{"a b", "", "-n", "$(touch canary)", "it's", "line\nbreak", "*"}
		out, code := run(append([]string{"printf", "[%s]"}, hostile...), append([]string{"printf", "<%s>"}, hostile...))
		want := "[a b][][-n][$(touch canary)][it's][line\nbreak][*]\nlollypops-then ok\n<a b><><-n><$(touch canary)><it's><line\nbreak><*>"
		if code != 0 || out != want {
			t.Errorf("got %q (exit %d), want %q", out, code, want)
		}
		if !ThenRan([]byte(out)) {
			t.Error("ThenRan: false after both ran")
		}
		// A first command that fails: its exit code, and no second.
		out, code = run([]string{"sh", "-c", "echo first; exit 5"}, []string{"echo", "second"})
		if code != 5 || out != "first\n" || ThenRan([]byte(out)) {
			t.Errorf("got %q (exit %d)", out, code)
		}
		// The second one's exit code is the session's.
		out, code = run([]string{"true"}, []string{"sh", "-c", "exit 3"})
		if code != 3 || !ThenRan([]byte(out)) {
			t.Errorf("got %q (exit %d)", out, code)
		}
		// A one-word first command, and a watch's mark after the line.
		out, _ = run([]string{"true"}, []string{"echo", "lollypops-watch 1"})
		if !strings.HasSuffix(out, "\nlollypops-then ok\nlollypops-watch 1\n") {
			t.Errorf("got %q", out)
		}
	})
}

// Two scripts share one shell: the first in a subshell, with its own
// words and variables, the second after the mark with the rest; the
// frame's own variables are gone by then.
func TestThenScripts(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		run := func(first, second []string) (string, int) {
			t.Helper()
			if argv := Then(first, second); argv[3] != "lollypops-a+b" || strings.Contains(argv[2], "\t#FIRST\n") || strings.Contains(argv[2], "\n#SECOND\n") {
				t.Fatalf("not one script: %q", argv[:4])
			}
			return runThen(t, sh, first, second)
		}
		script := func(name, text string, args ...string) []string {
			return append([]string{"sh", "-c", "#!/bin/sh\nset -u\n" + text, name}, args...)
		}
		hostile := []string{"a b", "", "-n", "$(touch canary)", "it's", "line\nbreak", "*"}
		out, code := run(script("lollypops-a", `mine=1; for w do printf '[%s]' "$w"; done`, hostile...),
			script("lollypops-b", `for w do printf '<%s>' "$w"; done; echo "${mine:-} ${lollypops_then_n:-} ${lollypops_then_i:-} $#"`, hostile[1:]...))
		want := "[a b][][-n][$(touch canary)][it's][line\nbreak][*]\nlollypops-then ok\n<><-n><$(touch canary)><it's><line\nbreak><*>   6\n"
		if code != 0 || out != want {
			t.Errorf("got %q (exit %d), want %q", out, code, want)
		}
		// No words for the first, none for the second.
		out, code = run(script("lollypops-a", `echo "first $#"`), script("lollypops-b", `echo "second $#"`))
		if code != 0 || out != "first 0\n\nlollypops-then ok\nsecond 0\n" {
			t.Errorf("got %q (exit %d)", out, code)
		}
		out, code = run(script("lollypops-a", `echo "first $#"`), script("lollypops-b", `echo "second $# $1"`, "x"))
		if code != 0 || out != "first 0\n\nlollypops-then ok\nsecond 1 x\n" {
			t.Errorf("got %q (exit %d)", out, code)
		}
		// The first one's exit ends it, with its code; the second's exit
		// code is the session's.
		out, code = run(script("lollypops-a", `echo first; exit 5`), script("lollypops-b", `echo second`))
		if code != 5 || out != "first\n" || ThenRan([]byte(out)) {
			t.Errorf("got %q (exit %d)", out, code)
		}
		out, code = run(script("lollypops-a", `true`), script("lollypops-b", `exit 3`))
		if code != 3 || !ThenRan([]byte(out)) {
			t.Errorf("got %q (exit %d)", out, code)
		}
	})
}

// runThen runs Then(first, second) under sh: its output and exit code.
func runThen(t *testing.T, sh, first, second []string) (string, int) {
	t.Helper()
	argv := Then(first, second)
	out, err := exec.Command(sh[0], append(sh[1:], argv[1:]...)...).Output()
	code := 0
	if xe, ok := err.(*exec.ExitError); ok {
		code = xe.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// ThenFirst cuts a Then's output at the mark: the first command's part,
// whatever it ended with, and whether the mark came at all.
func TestThenFirst(t *testing.T) {
	for _, c := range []struct {
		out, first string
		ran        bool
	}{
		{"kernel initrd\n\nlollypops-then ok\n", "kernel initrd\n", true},
		{"\nlollypops-then ok\nsecond\n", "", true},
		{"no newline\nlollypops-then ok\r\n", "no newline", true},
		{"first only\n", "first only\n", false},
		{"lollypops-then ok is not the line\n", "lollypops-then ok is not the line\n", false},
	} {
		first, ran := ThenFirst([]byte(c.out))
		if string(first) != c.first || ran != c.ran || ThenRan([]byte(c.out)) != c.ran {
			t.Errorf("%q: %q %v, want %q %v", c.out, first, ran, c.first, c.ran)
		}
	}
}

// After runs the second command only once the watch (the first's
// second) printed "confirmed", after a line with the deployer's mark that
// no log line can fake; otherwise the session ends as the watch did.
func TestAfter(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		dir, bin := t.TempDir(), t.TempDir()
		os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\nexit 1\n"), 0o755)
		env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		run := func(status, log string, second []string) (Watch, string, bool, int) {
			t.Helper()
			os.WriteFile(filepath.Join(dir, "status"), []byte(status+"\n"), 0o600)
			os.WriteFile(filepath.Join(dir, "log"), []byte(log), 0o600)
			watch := WatchConfirmedArgv("x", "activated", 0, time.Minute, Activated, Confirming)
			watch[4] = dir
			argv := After(Then([]string{"true"}, watch), "f00d", second)
			if argv[3] != "lollypops-true+watch+b" {
				t.Fatalf("named %q", argv[3])
			}
			cmd := exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
			cmd.Env = env
			out, err := cmd.Output()
			code := 0
			if xe, ok := err.(*exec.ExitError); ok {
				code = xe.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			first, rest, ran := AfterSplit(out, "f00d")
			w, err := ParseWatch(first)
			if err != nil || !ThenRan(first) {
				t.Fatalf("%v: %q", err, out)
			}
			if !ran && rest != nil {
				t.Errorf("no second, yet %q", rest)
			}
			return w, string(rest), ran, code
		}
		second := []string{"sh", "-c", "#!/bin/sh\necho \"second $#\"", "lollypops-b", "x"}
		// Confirmed, with a log whose last line has no newline and one that
		// looks like the mark.
		log := "lollypops-then f00e\nlollypops-then ok\nlollypops: switch-to-configuration boot exited 0"
		w, rest, ran, code := run("confirmed", log, second)
		if w.Status.State != Confirmed || string(w.Log) != log || !ran || rest != "second 1\n" || code != 0 {
			t.Errorf("confirmed: %+v %q %v %d", w, rest, ran, code)
		}
		// The second's exit code is the session's.
		_, _, ran, code = run("confirmed", "", []string{"sh", "-c", "exit 3", "lollypops-b"})
		if !ran || code != 3 {
			t.Errorf("failing second: %v %d", ran, code)
		}
		// Not confirmed: the watch's answer, no second.
		for _, st := range []string{"rolled-back no confirmation", "confirming"} {
			log := "lollypops-then f00e\n"
			w, _, ran, code := run(st, log, second)
			if w.Status.Line != st || string(w.Log) != log || ran || code != 0 {
				t.Errorf("%s: %+v %v %d", st, w, ran, code)
			}
		}
	})
}
