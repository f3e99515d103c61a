package secrets

import (
	_ "embed"
	"fmt"
	"strings"
)

// unitsScript (units.sh) restarts and reloads, as root on the host, the
// running units among those it is given, with one systemctl call per
// action, and says what it did to each.
//
//go:embed units.sh
var unitsScript string

// UnitsArgv is the command that restarts and reloads units on the host
// (before sudo and quoting). The names must be valid unit names
// (config.Validate) and reload must not repeat a unit of restart.
func UnitsArgv(restart, reload []string) []string {
	argv := []string{"sh", "-c", unitsScript, "lollypops-units", "--restart"}
	argv = append(argv, restart...)
	argv = append(argv, "--reload")
	return append(argv, reload...)
}

// UnitsReport is what units.sh did.
type UnitsReport struct {
	Restarted, Reloaded []string
	// NotRunning were left alone: stopped, or not there (yet).
	NotRunning []string
	// FailedRestart and FailedReload are the units whose restart or
	// reload failed (for a reload: every unit of the failed call).
	FailedRestart, FailedReload []string
	// Other is output that is not the script's (the login shell's).
	Other []string
}

const unitsPrefix = "lollypops-units: "

// ParseUnits reads units.sh's output.
func ParseUnits(out string) (*UnitsReport, error) {
	r := &UnitsReport{}
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rec, ours := strings.CutPrefix(l, unitsPrefix)
		if !ours {
			if l != "" {
				r.Other = append(r.Other, l)
			}
			continue
		}
		kind, unit, _ := strings.Cut(rec, " ")
		switch kind {
		case "restarted":
			r.Restarted = append(r.Restarted, unit)
		case "reloaded":
			r.Reloaded = append(r.Reloaded, unit)
		case "not-running":
			r.NotRunning = append(r.NotRunning, unit)
		case "failed":
			action, unit, _ := strings.Cut(unit, " ")
			switch action {
			case "restart":
				r.FailedRestart = append(r.FailedRestart, unit)
			case "reload":
				r.FailedReload = append(r.FailedReload, unit)
			default:
				return r, fmt.Errorf("unexpected output from the unit restarts: %q", l)
			}
		default:
			return r, fmt.Errorf("unexpected output from the unit restarts: %q", l)
		}
	}
	return r, nil
}
