package steps

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lollypops/lollypops/go/internal/activation"
	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// ownActivation reports whether the rebuild builds and activates the system
// itself instead of running nixos-rebuild on the host: always with local
// evaluation (build here, copy the closure, activate), and for a switch or
// test with rollback enabled (the guard must own the activation).
func ownActivation(e *Env) bool {
	d := &e.Host.Deployment
	return d.LocalEvaluation || d.Reboot.Enable || (d.Rollback.Enable && guarded(e))
}

// guarded reports whether the activation runs under the guard, which rolls
// it back by itself.
func guarded(e *Env) bool {
	return e.Host.Deployment.Rollback.Enable && (e.Action == "switch" || e.Action == "test")
}

// RolledBack is a rebuild whose host returned to its previous system.
type RolledBack struct {
	Reason string
	Failed bool // the rollback itself failed: the host needs a person
}

func (e *RolledBack) Error() string {
	if e.Failed {
		return "the rollback failed after: " + e.Reason
	}
	return "rolled back to the previous system: " + e.Reason
}

// rebuildOwn builds the system (here or on the host), puts it on the host
// and activates it: under the guard for a guarded action, directly
// otherwise.
func rebuildOwn(ctx context.Context, e *Env, c *ssh.Client) (string, error) {
	h := e.Host
	d := &h.Deployment
	id, err := newID()
	if err != nil {
		return "", err
	}
	var system string
	if d.LocalEvaluation {
		if system, err = buildHere(ctx, e); err != nil {
			return "", err
		}
		if e.Action == "build" {
			e.printf("built %s (not copied: REBUILD_ACTION=build)", system)
			return "build", nil
		}
		if err := e.copyClosure(ctx, c, system); err != nil {
			return "", err
		}
		if err := e.hostRun(ctx, c, "preparing the activation", activation.PrepareArgv(id)); err != nil {
			return "", err
		}
		out, err := e.hostOutput(ctx, c, "registering the system", activation.PinArgv(id, system))
		if err != nil {
			return "", err
		}
		if system, err = activation.ParseSystem(out); err != nil {
			return "", err
		}
	} else {
		if err := e.hostRun(ctx, c, "preparing the activation", activation.PrepareArgv(id)); err != nil {
			return "", err
		}
		e.printf("building the system of %s on the host", h.Name)
		out, err := e.hostOutput(ctx, c, "building the system", activation.BuildArgv(d.ConfigDir+"/flake", h.Name, id, flakeDir(h)))
		if err != nil {
			return "", &Hinted{Err: err, Hint: fmt.Sprintf("the build's output is above; if %s/flake is missing, run the host's deploy-flake task first", d.ConfigDir)}
		}
		if system, err = activation.ParseSystem(out); err != nil {
			return "", err
		}
		if e.Action == "build" {
			e.printf("built %s", system)
			return "build", nil
		}
	}
	note, err := e.activate(ctx, c, id, system)
	if err != nil {
		return "", err
	}
	why, err := e.needsReboot(ctx, c, system)
	if err != nil || why == "" {
		return note, err
	}
	if err := e.reboot(ctx, c, id, system, why); err != nil {
		return "", err
	}
	if err := e.healthChecks(ctx, c); err != nil {
		return "", &Hinted{Err: fmt.Errorf("after the reboot: %w", err), Hint: "the host runs the new system; roll back with REBUILD_ACTION and an earlier flake, or nixos-rebuild switch --rollback on the host"}
	}
	return note + ", rebooted", nil
}

// activate activates system, under the guard or directly.
func (e *Env) activate(ctx context.Context, c *ssh.Client, id, system string) (string, error) {
	if guarded(e) {
		return e.guard(ctx, c, id, system)
	}
	e.printf("activating %s (%s)", system, e.Action)
	argv, err := e.remote(c, "sh", "-c", directScript, "lollypops-activate", system, e.Action, activation.Profile)
	if err != nil {
		return "", err
	}
	e.protect(true)
	err = e.Runner.Run(ctx, execx.Cmd{Argv: argv, Stdout: e.Stdout, Stderr: e.Stderr, Detach: true})
	e.protect(false)
	if err != nil {
		return "", &Hinted{Err: fmt.Errorf("switch-to-configuration %s: %w", e.Action, err), Hint: "its output is above"}
	}
	if plan.Activates(e.Action) {
		if err := e.healthChecks(ctx, c); err != nil {
			return "", err
		}
	}
	return e.Action, nil
}

// directScript activates without the guard, as nixos-rebuild does.
const directScript = `set -u
case $2 in switch | boot) nix-env -p "$3" --set "$1" || exit 1 ;; esac
exec "$1/bin/switch-to-configuration" "$2"`

