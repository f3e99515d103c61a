package report

import (
	"slices"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
)

// Version is the version of the run report's schema (docs/report.md).
// Within a version, fields may be added, never removed or changed in
// meaning; a reader ignores fields it does not know. Version 2 added each
// step's stages (--timings), later the changed secrets and the units
// restarted or reloaded for them (fields added, as the rule allows).
const Version = 2

// Host and step states in the summary and the report.
const (
	HostOK         = "ok"
	HostFailed     = "failed"
	HostNotRun     = "not run"
	HostIncomplete = "incomplete" // some steps ran, none failed, others never started

	StepOK          = OK
	StepFailed      = Failed
	StepInterrupted = "interrupted" // started, never finished
	StepNotRun      = "not run"
)

// Run is the run report --report writes.
type Run struct {
	Version     int       `json:"version"`
	Lollypops   string    `json:"lollypops"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	DurationMS  int64     `json:"duration_ms"`
	ExitCode    int       `json:"exit_code"`
	Interrupted bool      `json:"interrupted"`
	// Action is the run's REBUILD_ACTION; empty when the run ended before
	// it was known (an invalid one, for instance).
	Action string `json:"action,omitempty"`
	// Tasks are the tasks the command line named (after --on/--exclude).
	Tasks []string `json:"tasks"`
	// Plan is, for lollypops apply, the SHA-256 of the plan file it
	// applied ("sha256:<hex>").
	Plan string `json:"plan,omitempty"`
	// Error and Hint are what lollypops printed when the run itself failed
	// (an invalid inventory, an unknown task); hosts' failures are theirs.
	Error string `json:"error,omitempty"`
	Hint  string `json:"hint,omitempty"`
	Hosts []Host `json:"hosts"`
}

// Host is what happened on one host.
type Host struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Start is the start of its first step; Duration spans its steps.
	Start    *time.Time    `json:"start,omitempty"`
	Duration time.Duration `json:"-"`
	// Text, when set, is the summary's account of the host instead of
	// its steps' (lollypops exec).
	Text       string `json:"-"`
	DurationMS *int64 `json:"duration_ms,omitempty"`
	// StorePath is the flake's store path deployed to the host in this
	// run (deploy-flake), else the one its rebuild used, when known.
	StorePath string `json:"store_path,omitempty"`
	// System is the store path of the system the host runs (switch,
	// test) or boots next (boot) after this run's rebuild, when known.
	System string `json:"system,omitempty"`
	// RolledBack says why the host returned to its previous system.
	RolledBack *Rollback `json:"rolled_back,omitempty"`
	// Activation is what its rebuild's activation did.
	Activation *Activation `json:"activation,omitempty"`
	// Secrets are the secret files written on the host in this run.
	Secrets []Secret `json:"secrets"`
	// ChangedSecrets are the names of the secrets whose value this run
	// changed on the host; RestartedUnits and ReloadedUnits the units
	// restarted or reloaded for them.
	ChangedSecrets []string `json:"changed_secrets"`
	RestartedUnits []string `json:"restarted_units"`
	ReloadedUnits  []string `json:"reloaded_units"`
	Steps          []Step   `json:"steps"`
}

// Step is what happened in one step of a host.
type Step struct {
	Name          string     `json:"name"`
	Task          string     `json:"task"`
	Status        string     `json:"status"`
	Start         *time.Time `json:"start,omitempty"`
	DurationMS    *int64     `json:"duration_ms,omitempty"`
	ExitCode      *int       `json:"exit_code,omitempty"`
	Error         string     `json:"error,omitempty"`
	Hint          string     `json:"hint,omitempty"`
	Note          string     `json:"note,omitempty"`
	FailedCommand *Command   `json:"failed_command,omitempty"`
	StorePath     string     `json:"store_path,omitempty"`
	System        string     `json:"system,omitempty"`
	Secrets       []Secret   `json:"secrets,omitempty"`
	// ChangedSecrets, RestartedUnits and ReloadedUnits: as the host's,
	// for this step.
	ChangedSecrets []string    `json:"changed_secrets,omitempty"`
	RestartedUnits []string    `json:"restarted_units,omitempty"`
	ReloadedUnits  []string    `json:"reloaded_units,omitempty"`
	RolledBack     *Rollback   `json:"rolled_back,omitempty"`
	Activation     *Activation `json:"activation,omitempty"`
	// Stages are the parts of the step, in the order they began.
	Stages []StageTime `json:"stages,omitempty"`
}

// StageTime is when a part of a step began and how long it took.
type StageTime struct {
	Name       string    `json:"name"`
	Start      time.Time `json:"start"`
	DurationMS int64     `json:"duration_ms"`
}

// Build compares the steps each host was to run (in order) with the
// records. hosts fixes the order of the hosts.
func Build(hosts []string, planned map[string][]string, records map[string]map[string]Record) []Host {
	out := make([]Host, 0, len(hosts))
	for _, name := range hosts {
		h := Host{Name: name, Secrets: []Secret{}, Steps: []Step{},
			ChangedSecrets: []string{}, RestartedUnits: []string{}, ReloadedUnits: []string{}}
		var start, end time.Time
		var ran, failed, missing int
		for _, stepName := range planned[name] {
			s := Step{Name: stepName, Task: name + ":" + stepName, Status: StepNotRun}
			r, ok := records[name][stepName]
			if !ok {
				missing++
				h.Steps = append(h.Steps, s)
				continue
			}
			s.ExitCode, s.Error, s.Hint, s.Note = r.ExitCode, r.Error, r.Hint, r.Note
			s.FailedCommand, s.StorePath, s.System, s.Secrets = r.FailedCommand, r.StorePath, r.System, r.Secrets
			s.RolledBack, s.Activation = r.RolledBack, r.Activation
			s.ChangedSecrets, s.RestartedUnits, s.ReloadedUnits = r.ChangedSecrets, r.RestartedUnits, r.ReloadedUnits
			h.ChangedSecrets = union(h.ChangedSecrets, r.ChangedSecrets)
			h.RestartedUnits = union(h.RestartedUnits, r.RestartedUnits)
			h.ReloadedUnits = union(h.ReloadedUnits, r.ReloadedUnits)
			for _, st := range r.Stages {
				s.Stages = append(s.Stages, StageTime{Name: st.Name, Start: st.Start.UTC(), DurationMS: st.End.Sub(st.Start).Milliseconds()})
			}
			if r.RolledBack != nil {
				h.RolledBack = r.RolledBack
			}
			if r.Activation != nil {
				h.Activation = r.Activation
			}
			if !r.Start.IsZero() {
				t := r.Start.UTC()
				s.Start = &t
				if r.End.After(r.Start) {
					s.DurationMS = ms(r.End.Sub(r.Start))
				}
				if start.IsZero() || r.Start.Before(start) {
					start = r.Start
				}
			}
			if r.End.After(end) {
				end = r.End
			}
			switch r.Status {
			case OK:
				s.Status = StepOK
				ran++
			case Failed:
				s.Status = StepFailed
				failed++
			default:
				s.Status = StepInterrupted
				failed++
			}
			if s.StorePath != "" && (h.StorePath == "" || stepName == config.TaskDeployFlake) {
				h.StorePath = s.StorePath
			}
			if s.System != "" {
				h.System = s.System
			}
			for _, sec := range s.Secrets {
				if i := slices.IndexFunc(h.Secrets, func(o Secret) bool { return o.Path == sec.Path }); i >= 0 {
					h.Secrets[i] = sec
				} else {
					h.Secrets = append(h.Secrets, sec)
				}
			}
			h.Steps = append(h.Steps, s)
		}
		if !start.IsZero() {
			t := start.UTC()
			h.Start = &t
			if end.After(start) {
				h.Duration = end.Sub(start)
				h.DurationMS = ms(h.Duration)
			}
		}
		switch {
		case failed > 0:
			h.Status = HostFailed
		case missing == 0:
			h.Status = HostOK
		case ran == 0:
			h.Status = HostNotRun
		default:
			h.Status = HostIncomplete
		}
		out = append(out, h)
	}
	return out
}

// union appends to list the elements of more it does not have yet.
func union(list, more []string) []string {
	for _, m := range more {
		if !slices.Contains(list, m) {
			list = append(list, m)
		}
	}
	return list
}

func ms(d time.Duration) *int64 {
	v := d.Milliseconds()
	return &v
}

// AllOK reports whether every host succeeded.
func AllOK(hosts []Host) bool {
	for _, h := range hosts {
		if h.Status != HostOK {
			return false
		}
	}
	return true
}
