package steps

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/ssh"
	"github.com/lollypops/lollypops/go/internal/termtext"
)

// A build host (lollypops.deployment.build-host) builds the system as
// nixos-rebuild --build-host does: the derivation is evaluated here, its
// closure (the .drv files and sources, not their outputs) copied to the
// build host, realised there, and the system copied from the build host to
// the target, streamed through this machine, with substitutes on the
// target. Targets that share a build host share its connection; two
// targets with the same system realise it once, as Nix's own locks on the
// build host make the second build wait for the first.

//go:embed realise.sh
var realiseScript string

// built is a system built off the target: here, or on the build host,
// where a GC root keeps it until release.
type built struct {
	system  string
	builder *ssh.Client // nil: built here
	release func()
}

// buildOff builds the host's system where its deployment says: on its
// build host, or here (local-evaluation).
func (e *Env) buildOff(ctx context.Context) (*built, error) {
	if e.Host.Deployment.BuildHost == nil {
		system, err := buildHere(ctx, e)
		if err != nil {
			return nil, err
		}
		return &built{system: system, release: func() {}}, nil
	}
	return e.buildOnBuildHost(ctx)
}

// deliver copies what buildOff built to the host.
func (e *Env) deliver(ctx context.Context, c *ssh.Client, b *built) error {
	if b.builder == nil {
		return e.copyClosure(ctx, c, b.system)
	}
	return e.copyFromBuildHost(ctx, c, b)
}

// builtWhere says where b was built, for messages.
func builtWhere(b *built) string {
	if b.builder == nil {
		return "here"
	}
	return "on " + b.builder.Host.Deployment.SSH.Target()
}

func (e *Env) buildHost() *ssh.Client {
	return ssh.BuildHost(e.Host, e.Run.SSH)
}

