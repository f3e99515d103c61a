// Package report records what each step of a run did, and turns the records
// into the per-host summary that ends every run that touched hosts.
//
// Steps run in their own processes; each writes its record as a small JSON
// file in the run directory when it starts and when it ends. A record still
// "running" when the run is over belongs to a step that was killed.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Step states.
const (
	Running = "running"
	OK      = "ok"
	Failed  = "failed"
)

// Record is one step's outcome.
type Record struct {
	Host   string    `json:"host"`
	Step   string    `json:"step"`
	Status string    `json:"status"`
	Start  time.Time `json:"start,omitzero"`
	End    time.Time `json:"end,omitzero"`
	Error  string    `json:"error,omitempty"`
	Note   string    `json:"note,omitempty"` // e.g. "3 secrets", "switch"
}

// Write stores r in dir, replacing the step's earlier record.
func Write(dir string, r Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	name := filepath.Join(dir, r.Host+"."+r.Step+".json")
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// ReadAll returns every record in dir, keyed by host, then step.
func ReadAll(dir string) (map[string]map[string]Record, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]Record{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
		if out[r.Host] == nil {
			out[r.Host] = map[string]Record{}
		}
		out[r.Host][r.Step] = r
	}
	return out, nil
}

// Host states in the summary.
const (
	HostOK         = "ok"
	HostFailed     = "failed"
	HostNotRun     = "not run"
	HostIncomplete = "incomplete" // some steps ran, none failed, others never started
)

// HostSummary is one line of the summary.
type HostSummary struct {
	Host     string
	Status   string
	Duration time.Duration // 0 when unknown
	Detail   string
}

// Summarize compares the steps each host was to run (in order) with the
// records. hosts fixes the order of the lines.
func Summarize(hosts []string, planned map[string][]string, records map[string]map[string]Record) []HostSummary {
	var out []HostSummary
	for _, h := range hosts {
		s := HostSummary{Host: h}
		recs := records[h]
		var done, failed, missing []string
		var start, end time.Time
		for _, step := range planned[h] {
			r, ok := recs[step]
			if !ok {
				missing = append(missing, step)
				continue
			}
			if !r.Start.IsZero() && (start.IsZero() || r.Start.Before(start)) {
				start = r.Start
			}
			if r.End.After(end) {
				end = r.End
			}
			switch r.Status {
			case OK:
				label := step
				if r.Note != "" {
					label += " (" + r.Note + ")"
				}
				done = append(done, label)
			case Failed:
				failed = append(failed, step+": "+r.Error)
			default:
				failed = append(failed, step+": interrupted")
			}
		}
		if !start.IsZero() && end.After(start) {
			s.Duration = end.Sub(start)
		}
		switch {
		case len(failed) > 0:
			s.Status = HostFailed
			s.Detail = strings.Join(failed, "; ")
			if len(missing) > 0 {
				s.Detail += "; not run: " + strings.Join(missing, ", ")
			}
		case len(missing) == 0:
			s.Status = HostOK
			s.Detail = strings.Join(done, ", ")
		case len(done) == 0:
			s.Status = HostNotRun
		default:
			s.Status = HostIncomplete
			s.Detail = "done: " + strings.Join(done, ", ") + "; not run: " + strings.Join(missing, ", ")
		}
		out = append(out, s)
	}
	return out
}

// AllOK reports whether every host succeeded.
func AllOK(sum []HostSummary) bool {
	for _, s := range sum {
		if s.Status != HostOK {
			return false
		}
	}
	return true
}

// Render writes the summary as an aligned table.
func Render(w io.Writer, sum []HostSummary, prefix string) {
	ok := 0
	for _, s := range sum {
		if s.Status == HostOK {
			ok++
		}
	}
	fmt.Fprintf(w, "%ssummary: %d of %d hosts ok\n", prefix, ok, len(sum))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range sum {
		d := "-"
		if s.Duration > 0 {
			d = s.Duration.Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s  %s\t%s\t%s\t%s\n", prefix, s.Host, s.Status, d, s.Detail)
	}
	tw.Flush()
}