// guard runs the activation under the guard and sees it through: wait
// until it is activated, reach the host again over a new connection, run
// the health checks, and confirm — or let the host roll back.
func (e *Env) guard(ctx context.Context, c *ssh.Client, id, system string) (string, error) {
	h := e.Host
	timeout := time.Duration(h.Deployment.Rollback.ConfirmTimeout) * time.Second
	e.printf("activating %s (%s); %s rolls back by itself unless confirmed within %s", system, e.Action, h.Name, timeout)
	if err := e.hostRun(ctx, c, "starting the activation", activation.GuardArgv(id, system, e.Action, timeout)); err != nil {
		return "", &Hinted{Err: err, Hint: "the activation runs as a transient systemd service (systemd-run); set lollypops.deployment.rollback.enable = false to activate without it"}
	}
	e.protect(true)
	defer e.protect(false)
	started := time.Now()
	st, err := e.pollStatus(ctx, c, id, func(s activation.Status) bool { return s.State != activation.Activating })
	if err != nil {
		// The connection died during the switch: reconnect below.
		e.printf("lost the connection during the activation: %v", err)
	}
	if err == nil && st.Final() {
		e.showLog(ctx, c, id)
		return "", e.outcome(st)
	}
	// Reachable again? A new connection proves it; the old one may have
	// survived a broken sshd.
	e.printf("activated; checking that %s can be reached again", h.Name)
	c.Close(ctx)
	deadline := started.Add(timeout - 2*time.Second)
	if err := e.reconnect(ctx, c, deadline); err != nil {
		e.printf("cannot reach %s again: %v; it rolls back by itself", h.Name, err)
		// Wait for the rollback, to report it.
		if rerr := e.reconnect(ctx, c, started.Add(timeout+90*time.Second)); rerr != nil {
			return "", &Hinted{Err: fmt.Errorf("unreachable after the activation (%v); the host rolls back by itself %s after it started", err, timeout),
				Hint: "check the host's console; the rollback's status is in " + activation.Dir(id) + "/status"}
		}
		st, perr := e.pollStatus(ctx, c, id, activation.Status.Final)
		e.showLog(ctx, c, id)
		if perr != nil {
			return "", perr
		}
		o := e.outcome(st)
		var rb *RolledBack
		if errors.As(o, &rb) {
			rb.Reason += fmt.Sprintf(" (the deployer could not reconnect: %v)", err)
		}
		return "", o
	}
	// The deploy lock's session ended with the old connection.
	if err := e.lock(ctx, c); err != nil {
		e.printf("%v; the activation is not confirmed, and rolls back", err)
		return "", err
	}
	if cerr := e.healthChecks(ctx, c); cerr != nil {
		e.printf("%v; rolling back", cerr)
		if err := e.hostRun(ctx, c, "asking for the rollback", activation.AbortArgv(id, cerr.Error())); err != nil {
			return "", err
		}
		st, err := e.pollStatus(ctx, c, id, activation.Status.Final)
		e.showLog(ctx, c, id)
		if err != nil {
			return "", err
		}
		return "", e.outcome(st)
	}
	if err := e.hostRun(ctx, c, "confirming the activation", activation.ConfirmArgv(id)); err != nil {
		return "", err
	}
	st, err = e.pollStatus(ctx, c, id, activation.Status.Final)
	e.showLog(ctx, c, id)
	if err != nil {
		return "", err
	}
	if st.State != activation.Confirmed {
		return "", e.outcome(st)
	}
	e.printf("confirmed: %s runs %s", h.Name, system)
	return e.Action, nil
}

func (e *Env) outcome(st activation.Status) error {
	switch st.State {
	case activation.Confirmed:
		return nil
	case activation.RollbackFailed:
		return &Hinted{Err: &RolledBack{Reason: st.Reason, Failed: true},
			Hint: "the host may run a mix of both systems: look at it now (nixos-rebuild list-generations, journalctl)"}
	}
	return &Hinted{Err: &RolledBack{Reason: st.Reason}, Hint: "the activation's output is above; the new system is still a generation of the profile"}
}

