// Package report records what each step of a run did, and turns the
// records into the run's outcome: the per-host summary that ends every run
// that touched hosts, and the JSON run report of --report (docs/report.md).
// Both are made from the same Host values, so they cannot disagree.
//
// Steps run in their own processes; each writes its record as a small JSON
// file in the run directory when it starts and when it ends. A record still
// "running" when the run is over belongs to a step that was interrupted.
//
// Nothing here ever holds a secret value: a step records the names and
// paths of the secrets it wrote, never what it wrote.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/lollypops/lollypops/go/internal/activation"
)

// EnvWanted is "1" in the steps' environment when the run writes a report
// (--report): a rebuild then also asks the host what it runs now, which
// costs one more session over the shared connection.
const EnvWanted = "LOLLYPOPS_REPORT"

// Step states in records.
const (
	Running = "running"
	OK      = "ok"
	Failed  = "failed"
)

// Record is one step's outcome, as its process wrote it.
type Record struct {
	Host     string    `json:"host"`
	Step     string    `json:"step"`
	Status   string    `json:"status"`
	Start    time.Time `json:"start,omitzero"`
	End      time.Time `json:"end,omitzero"`
	ExitCode *int      `json:"exit_code,omitempty"` // the step's, as go-task saw it
	Error    string    `json:"error,omitempty"`
	Hint     string    `json:"hint,omitempty"`
	Note     string    `json:"note,omitempty"` // e.g. "3 secrets", "switch"
	// FailedCommand is the local program whose failure failed the step
	// (ssh, nix, a secret's command, nixos-rebuild), when one did.
	FailedCommand *Command `json:"failed_command,omitempty"`
	// StorePath is the flake's store path the step deployed or built.
	StorePath string `json:"store_path,omitempty"`
	// System is the system's store path the host runs (switch, test) or
	// boots next (boot) after the step.
	System  string   `json:"system,omitempty"`
	Secrets []Secret `json:"secrets,omitempty"`
	// ChangedSecrets names the secrets whose value the step changed on
	// the host; RestartedUnits and ReloadedUnits are the units it
	// restarted or reloaded for them (restartUnits, reloadUnits).
	ChangedSecrets []string `json:"changed_secrets,omitempty"`
	RestartedUnits []string `json:"restarted_units,omitempty"`
	ReloadedUnits  []string `json:"reloaded_units,omitempty"`
	// RolledBack is why the host returned to its previous system by
	// itself after this step's activation (docs/activation.md).
	RolledBack *Rollback `json:"rolled_back,omitempty"`
	// Activation is what the step's activation did.
	Activation *Activation `json:"activation,omitempty"`
	// Stages are the parts of the step that --timings and the report
	// show, in the order they began.
	Stages []Stage `json:"stages,omitempty"`
}

// Stage is a part of a step: connecting, taking the lock, copying the
// flake, a secret's command, the secret session, the unit restarts for
// changed secrets, the build, the
// activation, the reconnection, the health checks, the confirmation, a
// reboot.
type Stage struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Activation is what a rebuild's activation did on the host, as its
// switch-to-configuration said (docs/report.md).
type Activation struct {
	Action         string `json:"action"`
	Specialisation string `json:"specialisation,omitempty"`
	// DurationMS is how long switch-to-configuration ran.
	DurationMS int64            `json:"duration_ms"`
	Units      activation.Units `json:"units"`
	// NewlyFailed are the failed units that had not failed before the
	// activation; Units.Failed has all of them.
	NewlyFailed []string `json:"newly_failed,omitempty"`
	Rebooted    bool     `json:"rebooted"`
	// RebootPending says why the host should reboot to run all of what it
	// was given, when the run did not reboot it.
	RebootPending string `json:"reboot_pending,omitempty"`
}

// Rollback is a host's return to its previous system.
type Rollback struct {
	Reason string `json:"reason"`
	// Failed is set when the rollback itself failed: the host needs a
	// person.
	Failed bool `json:"failed"`
	// FailedUnits are units that failed in the previous system again:
	// the host runs it, degraded.
	FailedUnits []string `json:"failed_units,omitempty"`
}

// Command is a program that failed.
type Command struct {
	Name     string `json:"name"`
	ExitCode int    `json:"exit_code"` // -1: killed by a signal, or not started
	Signal   string `json:"signal,omitempty"`
}

// Secret is a secret file written on a host: never its value.
type Secret struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

func recordFile(dir, host, step string) string {
	return filepath.Join(dir, host+"."+step+".json")
}

// Write stores r in dir, replacing the step's earlier record.
func Write(dir string, r Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	name := recordFile(dir, r.Host, r.Step)
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// Read returns the step's record; ok is false when it has none.
func Read(dir, host, step string) (r Record, ok bool, err error) {
	data, err := os.ReadFile(recordFile(dir, host, step))
	if errors.Is(err, fs.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, false, fmt.Errorf("%s.%s.json: %w", host, step, err)
	}
	return r, true, nil
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
