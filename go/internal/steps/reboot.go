package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lollypops/lollypops/go/internal/activation"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// rebootReason says why the host should reboot to run system, or "" when
// it need not: after a boot, or when a switch changed the kernel, the
// initrd or the kernel modules (what NixOS's own system.autoUpgrade
// compares before it reboots).
func (e *Env) rebootReason(ctx context.Context, c *ssh.Client, system string) (string, error) {
	switch e.Action {
	case "boot":
		return "REBUILD_ACTION=boot", nil
	case "switch":
	default:
		return "", nil
	}
	inner := activation.BootChangesArgv(system)
	var out []byte
	if id := e.leftState; id != "" {
		// With the removal of the activation's state directory, as root
		// (it only reads links), in one session.
		e.leftState = ""
		var text string
		var err error
		if ch := e.changes; ch != nil {
			// Asked in the confirmation's session already.
			e.changes = nil
			text, err = string(ch.out), ch.err
			if err != nil {
				err = fmt.Errorf("comparing the booted kernel: %w", err)
			}
		} else {
			text, err = e.hostOutput(ctx, c, "comparing the booted kernel", activation.Then(inner, activation.CleanupArgv(id)))
		}
		if err != nil {
			if !activation.ThenRan([]byte(text)) {
				e.cleanup(ctx, c, id)
			}
			return "", err
		}
		out, _ = activation.ThenFirst([]byte(text))
	} else {
		// It only reads links: as the ssh user, without sudo.
		cmd, err := ssh.Command(nil, inner...)
		if err != nil {
			return "", err
		}
		shown, err := ssh.Command(nil, execx.Shown(inner)...)
		if err != nil {
			return "", err
		}
		if out, err = e.Runner.Output(ctx, execx.Cmd{Argv: c.RemoteArgs(cmd), Show: execx.Quote(c.RemoteArgs(shown)), Stderr: e.Stderr}); err != nil {
			return "", fmt.Errorf("comparing the booted kernel: %w", err)
		}
	}
	changed := strings.Fields(string(out))
	switch {
	case len(changed) == 0:
		return "", nil
	case changed[0] == "unknown":
		return "the host has no /run/booted-system to compare with", nil
	}
	for i, c := range changed {
		if c == "kernel-modules" {
			changed[i] = "kernel modules"
		}
	}
	what := changed[len(changed)-1]
	if len(changed) > 1 {
		what = strings.Join(changed[:len(changed)-1], ", ") + " and " + what
	}
	return "the " + what + " changed", nil
}

// reboot reboots the host and waits until it runs system again (within
// reboot.timeout), over a new connection. A marker in /run, which a boot
// empties, tells the boots apart.
func (e *Env) reboot(ctx context.Context, c *ssh.Client, id, system, why string) error {
	defer e.stage("reboot")()
	h := e.Host
	timeout := time.Duration(h.Deployment.Reboot.Timeout) * time.Second
	e.printf("rebooting %s (%s); waiting up to %s for it to come back", h.Name, why, timeout)
	argv, show, err := e.remoteShown(c, activation.RebootArgv(id))
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := e.Runner.Run(ctx, execx.Cmd{Argv: argv, Show: show, Stdout: &out, Stderr: &out}); err != nil {
		// 255: the connection dropped under the command, as a reboot does.
		var xe *execx.Error
		if !errors.As(err, &xe) || xe.ExitCode != 255 {
			msg := lastLine(out.String())
			if msg == "" {
				msg = err.Error()
			}
			return &Hinted{Err: fmt.Errorf("the reboot was refused: %s", msg),
				Advice: "the host runs the new system and did not reboot (" + why + "); the host's message is above: reboot it by hand once that is fixed"}
		}
	}
	c.Close(ctx)
	deadline := time.Now().Add(timeout)
	// Until the host is down, a new connection may still reach the old
	// boot: wait for the next one.
	started := time.Now()
	for {
		if time.Now().After(deadline) {
			return &Hinted{Err: fmt.Errorf("did not come back with the new system within %s after the reboot", timeout),
				Advice: "check the host's console; lollypops.deployment.reboot.timeout sets how long to wait"}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(time.Second)
		if err := c.Ensure(ctx, e.quietRunner()); err != nil {
			continue
		}
		out, err := e.hostOutput(ctx, c, "reading the running system", activation.RebootedArgv(id))
		if err != nil {
			c.Close(ctx)
			continue
		}
		lines := strings.Fields(out)
		if len(lines) < 2 || lines[0] != "new-boot" {
			// Not down yet: still the old boot.
			c.Close(ctx)
			continue
		}
		if lines[1] != system {
			return &Hinted{Err: fmt.Errorf("came back after the reboot running %s, not %s", lines[1], system),
				Advice: "the boot loader did not boot the new system: check the host's boot entries"}
		}
		e.printf("%s is back with the new system after %s", h.Name, time.Since(started).Round(time.Second))
		// The deploy lock's session ended with the old boot: take it
		// again before the health checks and the secrets that follow.
		return e.relock(ctx, c)
	}
}
