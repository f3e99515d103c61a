package steps

import (
	"fmt"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/plan"
)

// Describe returns the commands a step would run, one shell line each, for
// --dry. They come from the same argv builders the step uses; lines that
// are not commands are shell comments.
func Describe(e *Env, step string) ([]string, error) {
	h := e.Host
	c := e.ssh()
	master := execx.Quote(c.MasterArgs()) + "  # the run's shared connection to " + h.Name + ", opened once"
	switch step {
	case config.TaskCheckVars:
		return []string{fmt.Sprintf("# check REBUILD_ACTION=%s and that the programs %s's steps need are on PATH", e.Action, h.Name)}, nil
	case config.TaskDeployFlake:
		link, err := linkArgs(e, c)
		if err != nil {
			return nil, err
		}
		return []string{
			master,
			execx.Quote(copyArgs(h, c)) + "  # nix's ssh goes through the shared connection",
			execx.Quote(link),
		}, nil
	case config.TaskDeploySecrets:
		lines := []string{}
		n := 0
		for _, f := range h.Secrets.Files {
			if e.ActivationFollows && f.UploadAt == config.PostActivation {
				continue
			}
			n++
			lines = append(lines, fmt.Sprintf("%s  # secret %q -> %s (%s %s:%s)", f.Cmd, f.Label(), f.Path, f.Mode, f.Owner, f.Group))
		}
		recv, err := e.receiverShown(c, n)
		if err != nil {
			return nil, err
		}
		lines = append(lines, master, recv+"  # all files are committed together, or none")
		return lines, nil
	case config.TaskRebuild:
		shown, err := rebuildShown(e, c)
		if err != nil {
			return nil, err
		}
		lines := []string{master, shown}
		if e.ActivationFollows && plan.Activates(e.Action) {
			for _, f := range h.Secrets.Files {
				if f.UploadAt == config.PostActivation {
					lines = append(lines, fmt.Sprintf("%s  # post-activation secret %q -> %s (%s %s:%s)", f.Cmd, f.Label(), f.Path, f.Mode, f.Owner, f.Group))
				}
			}
		}
		return lines, nil
	}
	return nil, fmt.Errorf("no built-in step %q", step)
}
