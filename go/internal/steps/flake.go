package steps

import (
	"context"
	"fmt"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/flakelink"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// copyArgs ships the flake to the host: "copy" sends the flake's own source
// and lets the host fetch its inputs; "archive" sends the inputs too.
func copyArgs(h *config.Host, c *ssh.Client) []string {
	if h.Deployment.DeployMethod == config.MethodArchive {
		return nixArgs("flake", "archive", "--to", c.StoreURL(), "path:"+h.Flake)
	}
	return nixArgs("copy", "--to", c.StoreURL(), "--substitute-on-destination", h.Flake)
}

// linkArgs points <config-dir>/flake at the flake on the host, a GC root
// there (flakelink's link.sh).
func linkArgs(e *Env, c *ssh.Client) ([]string, error) {
	d := &e.Host.Deployment
	return e.remote(c, flakelink.LinkArgv(d.ConfigDir, e.Host.Flake)...)
}

// DeployFlake copies the flake to the host and links <config-dir>/flake.
func DeployFlake(ctx context.Context, e *Env) (Outcome, error) {
	h := e.Host
	c, err := e.open(ctx)
	if err != nil {
		return Outcome{}, err
	}
	bin, err := e.wrapper(c)
	if err != nil {
		return Outcome{}, err
	}
	// The deploy lock is taken while the flake is copied: the copy only
	// adds the flake to the host's store, as any user of Nix may, and
	// nothing the lock protects changes before it is held (the link).
	// A refusal stops the copy.
	copyCtx, stopCopy := context.WithCancel(ctx)
	defer stopCopy()
	locked := make(chan error, 1)
	go func() {
		done := e.stage("lock")
		err := e.lock(ctx, c)
		done()
		if err != nil {
			stopCopy()
		}
		locked <- err
	}()
	how := "nix copy"
	if h.Deployment.DeployMethod == config.MethodArchive {
		how = "nix flake archive"
	}
	e.printf("copying %s to %s (%s)", h.Flake, h.Name, how)
	// nix prints its progress on stderr; ours carries the host's prefix.
	done := e.stage("flake copy")
	err = e.Runner.Run(copyCtx, execx.Cmd{Argv: copyArgs(h, c), Path: bin, Stdout: e.Stderr, Stderr: e.Stderr})
	done()
	if lerr := <-locked; lerr != nil {
		return Outcome{}, lerr
	}
	if err != nil {
		return Outcome{}, copyError(err, h)
	}
	argv, err := linkArgs(e, c)
	if err != nil {
		return Outcome{}, err
	}
	if err := e.Runner.Run(ctx, execx.Cmd{Argv: argv, Stdout: e.Stdout, Stderr: e.Stderr}); err != nil {
		return Outcome{}, fmt.Errorf("linking %s/flake on the host: %w", h.Deployment.ConfigDir, err)
	}
	e.printf("%s/flake -> %s", h.Deployment.ConfigDir, h.Flake)
	return Outcome{Note: h.Deployment.DeployMethod, StorePath: h.Flake}, nil
}

func copyError(err error, h *config.Host) error {
	if xe, ok := err.(*execx.Error); ok && xe.NotFound {
		return &Hinted{Err: fmt.Errorf("nix: not found on this machine"),
			Advice: "deploy-flake runs nix here; install Nix, or run lollypops through `nix run`, which provides it"}
	}
	hint := "the host's ssh user must be able to add paths to its Nix store (root, or a trusted user of its nix-daemon)"
	if h.Deployment.DeployMethod == config.MethodCopy {
		hint += "; with deploy-method \"copy\" the host fetches the flake's inputs itself when it rebuilds"
	}
	return &Hinted{Err: fmt.Errorf("copying the flake: %w", err), Advice: hint}
}
