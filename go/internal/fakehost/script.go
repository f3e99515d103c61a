package fakehost

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// setupScript is what runs inside the new namespaces before sshd: mounts,
// hostname, groups, users, nix-daemon, then exec sshd.
func (h *Host) setupScript() (string, error) {
	var s shScript
	d := h.Dir
	s.line("set -eu")
	s.line("hostname", q(h.Name))
	s.line("mount -t tmpfs -o mode=0755 tmpfs /run")
	s.line("mkdir -m 0755 /run/sshd /run/fakehost /run/current-system /run/current-system/sw /run/current-system/sw/bin")
	s.line("mount --bind", q(filepath.Join(d, "bin")), "/run/current-system/sw/bin")
	s.line("mount --bind", q(filepath.Join(d, "ctl")), "/run/fakehost")
	for _, m := range []string{"etc", "var"} {
		opts := fmt.Sprintf("lowerdir=/%s,upperdir=%s,workdir=%s", m, filepath.Join(d, m), filepath.Join(d, m+".w"))
		s.line("mount -t overlay overlay -o", q(opts), "/"+m)
	}
	for _, m := range []string{"root", "home", "nix"} {
		s.line("mount --bind", q(filepath.Join(d, m)), "/"+m)
	}
	// Users and groups go to the /etc overlay; idempotent for restarts.
	groups := []string{"keys"}
	groups = append(groups, h.spec.Groups...)
	for _, u := range h.spec.Users {
		groups = append(groups, u.Groups...)
	}
	slices.Sort(groups)
	for _, g := range slices.Compact(groups) {
		s.line("getent group", q(g), ">/dev/null || groupadd -r", q(g))
	}
	s.line("install -d -m 0750 -o root -g keys /run/keys")
	for _, u := range h.spec.Users {
		args := []any{"getent passwd", q(u.Name), ">/dev/null || useradd -m -s /bin/sh -p '*'"}
		if len(u.Groups) > 0 {
			args = append(args, "-G", q(strings.Join(u.Groups, ",")))
		}
		s.line(append(args, q(u.Name))...)
	}
	// With UsePAM no, sshd refuses accounts whose password starts with '!'.
	s.line(`case $(getent shadow root | cut -d: -f2) in '!'*) usermod -p '*' root;; esac`)
	if h.spec.NixDaemon {
		s.line("rm -f /nix/var/nix/daemon-socket/socket")
		s.line("mkdir -p /nix/var/nix/daemon-socket")
		s.line(q(h.fleet.tools.nixDaemon), "</dev/null >>", q(filepath.Join(d, "daemon.log")), "2>&1 &")
		s.line("i=0; until [ -S /nix/var/nix/daemon-socket/socket ]; do")
		s.line(`  i=$((i+1)); [ $i -lt 200 ] || { echo "fakehost: nix-daemon did not create its socket" >&2; exit 1; }`)
		s.line("  sleep 0.05")
		s.line("done")
	}
	s.line("exec", q(h.fleet.tools.sshd), "-D -e -f", q(filepath.Join(d, "sshd_config")))
	return s.b.String(), s.err
}

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
// authorized keys of every user, sudoers.
func (h *Host) writeEtc(authorizedKeys []byte) error {
	up := filepath.Join(h.Dir, "etc")
	trusted := []string{"root"}
	var sudoers strings.Builder
	for _, u := range h.spec.Users {
		if u.Trusted {
			trusted = append(trusted, u.Name)
		}
		if u.Sudo {
			fmt.Fprintf(&sudoers, "%s ALL=(ALL:ALL) NOPASSWD: ALL\n", u.Name)
		}
	}
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	hosts = fmt.Appendf(hosts, "127.0.1.1 %s\n", h.Name)
	files := []struct {
		path string
		mode os.FileMode
		data []byte
	}{
		{"nix/nix.conf", 0o644, fmt.Appendf(nil, "substituters =\nbuild-users-group =\nsandbox = false\n"+
			"experimental-features = nix-command flakes\ntrusted-users = %s\n", strings.Join(trusted, " "))},
		{"hostname", 0o644, []byte(h.Name + "\n")},
		{"hosts", 0o644, hosts},
		{"ssh/authorized_keys.d/root", 0o644, authorizedKeys},
	}
	for _, u := range h.spec.Users {
		files = append(files, struct {
			path string
			mode os.FileMode
			data []byte
		}{"ssh/authorized_keys.d/" + u.Name, 0o644, authorizedKeys})
	}
	if sudoers.Len() > 0 {
		// Like NixOS: the system profile is on sudo's PATH.
		data := fmt.Sprintf("Defaults secure_path=\"%s\"\n%s", sessionPath, sudoers.String())
		files = append(files, struct {
			path string
			mode os.FileMode
			data []byte
		}{"sudoers.d/fakehost", 0o440, []byte(data)})
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
