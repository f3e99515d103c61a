package fakehost

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// shScript builds sh text; every word that is not a literal of ours is
// quoted with syntax.Quote. The first quoting error sticks.
type shScript struct {
	b   strings.Builder
	err error
}

// line writes one command: literal words are written as they are, and
// words wrapped in q(...) are quoted.
func (s *shScript) line(words ...any) {
	for i, w := range words {
		if i > 0 {
			s.b.WriteByte(' ')
		}
		switch w := w.(type) {
		case quoted:
			q, err := syntax.Quote(string(w), syntax.LangPOSIX)
			if err != nil && s.err == nil {
				s.err = fmt.Errorf("quoting %q: %w", string(w), err)
			}
			s.b.WriteString(q)
		case string:
			s.b.WriteString(w)
		}
	}
	s.b.WriteByte('\n')
}

type quoted string

func q(s string) quoted { return quoted(s) }

// sshdConfig is the host's sshd_config. Paths were checked by checkDir.
func (h *Host) sshdConfig(port int) string {
	return fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s
PidFile none
AuthorizedKeysFile /etc/ssh/authorized_keys.d/%%u
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
MaxSessions 128
MaxStartups 256
LogLevel INFO
SetEnv PATH=%s
Subsystem sftp internal-sftp
`, port, filepath.Join(h.Dir, "host_key"), sessionPath)
}

// writeEtc pre-writes files into the /etc overlay's upper dir (allowed
// while the overlay is not mounted): nix.conf, hostname, hosts, the
// authorized keys of every user, NixOS's sudoers and /etc/NIXOS (which
// switch-to-configuration checks).
func (h *Host) writeEtc(authorizedKeys []byte) error {
	up := filepath.Join(h.Dir, "etc")
	trusted := []string{"root"}
	for _, u := range h.spec.Users {
		if u.Trusted {
			trusted = append(trusted, u.Name)
		}
	}
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	hosts = fmt.Appendf(hosts, "127.0.1.1 %s\n", h.Name)
	type file struct {
		path string
		mode os.FileMode
		data []byte
	}
	files := []file{
		// fsync-metadata = false: a fake host's store need not survive a
		// power cut, and SQLite's fsyncs cost seconds per fleet.
		{"nix/nix.conf", 0o644, fmt.Appendf(nil, "substituters =\nbuild-users-group =\nsandbox = false\n"+
			"experimental-features = nix-command flakes\nfsync-metadata = false\ntrusted-users = %s\n",
			strings.Join(trusted, " "))},
		{"hostname", 0o644, []byte(h.Name + "\n")},
		{"hosts", 0o644, hosts},
		{"NIXOS", 0o644, nil},
		{"ssh/authorized_keys.d/root", 0o644, authorizedKeys},
		{"sudoers", 0o440, []byte(h.sudoers())},
	}
	for _, u := range h.spec.Users {
		files = append(files, file{"ssh/authorized_keys.d/" + u.Name, 0o644, authorizedKeys})
	}
	for _, f := range files {
		p := filepath.Join(up, f.path)
		if err := mkdirs(up, filepath.Dir(f.path)); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// sudoers is NixOS's /etc/sudoers (security.sudo): no secure_path, so the
// caller's PATH with /run/current-system/sw/bin stays; users with Sudo get
// a passwordless rule, as security.sudo.extraRules would give them.
func (h *Host) sudoers() string {
	var b strings.Builder
	b.WriteString(`# NixOS's sudoers, written by fakehost.
Defaults env_keep+=SSH_AUTH_SOCK
Defaults:root,%wheel env_keep+=TERMINFO_DIRS
Defaults:root,%wheel env_keep+=TERMINFO
root ALL=(ALL:ALL) SETENV: ALL
%wheel ALL=(ALL:ALL) SETENV: ALL
`)
	for _, u := range h.spec.Users {
		if u.Sudo {
			fmt.Fprintf(&b, "%s ALL=(ALL:ALL) NOPASSWD:SETENV: ALL\n", u.Name)
		}
	}
	return b.String()
}

// mkdirs creates rel under base with mode 0755 for every level (umask
// ignored), because an overlay's merged directories take the upper mode.
func mkdirs(base, rel string) error {
	p := base
	for _, c := range strings.Split(filepath.Clean(rel), "/") {
		if c == "." {
			continue
		}
		p = filepath.Join(p, c)
		if err := os.Mkdir(p, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// sshConfigBlock is one host's entry in the fleet's ssh_config.
func (f *Fleet) sshConfigBlock(h *Host) string {
	return fmt.Sprintf(`Host %s
  HostName 127.0.0.1
  Port %d
  User root
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 5
`, h.Name, h.Port, f.IdentityFile, f.KnownHosts)
}
