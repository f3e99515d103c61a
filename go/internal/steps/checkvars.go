package steps

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/shellword"
)

// CheckVars checks, before any host is touched, what the inventory cannot:
// the REBUILD_ACTION of this run and the programs the host's steps will run
// on this machine.
func CheckVars(ctx context.Context, e *Env) (Outcome, error) {
	if err := plan.CheckAction(e.Action); err != nil {
		return Outcome{}, err
	}
	h := e.Host
	if h.Home != nil && h.IsBuiltin(config.TaskRebuild) {
		if err := checkHomeAction(e); err != nil {
			return Outcome{}, err
		}
	}
	missing := map[string][]string{} // program -> what needs it
	need := func(prog, why string) {
		if _, err := exec.LookPath(prog); err != nil {
			missing[prog] = append(missing[prog], why)
		}
	}
	if h.IsBuiltin(config.TaskDeployFlake) || h.IsBuiltin(config.TaskDeploySecrets) || h.IsBuiltin(config.TaskRebuild) {
		need(h.Deployment.SSH.Command, "lollypops.deployment.ssh.command")
	}
	if h.IsBuiltin(config.TaskDeployFlake) {
		need("nix", "deploy-flake")
	}
	if h.IsBuiltin(config.TaskRebuild) && h.Deployment.EvaluatesHere() && h.Home == nil {
		if h.Deployment.BuildHost != nil {
			need("nix", "build-host")
		} else {
			need("nix", "local-evaluation")
		}
	}
	if h.IsBuiltin(config.TaskRebuild) && h.Home != nil {
		need("nix-store", "building the home configuration")
		need("nix", "copying the home configuration")
	}
	if h.IsBuiltin(config.TaskDeploySecrets) {
		for _, f := range h.Secrets.Files {
			// The same reading of the line as the secret step's: a
			// line whose programs cannot be told is left to the shell.
			progs, _ := shellword.Programs(f.Cmd)
			for _, prog := range progs {
				need(prog, fmt.Sprintf("secret %q", f.Label()))
			}
		}
	}
	if len(missing) > 0 {
		progs := make([]string, 0, len(missing))
		for p := range missing {
			progs = append(progs, p)
		}
		slices.Sort(progs)
		var parts []string
		for _, p := range progs {
			parts = append(parts, fmt.Sprintf("%s (for %s)", p, strings.Join(missing[p], ", ")))
		}
		return Outcome{}, &Hinted{Err: errors.New("not found on this machine: " + strings.Join(parts, "; ")),
			Advice: "these commands run on the deployer, not on the host; install them or put them on PATH"}
	}
	d := &h.Deployment
	if h.Home != nil {
		sudo := ""
		if d.Sudo.Enable {
			sudo = " with " + d.Sudo.Command
		}
		e.printf("%s%s, home-manager configuration built here and activated by its user, REBUILD_ACTION=%s", d.SSH.Target(), sudo, e.Action)
		return Outcome{}, nil
	}
	eval := "evaluated on the host"
	if b := d.BuildHost; b != nil {
		eval = "evaluated here, built on build host " + b.Target()
	} else if d.LocalEvaluation {
		eval = "evaluated here"
	}
	sudo := ""
	if d.Sudo.Enable {
		sudo = " with " + d.Sudo.Command
	}
	rollback := ", no rollback"
	if d.Rollback.Enable {
		rollback = fmt.Sprintf(", rollback unless confirmed within %ds", d.Rollback.ConfirmTimeout)
	}
	if n := len(d.HealthChecks); n > 0 {
		rollback += fmt.Sprintf(", %d health checks", n)
	}
	e.printf("%s%s, flake by %s to %s, %s, REBUILD_ACTION=%s%s", d.SSH.Target(), sudo, d.DeployMethod, d.ConfigDir, eval, e.Action, rollback)
	return Outcome{}, nil
}
