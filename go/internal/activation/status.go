package activation

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// State is the guard's state (the first word of its status file; see
// guard.sh).
type State string

// The guard's states.
const (
	Starting    State = "starting" // written by prepare.sh
	Activating  State = "activating"
	Activated   State = "activated" // waiting for the confirmation
	Confirming  State = "confirming"
	RollingBack State = "rolling-back"
	// Final states.
	Confirmed      State = "confirmed"
	RolledBack     State = "rolled-back"
	RollbackFailed State = "rollback-failed"
	Refused        State = "refused"      // nothing was activated
	NeedsReboot    State = "needs-reboot" // nothing was activated: a new init
	Superseded     State = "superseded"   // someone else switched the host meanwhile
	Done           State = "done"         // unguarded: switch-to-configuration's exit code
)

var states = []State{Starting, Activating, Activated, Confirming, RollingBack,
	Confirmed, RolledBack, RollbackFailed, Refused, NeedsReboot, Superseded, Done}

// Status is one reading of the status file.
type Status struct {
	State  State
	Reason string // of a rollback, a refusal; the exit code for Done
	Line   string // as read
}

// Final reports whether the guard is done.
func (s Status) Final() bool {
	switch s.State {
	case Confirmed, RolledBack, RollbackFailed, Refused, NeedsReboot, Superseded, Done:
		return true
	}
	return false
}

// ParseStatus reads the status file's content.
func ParseStatus(out string) (Status, error) {
	line := strings.TrimRight(out, "\n")
	state, reason, _ := strings.Cut(line, " ")
	if !slices.Contains(states, State(state)) {
		return Status{}, fmt.Errorf("unexpected activation status %q", line)
	}
	return Status{State: State(state), Reason: reason, Line: line}, nil
}

// Watch is what one watch.sh run saw.
type Watch struct {
	Status Status
	// Now is the host's monotonic clock (centiseconds since boot).
	Now int64
	// Alive is set while the guard (or its recovery) runs.
	Alive bool
	// Result is the guard's record (guard.sh): what it activated, from
	// what, and when on the host's monotonic clock.
	Result map[string]string
	// Log is the log from the watch's offset on (at most 1 MiB): the next
	// watch's offset is this one's plus its length.
	Log []byte
}

// ParseWatch reads watch.sh's output.
func ParseWatch(out []byte) (Watch, error) {
	w := Watch{Result: map[string]string{}}
	r := bufio.NewReader(bytes.NewReader(out))
	header := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return w, fmt.Errorf("activation status: truncated answer from the host")
		}
		line = strings.TrimSuffix(line, "\n")
		if !header {
			// Lines before the mark come from the login's start-up files.
			header = line == "lollypops-watch 2"
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "status":
			st, err := ParseStatus(val)
			if err != nil {
				return w, err
			}
			w.Status = st
		case "now":
			w.Now, _ = strconv.ParseInt(val, 10, 64)
		case "alive":
			w.Alive = val == "1"
		case "result":
			k, v, _ := strings.Cut(val, " ")
			w.Result[k] = v
		case "log":
			rest, _ := readAll(r)
			w.Log = rest
			if w.Status.State == "" {
				return w, fmt.Errorf("activation status: no status in the host's answer")
			}
			return w, nil
		}
	}
}

func readAll(r *bufio.Reader) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

// Remaining is how long the guard still waits for the confirmation, by the
// host's clock, when it waits.
func (w Watch) Remaining() (time.Duration, bool) {
	if w.Status.State != Activated {
		return 0, false
	}
	d, err := strconv.ParseInt(w.Result["deadline"], 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(d-w.Now) * 10 * time.Millisecond, true
}

// Report is what an activation did, from the guard's record and the
// output of its switch-to-configuration.
type Report struct {
	// Duration is how long the activation's switch-to-configuration ran.
	Duration time.Duration
	// ExitCode is switch-to-configuration's.
	ExitCode int
	// Specialisation is the one activated, if any.
	Specialisation string
	Units          Units
	// FailedBefore are the units that had failed before the activation.
	FailedBefore []string
}

// NewlyFailed are the units that failed in the activation and had not
// failed before it.
func (r Report) NewlyFailed() []string {
	var out []string
	for _, u := range r.Units.Failed {
		if !slices.Contains(r.FailedBefore, u) {
			out = append(out, u)
		}
	}
	return out
}

// Units are what switch-to-configuration said it did to units (the report
// has them as they are: docs/report.md).
type Units struct {
	Stopped   []string `json:"stopped,omitempty"`
	Reloaded  []string `json:"reloaded,omitempty"`
	Restarted []string `json:"restarted,omitempty"`
	Started   []string `json:"started,omitempty"`
	New       []string `json:"new,omitempty"`
	Failed    []string `json:"failed,omitempty"`
}

// unitLines are switch-to-configuration's lines (Perl and stc-ng alike)
// and where their units go.
var unitLines = []struct {
	prefix string
	list   func(*Units) *[]string
}{
	{"stopping the following units: ", func(u *Units) *[]string { return &u.Stopped }},
	{"reloading the following units: ", func(u *Units) *[]string { return &u.Reloaded }},
	{"restarting the following units: ", func(u *Units) *[]string { return &u.Restarted }},
	{"starting the following units: ", func(u *Units) *[]string { return &u.Started }},
	{"the following new units were started: ", func(u *Units) *[]string { return &u.New }},
	{"warning: the following units failed: ", func(u *Units) *[]string { return &u.Failed }},
}

// ParseReport reads what the activation did from the guard's record and
// the log: the units of the log's first switch-to-configuration run (the
// activation itself, not a confirmation's boot or a rollback).
func ParseReport(result map[string]string, log string) Report {
	var r Report
	r.ExitCode, _ = strconv.Atoi(result["stc_rc"])
	r.Specialisation = result["specialisation"]
	r.FailedBefore = strings.Fields(result["failed_before"])
	started, err1 := strconv.ParseFloat(result["stc_started"], 64)
	ended, err2 := strconv.ParseFloat(result["stc_ended"], 64)
	if err1 == nil && err2 == nil && ended >= started {
		r.Duration = time.Duration((ended - started) * float64(time.Second)).Round(10 * time.Millisecond)
	}
	if runs := ParseUnits(log); len(runs) > 0 {
		r.Units = runs[0]
	}
	return r
}

// ParseUnits reads, for each run of switch-to-configuration in the guard's
// log (guard.sh marks where each begins and ends), what it said it did to
// units.
func ParseUnits(log string) []Units {
	var runs []Units
	var cur *Units
	for _, line := range strings.Split(log, "\n") {
		if rest, ok := strings.CutPrefix(line, "lollypops: switch-to-configuration "); ok {
			if strings.Contains(rest, " exited ") {
				cur = nil
			} else {
				runs = append(runs, Units{})
				cur = &runs[len(runs)-1]
			}
			continue
		}
		if cur == nil {
			continue
		}
		for _, ul := range unitLines {
			if rest, ok := strings.CutPrefix(line, ul.prefix); ok {
				list := ul.list(cur)
				for _, u := range strings.Split(rest, ",") {
					if u = strings.TrimSpace(u); u != "" && !slices.Contains(*list, u) {
						*list = append(*list, u)
					}
				}
			}
		}
	}
	return runs
}
