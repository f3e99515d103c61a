// Package ssh builds the OpenSSH command lines lollypops runs, and keeps one
// authenticated connection per host and run: a ControlMaster whose socket
// lives in the run directory. Every later ssh session of the run — the
// steps' remote commands, nix copy, nixos-rebuild --target-host — is
// multiplexed over it, so a host authenticates once per run however many
// secrets it has.
//
// The OpenSSH client is used rather than a Go ssh library because it honours
// the user's ~/.ssh/config, agent, ProxyJump and keys exactly as nix does.
//
// Option order matters: ssh keeps the first value it sees for an option. The
// command line is therefore: lollypops' own settings that must hold (control
// socket, host key policy, user), then the host's ssh.opts, then soft
// defaults (timeouts, keep-alives) the user's options may override.
package ssh

import (
	"fmt"
	"strings"

	"mvdan.cc/sh/v3/syntax"

	"github.com/lollypops/lollypops/go/internal/config"
)

// Client builds ssh command lines for one host.
type Client struct {
	Host *config.Host
	// Prefix is the host's file prefix in the run directory (rundir.Dir.SSH).
	Prefix string
}

// ControlPath is the master's socket.
func (c *Client) ControlPath() string { return c.Prefix + ".sock" }

// KnownHostsFile holds the pinned host key (policy "pinned").
func (c *Client) KnownHostsFile() string { return c.Prefix + ".known_hosts" }

// LogFile receives the master's own messages (errors, warnings).
func (c *Client) LogFile() string { return c.Prefix + ".log" }

// LockFile serialises starting the master between steps of one host.
func (c *Client) LockFile() string { return c.Prefix + ".lock" }

// WrapperDir holds an "ssh" wrapper for programs that run ssh themselves.
func (c *Client) WrapperDir() string { return c.Prefix + ".bin" }

// hostKeyAlias names the pinned key in the private known_hosts file, so it
// matches whatever address, port or alias the connection uses.
func (c *Client) hostKeyAlias() string { return "lollypops." + c.Host.Name }

// policyArgs enforce the host key policy.
func (c *Client) policyArgs() []string {
	s := &c.Host.Deployment.SSH
	switch s.HostKeyPolicy {
	case config.HostKeyAcceptNew:
		return []string{"-o", "StrictHostKeyChecking=accept-new"}
	case config.HostKeyPinned:
		return []string{
			"-o", "StrictHostKeyChecking=yes",
			"-o", "UserKnownHostsFile=" + c.KnownHostsFile(),
			"-o", "GlobalKnownHostsFile=/dev/null",
			"-o", "HostKeyAlias=" + c.hostKeyAlias(),
		}
	default:
		return []string{"-o", "StrictHostKeyChecking=yes"}
	}
}

// KnownHostsLine is the content of KnownHostsFile for a pinned key.
func (c *Client) KnownHostsLine() string {
	key := ""
	if k := c.Host.Deployment.SSH.HostKey; k != nil {
		key = *k
	}
	return c.hostKeyAlias() + " " + key + "\n"
}

// options are the arguments every ssh invocation of the host shares, for
// the given ControlMaster value ("yes" to start the master, "no" to use it).
func (c *Client) options(master string) []string {
	s := &c.Host.Deployment.SSH
	args := []string{"-o", "ControlPath=" + c.ControlPath(), "-o", "ControlMaster=" + master}
	args = append(args, c.policyArgs()...)
	if s.User != nil {
		args = append(args, "-l", *s.User)
	}
	args = append(args, s.Opts...)
	if master == "yes" {
		// The run closes the master when it ends. A runner killed with
		// SIGKILL cannot: the master then ends by itself once it has been
		// idle this long, instead of keeping an authenticated (often root)
		// connection open forever. A step that finds it gone opens a new
		// one. ssh.opts may set another value.
		args = append(args, "-o", "ControlPersist="+ControlPersist)
	}
	return append(args,
		"-o", "ConnectTimeout=30",
		"-o", "ServerAliveInterval=15",
		"-o", "ServerAliveCountMax=4",
	)
}

// ControlPersist is how long the shared connection stays open without a
// session (ssh's time format).
const ControlPersist = "60s"

