package steps

import (
	"context"
	_ "embed"
	"path"
	"strings"

	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/secrets"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// Outcome is what a step did, for the run's summary and report. A step
// that fails may still say what it did before it failed (the secrets a
// half-done session wrote).
type Outcome struct {
	// Note is the summary's word on a step that succeeded ("3 secrets",
	// "switch").
	Note string
	// StorePath is the flake's store path the step deployed.
	StorePath string
	// Secrets are the secret files the step wrote on the host: names and
	// paths, never values.
	Secrets []WrittenSecret
	// Changed names the secrets whose value the step changed on the host
	// (restartUnits); Restarted and Reloaded are the units it restarted
	// or reloaded for them.
	Changed             []string
	Restarted, Reloaded []string
	// Activation is what the rebuild's activation did, when lollypops
	// activated itself (package activation).
	Activation *Activated
}

// WrittenSecret is a secret file written on the host.
type WrittenSecret struct {
	Name string // the secret's label: "db", or "alice/db" for home-manager
	Path string
}

// written names the files a receiver session reports it wrote.
func (e *Env) written(rep *secrets.Report) []WrittenSecret {
	if rep == nil {
		return nil
	}
	var out []WrittenSecret
	for _, p := range rep.Wrote {
		w := WrittenSecret{Path: p}
		for i := range e.Host.Secrets.Files {
			if f := &e.Host.Secrets.Files[i]; f.Path == p {
				w.Name = f.Label()
				break
			}
		}
		out = append(out, w)
	}
	return out
}

// deployedScript (deployed.sh) prints the store path <config-dir>/flake
// points to and the system's, one a line, an empty line for what does not
// resolve. It only reads links.
//
//go:embed deployed.sh
var deployedScript string

// Deployed asks the host, after a successful rebuild, which flake its
// <config-dir>/flake points to and which system the action left it
// running (switch, test) or booting next (boot). It runs as the ssh user,
// over the shared connection; what it cannot tell is "".
func Deployed(ctx context.Context, e *Env) (flake, system string) {
	d := &e.Host.Deployment
	if e.Host.Home != nil {
		// No flake on the host, and no system: the home's generation is
		// in the rebuild's output.
		return "", ""
	}
	sys := ""
	switch {
	case e.Action == "boot":
		sys = "/nix/var/nix/profiles/system"
	case plan.Activates(e.Action):
		sys = "/run/current-system"
	}
	c, err := e.connect(ctx)
	if err != nil {
		return "", ""
	}
	cmd, err := ssh.Command(nil, "sh", "-c", deployedScript, "lollypops-deployed", path.Join(d.ConfigDir, "flake"), sys)
	if err != nil {
		return "", ""
	}
	out, err := e.Runner.Output(ctx, execx.Cmd{Argv: c.RemoteArgs(cmd), Stderr: e.Stderr})
	if err != nil {
		return "", ""
	}
	lines := strings.Split(string(out), "\n")
	store := func(i int) string {
		if i < len(lines) && strings.HasPrefix(lines[i], "/nix/store/") && !strings.ContainsAny(lines[i], " \t") {
			return lines[i]
		}
		return ""
	}
	if d.EvaluatesHere() {
		// The rebuild evaluated the flake here, not the host's link.
		return e.Host.Flake, store(1)
	}
	return store(0), store(1)
}
