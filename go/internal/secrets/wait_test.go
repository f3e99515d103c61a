package secrets

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/shelltest"
)

// waitFor runs wait.sh in the background and returns a channel that gets
// its exit code and output once it ends.
func waitFor(t *testing.T, sh []string, args ...string) <-chan string {
	t.Helper()
	cmd := exec.Command(sh[0], append(append(sh[1:], "-c", WaitScript, "wait.sh"), args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		err := cmd.Wait()
		done <- strings.TrimSpace(out.String()) + " (" + exitOf(err) + ")"
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return done
}

func exitOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return fmt.Sprintf("exit %d", ee.ExitCode())
	}
	if err != nil {
		return err.Error()
	}
	return "exit 0"
}

// stillWaiting checks that the script has not returned after a while (no
// timing is asserted: only that it does not end on its own).
func stillWaiting(t *testing.T, done <-chan string, what string) {
	t.Helper()
	select {
	case got := <-done:
		t.Fatalf("%s: returned early: %s", what, got)
	case <-time.After(300 * time.Millisecond):
	}
}

func ended(t *testing.T, done <-chan string, what string) string {
	t.Helper()
	select {
	case got := <-done:
		return got
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: still waiting after 30s", what)
		return ""
	}
}

func TestWaitScript(t *testing.T) {
	shelltest.EachParallel(t, func(t *testing.T, sh []string) {
		dir := t.TempDir()
		p := filepath.Join(dir, "keys", "db pass")

		// present: waits while the file (and its directory) is missing,
		// returns once it is there, without reading it.
		done := waitFor(t, sh, "present", p, "0.05")
		stillWaiting(t, done, "present, no file")
		os.Mkdir(filepath.Dir(p), 0o755)
		stillWaiting(t, done, "present, no file but its directory")
		// Unreadable contents: only existence counts.
		if err := os.WriteFile(p, []byte("SECRET-VALUE"), 0o000); err != nil {
			t.Fatal(err)
		}
		got := ended(t, done, "present")
		if got != "waiting for "+p+"\n"+p+" is there (exit 0)" {
			t.Errorf("present: %q", got)
		}
		// Already there: at once, without "waiting".
		if got := ended(t, waitFor(t, sh, "present", p), "present, already there"); got != p+" is there (exit 0)" {
			t.Errorf("present, already there: %q", got)
		}

		// absent: a rename over the file (a rotated value) is no absence;
		// removing it ends the wait.
		done = waitFor(t, sh, "absent", p, "0.05")
		stillWaiting(t, done, "absent, file there")
		os.WriteFile(p+".new", []byte("SECRET-VALUE-2"), 0o400)
		if err := os.Rename(p+".new", p); err != nil {
			t.Fatal(err)
		}
		stillWaiting(t, done, "absent, file rotated")
		os.Remove(p)
		if got := ended(t, done, "absent"); got != p+" is gone (exit 0)" {
			t.Errorf("absent: %q", got)
		}
		// A dangling symbolic link is no secret.
		os.Symlink(filepath.Join(dir, "nowhere"), p)
		if got := ended(t, waitFor(t, sh, "absent", p), "absent, dangling link"); got != p+" is gone (exit 0)" {
			t.Errorf("absent, dangling link: %q", got)
		}

		for _, bad := range [][]string{{"present"}, {"exists", p}, {"present", "relative"}, {"absent", p, "-1"}, {"absent", p, "1;id"}, {"absent", p, "1", "x"}} {
			got := ended(t, waitFor(t, sh, bad...), strings.Join(bad, " "))
			if got != "usage: wait.sh present|absent PATH [SECONDS] (exit 2)" {
				t.Errorf("%q: %q", bad, got)
			}
		}
	})
}

// The output names the path only: never a value, even when the file
// holds one that looks like an argument.
func TestWaitScriptReadsNothing(t *testing.T) {
	shelltest.Each(t, func(t *testing.T, sh []string) {
		p := filepath.Join(t.TempDir(), "s")
		os.WriteFile(p, []byte("POISON-VALUE"), 0o400)
		out, errOut, code := shelltest.Run(t, sh, nil, WaitScript, "wait.sh", "present", p)
		if code != 0 || strings.Contains(out+errOut, "POISON") {
			t.Errorf("exit %d, output %q %q", code, out, errOut)
		}
	})
}

// The names are those tests/nix/eval.nix checks the module makes.
func TestUnitName(t *testing.T) {
	for name, want := range map[string]string{
		"db-pass":                        `lollypops-secret-db\x2dpass.service`,
		"db/pass":                        `lollypops-secret-db-pass.service`,
		`db\x2dpass`:                     `lollypops-secret-db\x5cx2dpass.service`,
		".hidden key":                    `lollypops-secret-\x2ehidden\x20key.service`,
		"a.b:c_d":                        `lollypops-secret-a.b:c_d.service`,
		"100%":                           `lollypops-secret-100\x25.service`,
		"nixos-secrets/host1/backup-key": `lollypops-secret-nixos\x2dsecrets-host1-backup\x2dkey.service`,
		"clé":                            "",
		"":                               "",
		strings.Repeat("x", 231):         "",
		strings.Repeat("x", 230):         "lollypops-secret-" + strings.Repeat("x", 230) + ".service",
	} {
		got, ok := UnitName(name)
		if got != want || ok != (want != "") {
			t.Errorf("UnitName(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}
