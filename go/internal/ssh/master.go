package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
)

// ConnectError is a failure to open the shared connection, with what ssh
// said about it.
type ConnectError struct {
	Target string
	Output string // ssh's messages, trimmed
	Err    error
	Advice string
}

// Hint says what may fix the connection (fault.Hinter).
func (e *ConnectError) Hint() string { return e.Advice }

func (e *ConnectError) Error() string {
	msg := fmt.Sprintf("cannot connect to %s", e.Target)
	if e.Output != "" {
		return msg + ": " + e.Output
	}
	return fmt.Sprintf("%s: %v", msg, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Alive reports whether the host's master answers on its socket.
func (c *Client) Alive() bool {
	conn, err := net.DialTimeout("unix", c.ControlPath(), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// Ensure opens the shared connection unless a step of this run already did.
// Steps of one host may run in parallel (go-task -p), so opening is
// serialised with a lock file: exactly one master, one authentication.
func (c *Client) Ensure(ctx context.Context, r *execx.Runner) error {
	if c.Alive() {
		return nil
	}
	lock, err := os.OpenFile(c.LockFile(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if c.Alive() {
		return nil
	}
	os.Remove(c.ControlPath()) // a stale socket of a master that died
	if c.Host.Deployment.SSH.HostKeyPolicy == config.HostKeyPinned {
		if err := os.WriteFile(c.KnownHostsFile(), []byte(c.KnownHostsLine()), 0o600); err != nil {
			return err
		}
	}
	// The master outlives this process (ssh -f), so it must not hold our
	// stdout or stderr: go-task waits for those pipes to close. Its
	// messages go to a log file that is shown when it fails.
	log, err := os.OpenFile(c.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	runErr := r.Run(ctx, execx.Cmd{Argv: c.MasterArgs(), Stdout: log, Stderr: log})
	if runErr == nil && c.Alive() {
		return nil
	}
	out, _ := os.ReadFile(c.LogFile())
	e := &ConnectError{Target: c.Host.Deployment.SSH.Target(), Output: tidy(string(out)), Err: runErr}
	if runErr == nil {
		e.Err = errors.New("ssh exited but no connection is open")
	}
	var xe *execx.Error
	if errors.As(runErr, &xe) && xe.NotFound {
		e.Advice = fmt.Sprintf("lollypops.deployment.ssh.command is %q; install it or set the option to an ssh client on this machine's PATH", c.Host.Deployment.SSH.Command)
	} else {
		e.Advice = connectHint(c, e.Output)
	}
	return e
}

// Close stops the shared connection, if one is open.
func (c *Client) Close(ctx context.Context) error {
	if !c.Alive() {
		return nil
	}
	cmd := exec.CommandContext(ctx, c.ExitArgs()[0], c.ExitArgs()[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("closing the connection to %s: %v: %s", c.Host.Name, err, tidy(string(out)))
	}
	return nil
}

// tidy joins ssh's message lines, dropping empty ones and the noise of
// "Warning: Permanently added" lines.
func tidy(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(strings.TrimSuffix(l, "\r"))
		if l == "" || strings.HasPrefix(l, "Warning: Permanently added") {
			continue
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "; ")
}

func connectHint(c *Client, out string) string {
	s := &c.Host.Deployment.SSH
	switch {
	case strings.Contains(out, "REMOTE HOST IDENTIFICATION HAS CHANGED"),
		strings.Contains(out, "Host key for") && strings.Contains(out, "has changed"):
		if s.HostKeyPolicy == config.HostKeyPinned {
			return "the host's key differs from lollypops.deployment.ssh.host-key; if the host was reinstalled, update the pinned key"
		}
		return "the host's key differs from the one in known_hosts; if the host was reinstalled, remove the old key with ssh-keygen -R and deploy again"
	case strings.Contains(out, "Host key verification failed"),
		strings.Contains(out, "No ") && strings.Contains(out, "host key is known"):
		if s.HostKeyPolicy == config.HostKeyPinned {
			return "the host's key does not match lollypops.deployment.ssh.host-key"
		}
		return "the host's key is not in known_hosts; add it (ssh-keyscan, or ssh once by hand), pin it with lollypops.deployment.ssh.host-key, or set host-key-policy = \"accept-new\""
	case strings.Contains(out, "Permission denied"):
		return fmt.Sprintf("the host refused the login of %s; check the key (ssh-add -l) and lollypops.deployment.ssh.user", s.Target())
	case strings.Contains(out, "Could not resolve hostname"):
		return fmt.Sprintf("check lollypops.deployment.ssh.host (%q)", s.Host)
	case strings.Contains(out, "Connection refused"), strings.Contains(out, "timed out"),
		strings.Contains(out, "No route to host"):
		return "is the host up and its sshd running? the other hosts go on"
	}
	return ""
}