// buildOnBuildHost evaluates the system's derivation here and builds it on
// the build host.
func (e *Env) buildOnBuildHost(ctx context.Context) (*built, error) {
	h := e.Host
	bh := e.buildHost()
	where := bh.Host.Deployment.SSH.Target()
	attr := fmt.Sprintf("%s#nixosConfigurations.%q.config.system.build.toplevel.drvPath", config.FlakeRef(h.FlakeSource()), h.Name)
	e.printf("evaluating the system of %s here, to build it on %s", h.Name, where)
	out, err := e.Runner.Output(ctx, execx.Cmd{Argv: nixArgs("eval", "--raw", attr), Stderr: e.Stderr})
	if err != nil {
		if xe, ok := err.(*execx.Error); ok && xe.NotFound {
			return nil, &Hinted{Err: fmt.Errorf("nix: not found on this machine"), Advice: "with a build host, the system is evaluated here; install Nix"}
		}
		return nil, &Hinted{Err: fmt.Errorf("evaluating the system: %w", err), Advice: "nix's output is above"}
	}
	drv := strings.TrimSpace(string(out))
	if !strings.HasPrefix(drv, "/nix/store/") || !strings.HasSuffix(drv, ".drv") || strings.ContainsAny(drv, " \n") {
		return nil, fmt.Errorf("evaluating the system: %q is not a derivation", drv)
	}
	if err := bh.Ensure(ctx, e.Runner); err != nil {
		return nil, buildHostError(err)
	}
	bin, err := e.wrapper(bh)
	if err != nil {
		return nil, err
	}
	e.printf("copying the system's derivation to build host %s", where)
	copyArgv := nixArgs("copy", "--derivation", "--to", bh.StoreURL(), drv)
	if err := e.Runner.Run(ctx, execx.Cmd{Argv: copyArgv, Path: bin, Stdout: e.Stderr, Stderr: e.Stderr}); err != nil {
		return nil, &Hinted{Err: fmt.Errorf("build host %s: copying the system's derivation: %w", where, err),
			Advice: "the build host's ssh user must be able to add paths to its Nix store (root, or a trusted user of its nix-daemon)"}
	}
	e.printf("building the system of %s on build host %s", h.Name, where)
	cmd, err := ssh.Command(nil, "sh", "-c", realiseScript, "lollypops-realise", drv)
	if err != nil {
		return nil, err
	}
	var tail lastLines
	res, err := e.Runner.Output(ctx, execx.Cmd{Argv: bh.RemoteArgs(cmd), Show: execx.Quote(bh.RemoteArgs("<lollypops realise: nix-store --realise " + drv + ">")),
		Stderr: io.MultiWriter(e.Stderr, &tail)})
	if err != nil {
		msg := fmt.Errorf("build host %s: building the system: %w", where, err)
		if l := tail.last(); l != "" {
			msg = fmt.Errorf("%w: %s", msg, termtext.Line(l))
		}
		return nil, &Hinted{Err: msg, Advice: "nix's output on the build host is above; the other hosts go on"}
	}
	lines := strings.Split(strings.TrimSpace(string(res)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "/nix/store/") || !strings.HasPrefix(lines[0], "/") ||
		!strings.HasPrefix(path.Base(lines[0]), "lollypops-build.") {
		return nil, fmt.Errorf("build host %s: building the system: unexpected output %q", where, res)
	}
	root, system := lines[0], lines[1]
	release := func() {
		cmd, err := ssh.Command(nil, "rm", "-rf", "--", root)
		if err == nil {
			e.Runner.Run(context.WithoutCancel(ctx), execx.Cmd{Argv: bh.RemoteArgs(cmd), Stderr: io.Discard})
		}
	}
	return &built{system: system, builder: bh, release: release}, nil
}

// copyFromBuildHost copies the system's closure from the build host to the
// host: one nix copy between the two, through this machine, each end over
// its own shared connection (ssh.RelayScript).
func (e *Env) copyFromBuildHost(ctx context.Context, c *ssh.Client, b *built) error {
	from := ssh.Relay{Alias: "lollypops-build-host", Client: b.builder}
	to := ssh.Relay{Alias: "lollypops-target", Client: c}
	sshPath, err := e.sshPath()
	if err != nil {
		return err
	}
	script, err := ssh.RelayScript(sshPath, from, to)
	if err != nil {
		return err
	}
	dir := c.Prefix + ".relay.bin"
	if err := writeProgram(dir, "ssh", script); err != nil {
		return err
	}
	where := b.builder.Host.Deployment.SSH.Target()
	e.printf("copying the system's closure from build host %s to %s", where, e.Host.Name)
	argv := nixArgs("copy", "--from", from.StoreURL(), "--to", to.StoreURL(), "--substitute-on-destination", b.system)
	show := execx.Quote(nixArgs("copy", "--from", "ssh://"+where, "--to", c.StoreURL(), "--substitute-on-destination", b.system))
	if err := e.Runner.Run(ctx, execx.Cmd{Argv: argv, Show: show, Path: dir, Stdout: e.Stderr, Stderr: e.Stderr}); err != nil {
		return &Hinted{Err: fmt.Errorf("copying the system's closure from build host %s: %w", where, err),
			Advice: "the host's ssh user must be able to add paths to its Nix store (root, or a trusted user of its nix-daemon); nix's output is above"}
	}
	return nil
}

// buildHostError names the build host in a failure to reach it, and its
// options in the hint.
func buildHostError(err error) error {
	ce, ok := err.(*ssh.ConnectError)
	if !ok {
		return fmt.Errorf("build host: %w", err)
	}
	advice := strings.NewReplacer(
		"lollypops.deployment.ssh.host-key", "lollypops.deployment.build-host.host-key",
		"lollypops.deployment.ssh.user", "lollypops.deployment.build-host.user",
		"check lollypops.deployment.ssh.host", "check lollypops.deployment.build-host.host",
		"the other hosts go on", "the hosts it builds for fail, the others go on",
	).Replace(ce.Advice)
	return &Hinted{Err: fmt.Errorf("build host: %w", err), Advice: advice}
}

// lastLines keeps the end of what is written to it, for nix's last error.
type lastLines struct{ buf []byte }

func (l *lastLines) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	if len(l.buf) > 8192 {
		l.buf = l.buf[len(l.buf)-4096:]
	}
	return len(p), nil
}

// last is nix's last "error:" line, or else the last line.
func (l *lastLines) last() string {
	lines := bytes.Split(bytes.TrimSpace(l.buf), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(string(lines[i])); strings.HasPrefix(s, "error:") {
			return s
		}
	}
	return strings.TrimSpace(string(lines[len(lines)-1]))
}

// writeProgram writes an executable file name in dir, atomically: steps of
// a host may run in parallel.
func writeProgram(dir, name, content string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+name+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o700); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}
