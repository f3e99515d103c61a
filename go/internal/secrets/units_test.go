package secrets

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/dev/shelltest"
)

// fakeSystemctl is a systemctl for units.sh's tests: a unit's state is the
// file $UNITS/<unit> (none: inactive, as is-active says of a unit that is
// not there), <unit>.fails makes it fail to start, <unit>.noreload makes
// reloading it fail as systemd does without ExecReload=. Every call is
// logged in $UNITS/calls, restarts and reloads counted.
const fakeSystemctl = `#!/bin/sh
echo "$*" >>"$UNITS/calls"
verb=$1; shift
[ "$1" = -- ] || { echo "systemctl: no -- before the units" >&2; exit 1; }
shift
res=0
for u do
  st=inactive; [ ! -e "$UNITS/$u" ] || st=$(cat "$UNITS/$u")
  case $verb in
  is-active) echo "$st"; [ "$st" = active ] || res=3 ;;
  try-restart)
    case $st in active|reloading|activating) ;; *) continue ;; esac
    if [ -e "$UNITS/$u.fails" ]; then
      echo failed >"$UNITS/$u"
      echo "Job for $u failed because the control process exited with error code." >&2; res=1; continue
    fi
    echo x >>"$UNITS/$u.restarts" ;;
  reload)
    if [ -e "$UNITS/$u.noreload" ]; then echo "Failed to reload $u: Job type reload is not applicable for unit $u." >&2; res=1; continue; fi
    echo x >>"$UNITS/$u.reloads" ;;
  esac
done
exit $res
`

func TestUnitsScript(t *testing.T) {
	shelltest.Each(t, func(t *testing.T, sh []string) {
		run := func(units map[string]string, restart, reload []string) (*UnitsReport, []string, string, error) {
			t.Helper()
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			os.Mkdir(bin, 0o755)
			if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fakeSystemctl), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, content := range units {
				os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
			}
			argv := UnitsArgv(restart, reload)
			cmd := exec.Command(sh[0], append(sh[1:], argv[1:]...)...)
			cmd.Env = append(os.Environ(), "UNITS="+dir, "PATH="+bin+":"+os.Getenv("PATH"))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			rep, perr := ParseUnits(string(out))
			if perr != nil {
				t.Fatal(perr)
			}
			calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
			return rep, strings.Split(strings.TrimSpace(string(calls)), "\n"), stderr.String(), err
		}
		// Only running units; one call per action.
		rep, calls, stderr, err := run(map[string]string{"a.service": "active", "b.service": "failed",
			"d.service": "active", "e.service": "reloading", "f.service": "activating"},
			[]string{"a.service", "b.service", "c.service", "f.service"}, []string{"d.service", "e.service", "g@x.service"})
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if !slices.Equal(rep.Restarted, []string{"a.service", "f.service"}) || !slices.Equal(rep.Reloaded, []string{"d.service", "e.service"}) ||
			!slices.Equal(rep.NotRunning, []string{"b.service", "c.service", "g@x.service"}) || rep.FailedRestart != nil || rep.FailedReload != nil {
			t.Errorf("report: %+v", rep)
		}
		if want := []string{"is-active -- a.service b.service c.service f.service d.service e.service g@x.service",
			"try-restart -- a.service f.service", "reload -- d.service e.service"}; !slices.Equal(calls, want) {
			t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
		}
		// Nothing runs: only the question.
		_, calls, _, err = run(nil, []string{"a.service"}, nil)
		if err != nil || len(calls) != 1 {
			t.Errorf("%v: %q", err, calls)
		}
		// A restart that fails names its unit; the others are restarted.
		rep, _, stderr, err = run(map[string]string{"a.service": "active", "bad.service": "active", "bad.service.fails": ""},
			[]string{"a.service", "bad.service"}, nil)
		if err == nil || !slices.Equal(rep.FailedRestart, []string{"bad.service"}) || !slices.Equal(rep.Restarted, []string{"a.service"}) ||
			!strings.Contains(stderr, "Job for bad.service failed") {
			t.Errorf("%v: %+v\n%s", err, rep, stderr)
		}
		// A reload that fails: every unit of the call.
		rep, _, stderr, err = run(map[string]string{"a.service": "active", "n.service": "active", "n.service.noreload": ""},
			nil, []string{"a.service", "n.service"})
		if err == nil || !slices.Equal(rep.FailedReload, []string{"a.service", "n.service"}) ||
			!strings.Contains(stderr, "Job type reload is not applicable for unit n.service.") {
			t.Errorf("%v: %+v\n%s", err, rep, stderr)
		}
		// Never an option.
		if _, _, stderr, err = run(nil, []string{"--now"}, nil); err == nil || !strings.Contains(stderr, "not a unit: --now") {
			t.Errorf("%v: %s", err, stderr)
		}
	})
}
