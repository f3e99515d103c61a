package steps

import (
	"fmt"

	"github.com/lollypops/lollypops/go/internal/activation"
	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/secrets"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// Describe returns what a step would do, one line each, for --dry. The
// lines come from the same argv builders the step uses, written to be read:
// the shared connection is shown once per host (with ShowConnection, in
// the host's first step that connects) as the ssh command a user would
// type, and each command over it as "on HOST: <remote command line>";
// lines that are not commands are shell comments.
func Describe(e *Env, step string) ([]string, error) {
	h := e.Host
	c := e.ssh()
	var lines []string
	if e.ShowConnection && Connects(step) {
		lines = append(lines, masterShown(h, c))
	}
	switch step {
	case config.TaskCheckVars:
		return []string{fmt.Sprintf("# check REBUILD_ACTION=%s and that the programs %s's steps need are on PATH", e.Action, h.Name)}, nil
	case config.TaskDeployFlake:
		link, err := ssh.Command(&h.Deployment.Sudo, linkArgv(e)...)
		if err != nil {
			return nil, err
		}
		return append(lines,
			execx.Quote(shownNix(copyArgs(h, c)))+"  # nix's ssh goes through the connection",
			onHost(h, link)+"  # point "+h.Deployment.ConfigDir+"/flake at it"), nil
	case config.TaskDeploySecrets:
		n := 0
		for _, f := range h.Secrets.Files {
			if e.ActivationFollows && f.UploadAt == config.PostActivation {
				continue
			}
			n++
			lines = append(lines, secretShown(&f, ""))
		}
		recv, err := receiverCommand(h, n)
		if err != nil {
			return nil, err
		}
		return append(lines, onHost(h, recv)+"  # all files are committed together, or none"), nil
	case config.TaskRebuild:
		d := &h.Deployment
		if h.Home != nil {
			home, err := homeRebuildShown(e, c)
			if err != nil {
				return nil, err
			}
			lines = append(lines, home...)
		} else if ownActivation(e) {
			own, err := ownShown(e, c)
			if err != nil {
				return nil, err
			}
			lines = append(lines, own...)
		} else {
			what := fmt.Sprintf("<lollypops rebuild: nixos-rebuild %s --flake path:<the store path %s/flake points to>#%s>", e.Action, d.ConfigDir, h.Name)
			cmd, err := ssh.Command(&d.Sudo, rebuildArgv(what, d.ConfigDir, e.Action, h.Name, flakeDir(h))...)
			if err != nil {
				return nil, err
			}
			lines = append(lines, onHost(h, cmd))
		}
		if e.ActivationFollows && plan.Activates(e.Action) {
			for _, f := range h.Secrets.Files {
				if f.UploadAt == config.PostActivation {
					lines = append(lines, secretShown(&f, "post-activation "))
				}
			}
		}
		return lines, nil
	case config.TaskDiff:
		diff := *e
		diff.Action = "build"
		own, err := ownShown(&diff, c)
		if err != nil {
			return nil, err
		}
		lines = append(lines, own...)
		if h.Deployment.EvaluatesHere() {
			lines = append(lines, copyShown(&diff, c))
		}
		lines = append(lines, onHost(h, "sh -c '<lollypops closure: nix path-info --json --recursive of both systems>'")+"  # then the diff: packages, closure size, kernel and initrd")
		return lines, nil
	}
	return nil, fmt.Errorf("no built-in step %q", step)
}

// Connects reports whether a built-in step uses the host's connection.
func Connects(step string) bool {
	return step == config.TaskDeployFlake || step == config.TaskDeploySecrets || step == config.TaskRebuild || step == config.TaskDiff
}

// masterShown is the shared connection as a user would open it by hand:
// the ssh command, the user, the host's ssh.opts and the destination. The
// control socket, host key and keep-alive options lollypops adds are
// summarised in the comment.
func masterShown(h *config.Host, c *ssh.Client) string {
	s := &h.Deployment.SSH
	argv := []string{s.Command}
	if s.User != nil {
		argv = append(argv, "-l", *s.User)
	}
	argv = append(argv, s.Opts...)
	argv = append(argv, s.Host)
	return fmt.Sprintf("%s  # the run's one connection to %s (host keys: %s; every command on %s goes through it; closed at the end of the run)",
		execx.Quote(argv), h.Name, s.HostKeyPolicy, h.Name)
}

// onHost shows a command line run on the host over its connection.
func onHost(h *config.Host, cmd string) string { return "on " + h.Name + ": " + cmd }

func secretShown(f *config.Secret, when string) string {
	return fmt.Sprintf("%s  # %ssecret %q -> %s (%s %s:%s)", f.Cmd, when, f.Label(), f.Path, f.Mode, f.Owner, f.Group)
}

// shownNix drops the feature flags nixArgs adds, which every nix command
// of a step carries.
func shownNix(argv []string) []string {
	if len(argv) > 3 && argv[0] == "nix" && argv[1] == "--extra-experimental-features" {
		return append([]string{"nix"}, argv[3:]...)
	}
	return argv
}

func linkArgv(e *Env) []string {
	return []string{"sh", "-c", "<lollypops link script>", "lollypops-link", e.Host.Deployment.ConfigDir, e.Host.Flake}
}

// receiverCommand is the secret receiver's command line with its script
// replaced by what it does.
func receiverCommand(h *config.Host, files int) (string, error) {
	argv := secrets.ReceiverArgv()
	argv[2] = fmt.Sprintf("<lollypops secret receiver: %d files on stdin>", files)
	return ssh.Command(&h.Deployment.Sudo, argv...)
}

// buildOffShown is how the system of attr is built off the host: here, or
// on its build host.
func buildOffShown(e *Env, attr string) []string {
	ref := config.FlakeRef(e.Host.FlakeSource()) + "#" + attr
	bh := e.buildHost()
	if bh == nil {
		return []string{execx.Quote([]string{"nix", "build", ref}) + "  # builds the system here"}
	}
	where := bh.Host.Deployment.SSH.Target()
	return []string{
		execx.Quote([]string{"nix", "eval", "--raw", ref + ".drvPath"}) + "  # evaluates the system's derivation here",
		execx.Quote([]string{"nix", "copy", "--derivation", "--to", bh.StoreURL(), "<the derivation>"}) + "  # its closure (.drv files and sources) to the build host, through its one connection per run",
		"on build host " + where + ": nix-store --realise '<the derivation>'  # builds the system there (a GC root until it is copied)",
	}
}

// copyShown is how the system built off the host reaches it.
func copyShown(e *Env, c *ssh.Client) string {
	if bh := e.buildHost(); bh != nil {
		return execx.Quote([]string{"nix", "copy", "--from", "ssh://" + bh.Host.Deployment.SSH.Target(), "--to", c.StoreURL(), "--substitute-on-destination", "<the system>"}) +
			"  # from the build host to the host, through this machine and both connections"
	}
	return execx.Quote([]string{"nix", "copy", "--to", c.StoreURL(), "--substitute-on-destination", "<the system>"}) + "  # its closure, through the connection"
}

// ownShown is what the rebuild does when it builds and activates itself.
func ownShown(e *Env, c *ssh.Client) ([]string, error) {
	h := e.Host
	d := &h.Deployment
	var lines []string
	on := func(comment string, argv ...string) error {
		cmd, err := ssh.Command(&d.Sudo, argv...)
		if err != nil {
			return err
		}
		lines = append(lines, onHost(h, cmd)+"  # "+comment)
		return nil
	}
	attr := fmt.Sprintf("nixosConfigurations.%q.config.system.build.toplevel", h.Name)
	if d.EvaluatesHere() {
		lines = append(lines, buildOffShown(e, attr)...)
		if e.Action == "build" {
			return lines, nil
		}
		lines = append(lines, copyShown(e, c))
		if err := on("a GC root for it in a new directory only root can use", execx.Shown(activation.PinArgv("<id>", "<the system>"))...); err != nil {
			return nil, err
		}
	} else {
		if err := on("builds the system on the host", "sh", "-c", "<lollypops build: nix build path:<the store path "+d.ConfigDir+"/flake points to>#"+attr+">"); err != nil {
			return nil, err
		}
		if e.Action == "build" {
			return lines, nil
		}
	}
	p := e.params("<the system>", e.Action)
	start := execx.Shown(activation.StartArgv("<id>", p))
	if p.Window > 0 {
		comment := fmt.Sprintf("detached from the connection: switch-to-configuration test, then waits %s for the confirmation (rolls back without it)", p.Window)
		if e.Action == "switch" {
			comment += "; only then the profile and the boot loader"
		}
		if err := on(comment, start...); err != nil {
			return nil, err
		}
		lines = append(lines, fmt.Sprintf("# then: a new connection to %s, %d health checks, and the confirmation", h.Name, len(d.HealthChecks)))
		return lines, nil
	}
	comment := "detached from the connection: switch-to-configuration " + e.Action + ", no rollback"
	if e.Action == "switch" || e.Action == "boot" {
		comment = "detached from the connection: the profile, then switch-to-configuration " + e.Action + ", no rollback"
	}
	if err := on(comment, start...); err != nil {
		return nil, err
	}
	return lines, nil
}
