package steps

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/secrets"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// rotate restarts and reloads, on the host, the units of the secrets whose
// files at paths a session changed (restartUnits, reloadUnits): one
// command for all of them (units.sh), after the files are in place. Only
// running units are touched; a unit both restarted and reloaded is only
// restarted. What changed and what was restarted is added to out; a
// restart or reload that fails is an error that names the unit and its
// secrets, and says that the secrets are written. note is the summary's
// word on it: "2 changed, restarted nginx.service", "" when nothing changed.
func (e *Env) rotate(ctx context.Context, c *ssh.Client, paths []string, out *Outcome) (note string, err error) {
	var changed []*config.Secret
	for i := range e.Host.Secrets.Files {
		if f := &e.Host.Secrets.Files[i]; slices.Contains(paths, f.Path) {
			changed = append(changed, f)
			out.Changed = append(out.Changed, f.Label())
		}
	}
	restart, reload := unitsOf(changed)
	if len(changed) == 0 {
		return "", nil
	}
	note = fmt.Sprintf("%d changed", len(changed))
	if len(restart)+len(reload) == 0 {
		return note, nil
	}
	defer e.stage("unit restarts")()
	stdout, runErr := e.hostOutput(ctx, c, "restarting the units of changed secrets", secrets.UnitsArgv(restart, reload))
	rep, err := secrets.ParseUnits(stdout)
	for _, l := range rep.Other {
		e.printf("%s", l) // the login shell's own output
	}
	out.Restarted = append(out.Restarted, rep.Restarted...)
	out.Reloaded = append(out.Reloaded, rep.Reloaded...)
	if len(rep.Restarted) > 0 {
		note += ", restarted " + strings.Join(rep.Restarted, ", ")
	}
	if len(rep.Reloaded) > 0 {
		note += ", reloaded " + strings.Join(rep.Reloaded, ", ")
	}
	if len(rep.Restarted) > 0 {
		e.printf("restarted %s: %s changed", strings.Join(rep.Restarted, ", "), secretsOf(changed, rep.Restarted, true))
	}
	if len(rep.Reloaded) > 0 {
		e.printf("reloaded %s: %s changed", strings.Join(rep.Reloaded, ", "), secretsOf(changed, rep.Reloaded, false))
	}
	if len(rep.NotRunning) > 0 {
		e.printf("not restarted or reloaded, as they do not run: %s", strings.Join(rep.NotRunning, ", "))
	}
	var failed []string
	if len(rep.FailedRestart) > 0 {
		failed = append(failed, fmt.Sprintf("restarting %s failed (%s changed)",
			strings.Join(rep.FailedRestart, ", "), secretsOf(changed, rep.FailedRestart, true)))
	}
	if len(rep.FailedReload) > 0 {
		failed = append(failed, fmt.Sprintf("reloading %s failed (%s changed)",
			strings.Join(rep.FailedReload, ", "), secretsOf(changed, rep.FailedReload, false)))
	}
	if len(failed) > 0 {
		return note, &Hinted{Err: fmt.Errorf("%s; the new secrets are written on %s", strings.Join(failed, "; "), e.Host.Name),
			Advice: "systemd's message is above; the next deploy does not restart or reload them again (the values no longer change): fix the unit and restart it by hand"}
	}
	if runErr != nil {
		return note, &Hinted{Err: fmt.Errorf("%w; the new secrets are written on %s", runErr, e.Host.Name),
			Advice: "the units of the changed secrets may not have been restarted or reloaded; the host's message is above"}
	}
	return note, err
}

// unitsOf are the units to restart and to reload for changed secrets
// (the running ones are touched): each once, in the secrets' order; a
// unit restarted is not also reloaded. lollypops plan lists the same.
func unitsOf(changed []*config.Secret) (restart, reload []string) {
	restart, reload = []string{}, []string{}
	for _, f := range changed {
		for _, u := range f.RestartUnits {
			if !slices.Contains(restart, u) {
				restart = append(restart, u)
			}
		}
	}
	for _, f := range changed {
		for _, u := range f.ReloadUnits {
			if !slices.Contains(restart, u) && !slices.Contains(reload, u) {
				reload = append(reload, u)
			}
		}
	}
	return restart, reload
}

// secretsOf names the secrets among changed whose restartUnits (restart)
// or reloadUnits list one of units: `secret "a"`, `secrets "a", "b"`.
func secretsOf(changed []*config.Secret, units []string, restart bool) string {
	var names []string
	for _, f := range changed {
		list := f.ReloadUnits
		if restart {
			list = f.RestartUnits
		}
		if slices.ContainsFunc(list, func(u string) bool { return slices.Contains(units, u) }) {
			names = append(names, fmt.Sprintf("%q", f.Label()))
		}
	}
	if len(names) == 1 {
		return "secret " + names[0]
	}
	return "secrets " + strings.Join(names, ", ")
}
