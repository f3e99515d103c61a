package main

import (
	"github.com/lollypops/lollypops/go/internal/fault"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/report"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/steps"
)

func runDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "results"), 0o700)
	t.Setenv(rundir.EnvVar, dir)
	return filepath.Join(dir, "results")
}

func step(t *testing.T, args ...string) int {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Logf("%q: exit %d: %s", args, code, errOut.String())
	}
	return code
}

// An extra task's recorders: the start from its first command, the end and
// the exit code go-task gives the deferred one.
func TestRecordExtraTask(t *testing.T) {
	results := runDir(t)
	for _, c := range []struct {
		task, exit string
		status     string
		code       int
		err        string
	}{
		{"fine", "", report.OK, 0, ""},
		{"zero", "0", report.OK, 0, ""},
		{"fails", "7", report.Failed, 7, "exit status 7"},
	} {
		if step(t, "record-start", "h", c.task) != 0 {
			t.Fatal("record-start failed")
		}
		if r, ok, _ := report.Read(results, "h", c.task); !ok || r.Status != report.Running || r.Start.IsZero() {
			t.Errorf("%s: after record-start: %+v", c.task, r)
		}
		if step(t, "record", "h", c.task, c.exit) != 0 {
			t.Fatal("record failed")
		}
		r, _, _ := report.Read(results, "h", c.task)
		if r.Status != c.status || r.ExitCode == nil || *r.ExitCode != c.code || r.Error != c.err || r.Start.IsZero() || r.End.Before(r.Start) {
			t.Errorf("%s: %+v", c.task, r)
		}
	}
	// Without a start record (a Taskfile of an older lollypops), the end
	// is still recorded.
	step(t, "record", "h", "late", "")
	if r, ok, _ := report.Read(results, "h", "late"); !ok || r.Status != report.OK || !r.Start.IsZero() {
		t.Errorf("late: %+v", r)
	}
	if step(t, "record", "h", "bad", "x") == 0 {
		t.Error("a bad exit code was accepted")
	}
}

// What a built-in step's record says about a failure: error, hint, the
// failed program, the step's exit code, and what was done before it.
func TestSetOutcome(t *testing.T) {
	cmdErr := &execx.Error{Name: "ssh", ExitCode: 255}
	err := &steps.Hinted{Err: fmt.Errorf("the secrets were only partly written: %w", cmdErr), Advice: "deploy them again"}
	out := steps.Outcome{Secrets: []steps.WrittenSecret{{Name: "db", Path: "/run/keys/db"}}}
	var rec report.Record
	setOutcome(&rec, out, err, 1)
	want := report.Record{Status: report.Failed, ExitCode: rec.ExitCode, Error: err.Error(), Hint: "deploy them again",
		FailedCommand: &report.Command{Name: "ssh", ExitCode: 255}, Secrets: []report.Secret{{Name: "db", Path: "/run/keys/db"}}}
	got, _ := json.Marshal(rec)
	wanted, _ := json.Marshal(want)
	if rec.ExitCode == nil || *rec.ExitCode != 1 || string(got) != string(wanted) {
		t.Errorf("got  %+v\nwant %+v", rec, want)
	}
	rec = report.Record{StorePath: "/nix/store/x-source"}
	setOutcome(&rec, steps.Outcome{Note: "switch"}, nil, 0)
	if rec.Status != report.OK || *rec.ExitCode != 0 || rec.Note != "switch" || rec.StorePath != "/nix/store/x-source" || rec.Error != "" {
		t.Errorf("ok: %+v", rec)
	}
	if fault.HintOf(errors.New("plain")) != "" {
		t.Error("a hint from nowhere")
	}
}

// What a step records (the summary, the progress view and the report show
// it) and prints is cleaned of what would drive the terminal: the hosts'
// output often ends up in an error.
func TestOutcomeAndOutputAreCleaned(t *testing.T) {
	var rec report.Record
	err := &steps.Hinted{Err: errors.New("activation failed: \x1b]0;pwned\x07\x1b[2K\rhost1 ok"), Advice: "see \x1b[8mhidden"}
	setOutcome(&rec, steps.Outcome{Note: "switch\r\x1b[1A"}, err, 1)
	for _, s := range []string{rec.Error, rec.Hint, rec.Note} {
		if strings.ContainsAny(s, "\x1b\x07\r") {
			t.Errorf("recorded raw: %q", s)
		}
	}
	if rec.Error != `activation failed: \x1b]0;pwned\x07\x1b[2K\rhost1 ok` {
		t.Errorf("error: %q", rec.Error)
	}

	// A step's own messages go through the same cleaning.
	runDir(t)
	var out, errOut bytes.Buffer
	run([]string{"check-vars", "no-such-host\x1b[2J"}, strings.NewReader(""), &out, &errOut)
	if strings.Contains(errOut.String()+out.String(), "\x1b") {
		t.Errorf("printed raw: %q", errOut.String())
	}
}
