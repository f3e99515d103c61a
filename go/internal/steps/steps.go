// Package steps implements lollypops' built-in per-host tasks: check-vars,
// deploy-flake, deploy-secrets and rebuild. Each is an ordinary function the
// step binary calls; the commands it runs are argv lists, built by the same
// functions that render them for --dry (see Describe).
package steps

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sync/atomic"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/lock"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/ssh"
	"github.com/lollypops/lollypops/go/internal/sudopw"
)

// Env is what a step works with.
type Env struct {
	Host   *config.Host
	Run    *rundir.Dir
	Runner *execx.Runner
	Stdin  io.Reader
	Stdout io.Writer // messages and the output of commands
	Stderr io.Writer
	Action string
	// ActivationFollows is set when the run deploys the host as a whole and
	// its rebuild activates after deploy-secrets: post-activation secrets
	// wait for it, and a missing owner is not an error yet.
	ActivationFollows bool
	// ShowConnection makes Describe show the host's shared connection: set
	// for the host's first step that connects, so --dry shows it once.
	ShowConnection bool
	// SudoFeed, when set, is the step binary: the run has a sudo password
	// (package sudopw), and commands through sudo go through the host's
	// root session, with the step binary's sudo-exec mode.
	SudoFeed string
	// Protect is set while an activation runs on the host: the step binary
	// then lets a first Ctrl-C pass, so the activation can finish.
	Protect *atomic.Bool
	// Stages records the step's parts, for --timings and the report.
	Stages *Stages

	// keepState: the next activation that ends confirmed leaves its state
	// directory's removal (leftState) to the command that follows it
	// (rebootReason), which saves a session.
	keepState bool
	leftState string
	// changes is what the confirmation's session printed of the boot's
	// changes and the state directory's removal (activation.After), for
	// rebootReason.
	changes *changes
}

// Hinted is an error with advice on how to fix it.
type Hinted struct {
	Err    error
	Advice string
}

func (e *Hinted) Error() string { return e.Err.Error() }
func (e *Hinted) Hint() string  { return e.Advice }
func (e *Hinted) Unwrap() error { return e.Err }

func (e *Env) ssh() *ssh.Client {
	return &ssh.Client{Host: e.Host, Prefix: e.Run.SSH(e.Host.Name)}
}

func (e *Env) printf(format string, args ...any) {
	fmt.Fprintf(e.Stdout, format+"\n", args...)
}

// connect opens (or joins) the host's shared connection, and takes (or
// joins) the run's deploy lock on the host: every step that connects
// changes the host (see package lock).
func (e *Env) connect(ctx context.Context) (*ssh.Client, error) {
	c, err := e.open(ctx)
	if err != nil {
		return nil, err
	}
	done := e.stage("lock")
	err = e.lock(ctx, c)
	done()
	if err != nil {
		return nil, err
	}
	if err := e.checkRunningLocked(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// open opens (or joins) the host's shared connection, without the lock:
// what a step does before it holds the lock must change nothing a lock
// protects.
func (e *Env) open(ctx context.Context) (*ssh.Client, error) {
	c := e.ssh()
	done := e.stage("connect")
	err := c.Ensure(ctx, e.Runner)
	done()
	if err != nil {
		if ce, ok := err.(*ssh.ConnectError); ok && ce.Advice != "" {
			return nil, &Hinted{Err: err, Advice: ce.Advice}
		}
		return nil, err
	}
	return c, nil
}

// lock takes the run's deploy lock on the host (package lock), or joins
// it when another step of the run holds it.
func (e *Env) lock(ctx context.Context, c *ssh.Client) error {
	return e.lockWith(ctx, c, lock.Acquire)
}

// relock takes the lock again over a new connection: the holder's
// session ended, or is ending, with the old one.
func (e *Env) relock(ctx context.Context, c *ssh.Client) error {
	return e.lockWith(ctx, c, lock.Reacquire)
}

func (e *Env) lockWith(ctx context.Context, c *ssh.Client,
	take func(context.Context, *ssh.Client, *rundir.Dir, io.Writer, func(...string) ([]string, error)) error) error {
	remote := func(argv ...string) ([]string, error) { return e.remote(c, argv...) }
	if err := take(ctx, c, e.Run, e.Runner.Echo, remote); err != nil {
		if h, ok := err.(interface{ Hint() string }); ok && h.Hint() != "" {
			return &Hinted{Err: err, Advice: h.Hint()}
		}
		return err
	}
	return nil
}

// wrapper writes the ssh wrapper of c (the host's connection, or its
// build host's), for programs that run ssh themselves, and returns its
// directory for the front of their PATH.
func (e *Env) wrapper(c *ssh.Client) (string, error) {
	sshPath, err := e.sshPath()
	if err != nil {
		return "", err
	}
	script, err := c.WrapperScript(sshPath)
	if err != nil {
		return "", err
	}
	dir := c.WrapperDir()
	return dir, writeProgram(dir, "ssh", script)
}

// sshPath is the absolute path of the host's ssh command.
func (e *Env) sshPath() (string, error) {
	sshPath, err := exec.LookPath(e.Host.Deployment.SSH.Command)
	if err != nil {
		return "", &Hinted{Err: fmt.Errorf("ssh command %q: not found", e.Host.Deployment.SSH.Command),
			Advice: "set lollypops.deployment.ssh.command to an ssh client on this machine's PATH"}
	}
	return filepath.Abs(sshPath)
}

// remote returns the argv that runs argv on the host, through sudo when
// the host enables it, over the shared connection. When the run has a
// sudo password, that is the step binary's sudo-exec mode: the host's
// root session, opened once per connection (package sudopw).
func (e *Env) remote(c *ssh.Client, argv ...string) ([]string, error) {
	if s := &e.Host.Deployment.Sudo; s.Enable && e.SudoFeed != "" {
		if _, err := ssh.Command(nil, argv...); err != nil {
			return nil, err // what the host could not be given anyway
		}
		return sudopw.Argv(e.SudoFeed, e.Host.Name, argv), nil
	}
	cmd, err := ssh.Command(&e.Host.Deployment.Sudo, argv...)
	if err != nil {
		return nil, err
	}
	return c.RemoteArgs(cmd), nil
}

// remoteShown is remote's argv, and the line --verbose shows for it: the
// same command with each of lollypops' scripts by its name (execx.Shown),
// quoted as the real one is.
func (e *Env) remoteShown(c *ssh.Client, argv []string) ([]string, string, error) {
	full, err := e.remote(c, argv...)
	if err != nil {
		return nil, "", err
	}
	shown, err := e.remote(c, execx.Shown(argv)...)
	if err != nil {
		return nil, "", err
	}
	return full, execx.Quote(shown), nil
}

// nixArgs prefixes a nix subcommand with the features it needs, so the
// deployer's nix.conf does not have to enable them.
func nixArgs(args ...string) []string {
	return append([]string{"nix", "--extra-experimental-features", "nix-command flakes"}, args...)
}

// changes is the output and error of the boot's changes and the state
// directory's removal, asked in the session that confirmed a switch.
type changes struct {
	out []byte
	err error
}
