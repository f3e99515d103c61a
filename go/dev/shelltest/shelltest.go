// Package shelltest runs the tests of host-side shell scripts under every
// sh a host may have, as Debian packages them: bash (/bin/sh on NixOS),
// dash, busybox sh and mksh. It is for tests only.
package shelltest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Shell is one sh: its name, the Debian package that has it, and the
// argv that runs it.
type Shell struct {
	Name, Pkg string
	Argv      []string
}

// Shells are the four.
var Shells = []Shell{
	{"bash", "bash", []string{"bash"}},
	{"dash", "dash", []string{"dash"}},
	{"busybox", "busybox", []string{"busybox", "sh"}},
	{"mksh", "mksh", []string{"mksh"}},
}

// Each runs f once per shell, each a subtest. A shell that is not
// installed is skipped, but fails the test under CI (LOLLYPOPS_CI=1),
// where make test installs them all (tests/deps.sh).
func Each(t *testing.T, f func(t *testing.T, sh []string)) {
	t.Helper()
	each(t, Shells, false, f)
}

// EachParallel is Each with the subtests run in parallel, and the test in
// parallel with others: for scripts that wait.
func EachParallel(t *testing.T, f func(t *testing.T, sh []string)) {
	t.Helper()
	t.Parallel()
	each(t, Shells, true, f)
}

// EachOf is Each for some of the shells, by name.
func EachOf(t *testing.T, names []string, f func(t *testing.T, sh []string)) {
	t.Helper()
	var some []Shell
	for _, s := range Shells {
		for _, n := range names {
			if s.Name == n {
				some = append(some, s)
			}
		}
	}
	each(t, some, false, f)
}

func each(t *testing.T, shells []Shell, parallel bool, f func(t *testing.T, sh []string)) {
	for _, s := range shells {
		t.Run(s.Name, func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			if _, err := exec.LookPath(s.Argv[0]); err != nil {
				if os.Getenv("LOLLYPOPS_CI") == "1" {
					t.Fatalf("%s is not installed (apt-get install %s)", s.Name, s.Pkg)
				}
				t.Skipf("%s is not installed (apt-get install %s)", s.Name, s.Pkg)
			}
			f(t, s.Argv)
		})
	}
}

// Run runs `SH -c script name args...` with env added to the test's
// environment, and returns its stdout, its stderr and its exit code.
func Run(t *testing.T, sh, env []string, script, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(sh[0], append(append(sh[1:], "-c", script, name), args...)...)
	cmd.Env = append(os.Environ(), env...)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), errb.String(), code
}
