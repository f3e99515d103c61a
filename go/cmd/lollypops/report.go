package main

import (
	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/output"

	"fmt"
	"time"

	"github.com/lollypops/lollypops/go/internal/report"
	"github.com/lollypops/lollypops/go/internal/taskrun"
	"github.com/lollypops/lollypops/go/internal/version"
)

// runReport is what --report writes when the run ends (docs/report.md).
// A nil *runReport (no --report) does nothing.
type runReport struct {
	path string
	run  report.Run
}

// openReport checks, before anything else happens, that the report can be
// written: a typo in the path must not cost a deploy.
func openReport(path string) (*runReport, error) {
	if path == "" {
		return nil, nil
	}
	if err := report.CheckPath(path); err != nil {
		return nil, usage(fmt.Sprintf("--report %s: %v", path, err), "give --report a file in an existing directory you can write to; nothing was run")
	}
	return &runReport{path: path, run: report.Run{
		Version: report.Version, Lollypops: version.Version, Started: time.Now(),
		Tasks: []string{}, Hosts: []report.Host{},
	}}, nil
}

func (r *runReport) setAction(action string) {
	if r != nil {
		r.run.Action = action
	}
}

func (r *runReport) setTasks(calls []string) {
	if r != nil && calls != nil {
		r.run.Tasks = calls
	}
}

func (r *runReport) setHosts(hosts []report.Host) {
	if r != nil {
		r.run.Hosts = hosts
	}
}

// finish writes the report of a run that ended with err, and returns the
// run's error. A report that cannot be written is said after the summary;
// it changes the outcome only of a run that succeeded (exit 1), so that a
// failure is never hidden.
func (r *runReport) finish(err error, interrupted bool, out *output.Sink) error {
	if r == nil {
		return err
	}
	code := exitCode(err, interrupted)
	now := time.Now()
	r.run.Started, r.run.Finished = r.run.Started.UTC(), now.UTC()
	r.run.DurationMS = now.Sub(r.run.Started).Milliseconds()
	r.run.ExitCode, r.run.Interrupted = code, interrupted
	if err != nil && !fault.Reported(err) {
		r.run.Error, r.run.Hint = err.Error(), fault.HintOf(err)
	}
	if werr := report.WriteFile(r.path, &r.run); werr != nil {
		werr = &fault.Error{K: fault.Internal, Msg: "--report: cannot write the run report", Err: werr,
			Advice: "the summary above is the run's outcome; the report was not written"}
		if err == nil {
			return werr
		}
		out.Error(werr)
	}
	return err
}

// checkReport refuses --report where no run report can come: a mode that
// only prints, or a command line without a task (which lists the tasks).
func (o *options) checkReport() error {
	if o.Report == "" {
		return nil
	}
	var mode string
	switch {
	case o.Listing():
		mode = "a listing"
	case o.Dry:
		mode = "--dry"
	case o.Summary:
		mode = "--summary"
	case o.Status:
		mode = "--status"
	case o.Experiments || o.ClearCache:
		mode = "this mode"
	}
	if mode != "" {
		return usage(fmt.Sprintf("--report with %s: only a run that deploys writes a report", mode), "drop --report, or run the tasks for real")
	}
	if calls, _ := taskrun.ParseArgs(o.Args); len(calls) == 0 && o.On == "" && o.Exclude == "" {
		return usage("--report without a task: lollypops would only list the tasks", "name what to deploy: lollypops --report run.json all")
	}
	return nil
}