// MasterArgs starts the shared connection: ssh authenticates, then goes to
// the background and serves the run's sessions until closed.
func (c *Client) MasterArgs() []string {
	args := append([]string{c.Host.Deployment.SSH.Command}, c.options("yes")...)
	return append(args, "-N", "-f", "-T", c.Host.Deployment.SSH.Host)
}

// ExitArgs stop the shared connection.
func (c *Client) ExitArgs() []string {
	return []string{c.Host.Deployment.SSH.Command, "-o", "ControlPath=" + c.ControlPath(),
		"-O", "exit", c.Host.Deployment.SSH.Host}
}

// RemoteArgs runs remoteCommand (a shell command line for the host's login
// shell, see Command) over the shared connection.
func (c *Client) RemoteArgs(remoteCommand string) []string {
	args := append([]string{c.Host.Deployment.SSH.Command}, c.options("no")...)
	return append(args, "-T", "-x", c.Host.Deployment.SSH.Host, remoteCommand)
}

// WrapperArgs is the command line of the ssh wrapper that programs which run
// ssh themselves (nix, nixos-rebuild) find first on their PATH: it reaches
// the host through the shared connection with the host's options. The user
// part of the destination is left to the caller (nix puts it in the URL).
func (c *Client) WrapperArgs(sshPath string) []string {
	s := &c.Host.Deployment.SSH
	args := []string{sshPath, "-o", "ControlPath=" + c.ControlPath(), "-o", "ControlMaster=no"}
	args = append(args, c.policyArgs()...)
	args = append(args, s.Opts...)
	return args
}

// WrapperScript is the POSIX sh script for WrapperArgs.
func (c *Client) WrapperScript(sshPath string) (string, error) {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Written by lollypops for one run: ssh through the run's shared connection.\n")
	b.WriteString(wrapperGuard)
	b.WriteString("exec")
	for _, a := range c.WrapperArgs(sshPath) {
		q, err := syntax.Quote(a, syntax.LangPOSIX)
		if err != nil {
			return "", err
		}
		b.WriteString(" " + q)
	}
	b.WriteString(" \"$@\"\n")
	return b.String(), nil
}

// wrapperGuard drops master control commands (-O exit, -O stop): with the
// wrapper's ControlPath first, they would reach the run's own master, which
// the run closes itself. nixos-rebuild --target-host ends with one for the
// master it believes it started. Options are scanned up to the destination;
// the arguments of options that take one are skipped.
const wrapperGuard = `skip=0 ctl=
for a do
	if [ "$skip" = 1 ]; then skip=0; [ "$opt" != -O ] || ctl=$a; continue; fi
	case $a in
	-Oexit | -Ostop) ctl=${a#-O} ;;
	-[BbcDEeFIiJLlmOopQRSWw]) skip=1 opt=$a ;;
	--) break ;;
	-*) ;;
	*) break ;;
	esac
done
case $ctl in exit | stop) exit 0 ;; esac
`

// StoreURL is the nix store URL of the host for nix copy and flake archive.
func (c *Client) StoreURL() string {
	s := &c.Host.Deployment.SSH
	host := s.Host
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	if s.User != nil {
		return "ssh://" + *s.User + "@" + host
	}
	return "ssh://" + host
}

// Command renders argv as one command line for the host's login shell, in
// front of it the sudo command when the host enables sudo. Words are quoted
// for POSIX shells; the inventory's validation rules out the control
// characters POSIX quoting cannot express. Multi-line words are lollypops'
// own scripts, quoted by Script.
func Command(sudo *config.Sudo, argv ...string) (string, error) {
	var words []string
	if sudo != nil && sudo.Enable {
		words = append(words, sudo.Command)
		words = append(words, sudo.Opts...)
	}
	words = append(words, argv...)
	q := make([]string, len(words))
	for i, w := range words {
		if strings.Contains(w, "\n") && !strings.ContainsRune(w, 0) {
			q[i] = Script(w)
			continue
		}
		s, err := syntax.Quote(w, syntax.LangPOSIX)
		if err != nil {
			return "", fmt.Errorf("cannot quote %q for the remote shell: %w", w, err)
		}
		q[i] = s
	}
	return strings.Join(q, " "), nil
}

// Script quotes a multi-line script as one POSIX shell word: single quotes,
// which keep newlines, with each single quote written as '\”. (mvdan/sh's
// POSIX quoting refuses newlines, which POSIX single quotes do keep.)
func Script(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