// pollStatus reads the guard's status until done says so.
func (e *Env) pollStatus(ctx context.Context, c *ssh.Client, id string, done func(activation.Status) bool) (activation.Status, error) {
	argv, err := e.remote(c, activation.StatusArgv(id)...)
	if err != nil {
		return activation.Status{}, err
	}
	for {
		out, err := e.Runner.Output(ctx, execx.Cmd{Argv: argv, Stderr: e.Stderr})
		if err != nil {
			return activation.Status{}, err
		}
		st, err := activation.ParseStatus(string(out))
		if err != nil {
			return st, err
		}
		if done(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// reconnect opens a new shared connection, retrying until deadline.
func (e *Env) reconnect(ctx context.Context, c *ssh.Client, deadline time.Time) error {
	for {
		err := c.Ensure(ctx, e.quietRunner())
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// quietRunner runs commands without echoing them: a reconnect loop would
// print one line per attempt.
func (e *Env) quietRunner() *execx.Runner {
	return &execx.Runner{Stdout: e.Runner.Stdout, Stderr: e.Runner.Stderr}
}

// showLog prints what the activation printed on the host.
func (e *Env) showLog(ctx context.Context, c *ssh.Client, id string) {
	argv, err := e.remote(c, activation.LogArgv(id)...)
	if err != nil {
		return
	}
	out, err := e.Runner.Output(ctx, execx.Cmd{Argv: argv, Stderr: e.Stderr})
	if err != nil {
		return
	}
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			fmt.Fprintln(e.Stderr, l)
		}
	}
}

func (e *Env) protect(on bool) {
	if e.Protect != nil {
		e.Protect.Store(on)
	}
}

// hostRun runs argv on the host (through sudo when enabled).
func (e *Env) hostRun(ctx context.Context, c *ssh.Client, what string, argv []string) error {
	_, err := e.hostOutput(ctx, c, what, argv)
	return err
}

// hostOutput runs argv on the host and returns its standard output; its
// standard error reaches the user.
func (e *Env) hostOutput(ctx context.Context, c *ssh.Client, what string, argv []string) (string, error) {
	full, err := e.remote(c, argv...)
	if err != nil {
		return "", err
	}
	show := execx.Quote(full)
	if len(argv) > 2 && argv[1] == "-c" {
		show = execx.Quote(full[:len(full)-1]) + " '<lollypops " + what + ">'"
	}
	out, err := e.Runner.Output(ctx, execx.Cmd{Argv: full, Show: show, Stderr: e.Stderr, Detach: true})
	if err != nil {
		return string(out), fmt.Errorf("%s: %w", what, err)
	}
	return string(out), nil
}

// buildHere builds the host's system on this machine; the result is a GC
// root in the run directory while the run lasts.
func buildHere(ctx context.Context, e *Env) (string, error) {
	h := e.Host
	link := filepath.Join(e.Run.Path, "system-"+h.Name)
	attr := fmt.Sprintf("%s#nixosConfigurations.%q.config.system.build.toplevel", config.FlakeRef(h.FlakeSource()), h.Name)
	e.printf("building the system of %s here", h.Name)
	return buildHereTo(ctx, e, nixArgs("build", "--out-link", link, attr), e.Stderr, link, "the system",
		"local evaluation builds here; install Nix, or set local-evaluation = false")
}

// buildHereTo runs argv, a build on this machine whose result link is
// link (a GC root while the run lasts), and returns the store path it
// points to. what names the result and notFound is the hint when the
// program is missing.
func buildHereTo(ctx context.Context, e *Env, argv []string, stdout io.Writer, link, what, notFound string) (string, error) {
	if err := e.Runner.Run(ctx, execx.Cmd{Argv: argv, Stdout: stdout, Stderr: e.Stderr}); err != nil {
		if xe, ok := err.(*execx.Error); ok && xe.NotFound {
			return "", &Hinted{Err: fmt.Errorf("%s: not found on this machine", argv[0]), Hint: notFound}
		}
		return "", &Hinted{Err: fmt.Errorf("building %s: %w", what, err), Hint: "the build's output is above"}
	}
	out, err := os.Readlink(link)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(out, "/nix/store/") {
		return "", fmt.Errorf("building %s: %s is not a store path", what, out)
	}
	return out, nil
}

// copyClosure copies the system's closure to the host over the shared
// connection.
func (e *Env) copyClosure(ctx context.Context, c *ssh.Client, system string) error {
	return e.copyPaths(ctx, c, "the system's closure", system)
}

// copyPaths copies the closure of a store path to the host over the shared
// connection; what names it for messages.
func (e *Env) copyPaths(ctx context.Context, c *ssh.Client, what, storePath string) error {
	bin, err := e.wrapper(c)
	if err != nil {
		return err
	}
	e.printf("copying %s to %s", what, e.Host.Name)
	argv := nixArgs("copy", "--to", c.StoreURL(), "--substitute-on-destination", storePath)
	if err := e.Runner.Run(ctx, execx.Cmd{Argv: argv, Path: bin, Stdout: e.Stderr, Stderr: e.Stderr}); err != nil {
		return &Hinted{Err: fmt.Errorf("copying %s: %w", what, err),
			Hint: "the host's ssh user must be able to add paths to its Nix store (root, or a trusted user of its nix-daemon)"}
	}
	return nil
}

func newID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
