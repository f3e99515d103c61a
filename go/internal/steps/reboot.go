package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lollypops/lollypops/go/internal/activation"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// bootChangesScript prints "kernel" and/or "initrd" when the system's
// differ from the ones the host booted (/run/booted-system), or "unknown"
// when the host has no booted system to compare with.
const bootChangesScript = `[ -e /run/booted-system ] || { echo unknown; exit 0; }
for f in kernel initrd; do
	[ "$(readlink -f "/run/booted-system/$f")" = "$(readlink -f "$1/$f")" ] || echo "$f"
done`

// needsReboot says why the host should reboot into system, or "" when it
// need not: after a boot, or when the kernel or initrd changed.
func (e *Env) needsReboot(ctx context.Context, c *ssh.Client, system string) (string, error) {
	if !e.Host.Deployment.Reboot.Enable {
		return "", nil
	}
	if e.Action == "boot" {
		return "REBUILD_ACTION=boot", nil
	}
	if e.Action != "switch" {
		return "", nil
	}
	out, err := e.hostOutput(ctx, c, "comparing the booted kernel", []string{"sh", "-c", bootChangesScript, "lollypops-boot-changes", system})
	if err != nil {
		return "", err
	}
	changed := strings.Fields(out)
	switch {
	case len(changed) == 0:
		return "", nil
	case changed[0] == "unknown":
		return "the host has no /run/booted-system to compare with", nil
	}
	return "the " + strings.Join(changed, " and ") + " changed", nil
}

// reboot reboots the host and waits until it runs system again (within
// reboot.timeout), over a new connection. The activation's state
// directory, in /run, tells the boots apart: a reboot clears /run.
func (e *Env) reboot(ctx context.Context, c *ssh.Client, id, system, why string) error {
	h := e.Host
	timeout := time.Duration(h.Deployment.Reboot.Timeout) * time.Second
	e.printf("rebooting %s (%s); waiting up to %s for it to come back", h.Name, why, timeout)
	// The connection drops under the command: its exit status means
	// nothing. Ask systemd, which returns before the reboot starts.
	argv, err := e.remote(c, "systemctl", "reboot")
	if err != nil {
		return err
	}
	e.Runner.Run(ctx, execx.Cmd{Argv: argv, Stdout: e.Stdout, Stderr: e.Stderr})
	c.Close(ctx)
	deadline := time.Now().Add(timeout)
	// Until the host is down, a new connection may still reach the old
	// system: wait for the one it boots.
	started := time.Now()
	for {
		if time.Now().After(deadline) {
			return &Hinted{Err: fmt.Errorf("did not come back with the new system within %s after the reboot", timeout),
				Hint: "check the host's console; lollypops.deployment.reboot.timeout sets how long to wait"}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(time.Second)
		if err := c.Ensure(ctx, e.quietRunner()); err != nil {
			continue
		}
		out, err := e.hostOutput(ctx, c, "reading the running system", []string{"sh", "-c",
			`if [ -d "$1" ]; then echo old-boot; else echo new-boot; fi; readlink -f /run/current-system`, "lollypops-rebooted", activation.Dir(id)})
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
				Hint: "the boot loader did not boot the new system: check the host's boot entries"}
		}
		e.printf("%s is back with the new system after %s", h.Name, time.Since(started).Round(time.Second))
		// The deploy lock's session ended with the old boot: take it
		// again before the health checks and the secrets that follow.
		return e.lock(ctx, c)
	}
}
