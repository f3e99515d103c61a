package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/output"
	"github.com/lollypops/lollypops/go/internal/report"
)

// --report is checked before anything runs: a path it cannot write, or a
// mode that writes no report, is a usage error that writes nothing.
func TestReportRefused(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--report", filepath.Join(dir, "no", "r.json"), "host1"}, []string{
			"lollypops: --report " + filepath.Join(dir, "no", "r.json") + ": directory " + filepath.Join(dir, "no") + " does not exist",
			"lollypops: hint: give --report a file in an existing directory you can write to; nothing was run"}},
		{[]string{"--report", dir, "host1"}, []string{"lollypops: --report " + dir + ": " + dir + " is a directory"}},
		{[]string{"--report", filepath.Join(dir, "r.json"), "--dry", "host1"}, []string{
			"lollypops: --report with --dry: only a run that deploys writes a report"}},
		{[]string{"--report", filepath.Join(dir, "r.json"), "--list-all"}, []string{
			"lollypops: --report with a listing: only a run that deploys writes a report"}},
		{[]string{"--report", filepath.Join(dir, "r.json")}, []string{
			"lollypops: --report without a task: lollypops would only list the tasks",
			"lollypops: hint: name what to deploy: lollypops --report run.json all"}},
	} {
		code, out, errOut := runCLI(t, append([]string{"--inventory", minimal}, c.args...)...)
		if code != exitUsage || out != "" {
			t.Errorf("%q: exit %d, stdout %q", c.args, code, out)
		}
		got := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		for i, want := range c.want {
			if i >= len(got) || got[i] != want {
				t.Errorf("%q: stderr:\n%s\nwant line %d: %s", c.args, errOut, i, want)
				break
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left in the report's directory: %v", entries)
	}
}

// A run that fails before it touches a host still writes its report: the
// file always tells about the last run.
func TestReportOfARunThatTouchedNoHost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	os.WriteFile(path, []byte(`{"stale": true}`), 0o644)
	code, _, _ := runCLI(t, "--inventory", minimal, "--report", path, "hots1")
	if code != exitUsage {
		t.Fatalf("exit %d", code)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r report.Run
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if r.Version != report.Version || r.ExitCode != exitUsage || r.Action != "switch" || len(r.Hosts) != 0 ||
		r.Error != `unknown task "hots1"` || !strings.Contains(r.Hint, `did you mean "host1"?`) ||
		len(r.Tasks) != 1 || r.Tasks[0] != "hots1" || r.Started.IsZero() || r.Finished.Before(r.Started) {
		t.Errorf("%s", data)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != report.FileMode {
		t.Errorf("mode %v", st.Mode())
	}
}

// A report that cannot be written at the end is said, and never hides the
// run's outcome: a failed run keeps its exit code, a successful one exits 1.
func TestReportUnwritableAtTheEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	os.Mkdir(dir, 0o755)
	rep, err := openReport(filepath.Join(dir, "r.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dir)
	for _, c := range []struct {
		err  error
		want int
	}{{nil, exitError}, {&fault.Error{K: fault.HostsFailed}, exitHostsFailed}} {
		var b strings.Builder
		out := output.New(&b)
		err := rep.finish(c.err, false, out)
		out.Error(err)
		if got := exitCode(err, false); got != c.want {
			t.Errorf("%v: got exit %d, want %d", c.err, got, c.want)
		}
		if !strings.HasPrefix(b.String(), "lollypops: --report: cannot write the run report: ") ||
			!strings.Contains(b.String(), "lollypops: hint: the summary above is the run's outcome") {
			t.Errorf("%q", b.String())
		}
	}
	if got := exitCode(rep.finish(&fault.Error{K: fault.HostsFailed}, true, output.New(&strings.Builder{})), true); got != exitInterrupted {
		t.Errorf("interrupted: exit %d", got)
	}
}
