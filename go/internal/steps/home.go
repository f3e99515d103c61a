package steps

import (
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"

	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// A home-manager target (config.Host.Home set) is a user's home on a host
// that may not run NixOS: its rebuild builds the configuration's
// activation package here, copies it over the run's connection and runs
// its activate script as the ssh user, who is the home's user unless the
// target's sudo settings say otherwise. Nothing runs as root.

// homeActions are the REBUILD_ACTIONs a home-manager target understands:
// switch activates the configuration, build only builds it here. boot,
// test and dry-activate are NixOS's and mean nothing for a home.
var homeActions = []string{"switch", "build"}

// checkHomeAction refuses an action a home-manager target cannot do.
func checkHomeAction(e *Env) error {
	for _, a := range homeActions {
		if e.Action == a {
			return nil
		}
	}
	return &Hinted{Err: fmt.Errorf("REBUILD_ACTION=%s: %s is a home-manager configuration, which only switch (activate) or build", e.Action, e.Host.Name),
		Advice: "run the home-manager targets with REBUILD_ACTION=switch or build, or leave them out of this run (--exclude)"}
}

// homeManifest is where a home-manager target keeps the list of the secret
// files lollypops wrote: in the user's home, which the user owns.
func homeManifest(dir string) string {
	return path.Join(dir, ".local/state/lollypops/secrets.manifest")
}

// homeRebuild builds the activation package, copies it to the host and
// activates it.
func homeRebuild(ctx context.Context, e *Env, c *ssh.Client) (string, error) {
	h := e.Host
	pkg, err := realiseHome(ctx, e)
	if err != nil {
		return "", err
	}
	if e.Action == "build" {
		e.printf("built %s (not copied: REBUILD_ACTION=build)", pkg)
		return "build", nil
	}
	if err := e.copyPaths(ctx, c, "the home configuration's closure", pkg); err != nil {
		return "", err
	}
	e.printf("activating %s as %s", pkg, h.Deployment.SSH.Target())
	argv, err := e.remote(c, pkg+"/activate")
	if err != nil {
		return "", err
	}
	e.protect(true)
	err = e.Runner.Run(ctx, execx.Cmd{Argv: argv, Stdout: e.Stdout, Stderr: e.Stderr, Detach: true})
	e.protect(false)
	if err != nil {
		return "", &Hinted{Err: fmt.Errorf("activating the home configuration: %w", err), Advice: "the output of its activate script is above"}
	}
	return e.Action, nil
}

// realiseHome builds (or finds) the activation package in this machine's
// store and returns its output path. The package is a derivation when the
// inventory was evaluated without building; nix-store --realise builds it
// with every Nix. A link in the run directory keeps it from the garbage
// collector while the run lasts.
func realiseHome(ctx context.Context, e *Env) (string, error) {
	h := e.Host
	link := filepath.Join(e.Run.Path, "home-"+h.Name)
	e.printf("building the home configuration %s here", h.Name)
	argv := []string{"nix-store", "--realise", h.Home.ActivationPackage, "--add-root", link, "--indirect"}
	// Its stdout is the link's name, which says nothing.
	return buildHereTo(ctx, e, argv, io.Discard, link, "the home configuration", "home-manager targets are built here; install Nix")
}

// homeRebuildShown is what the rebuild of a home-manager target does, for
// --dry.
func homeRebuildShown(e *Env, c *ssh.Client) ([]string, error) {
	h := e.Host
	lines := []string{execx.Quote([]string{"nix-store", "--realise", h.Home.ActivationPackage}) + "  # builds the home configuration here"}
	if e.Action == "build" {
		return lines, nil
	}
	lines = append(lines, execx.Quote([]string{"nix", "copy", "--to", c.StoreURL(), "--substitute-on-destination", "<the activation package>"})+"  # its closure, through the connection")
	cmd, err := ssh.Command(&h.Deployment.Sudo, "<the activation package>/activate")
	if err != nil {
		return nil, err
	}
	return append(lines, onHost(h, cmd)+"  # as "+h.Deployment.SSH.Target()+": a new generation of the home-manager profile"), nil
}
