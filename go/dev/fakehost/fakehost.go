// Package fakehost runs fake NixOS hosts on 127.0.0.1 for end-to-end
// tests, demos and benchmarks of the lollypops runner. They behave like
// NixOS wherever a deploy can tell the difference; docs/fakehosts.md lists
// every way they still differ, and how the pieces work.
//
// Each host is started by `unshare --mount --uts --pid --fork`: its PID 1 is
// an init stand-in, a bash script (Host.Pid; nsenter --target it) that sets
// the host up in its own namespaces — its hostname, its own /run (tmpfs,
// /run/keys root:keys 0750, /run/wrappers/bin/sudo), /etc and /var (overlays
// on the real ones), /root, /home, /boot and /nix (bind mounts of per-host
// directories: every host has its own Nix store), /bin/sh and dash replaced
// by bash — then boots: at the first start the host's own Nix builds a first
// system generation from system.nix (embedded; see System), later it boots
// the fake boot loader's default (/boot/default). Booting activates the
// system (/run/current-system) and starts sshd as a service; init then
// serves start/stop/restart of sshd (Host.StopSSHD, the systems' systemctl
// and switch-to-configuration).
//
// The systems are tiny derivations without nixpkgs, shaped like a NixOS
// toplevel, written into test flakes by WriteFlake. Their sw/bin holds a
// nixos-rebuild that does what NixOS's does on the host with the host's real
// Nix (resolve the flake, build the toplevel, profile generation,
// switch-to-configuration with NixOS's semantics) and records every call
// (RebuildCall); WriteLocalRebuild is its counterpart for the deployer
// (--target-host). Root and every UserSpec user accept the fleet's key
// through /etc/ssh/authorized_keys.d/<user>, as on NixOS. /tmp and
// everything else outside those directories is shared with the real
// machine; its own PID namespace means ps in a host shows only it.
//
// It needs root (namespaces, mounts, sshd), util-linux (unshare, nsenter,
// flock), bash, openssh-server and openssh-client, passwd (useradd) and
// nix-bin; sudo only for users with Sudo set. Available reports what is
// missing, so tests can skip. Everything a fleet starts dies with it: Close
// kills the hosts, and if the test process dies, the kernel kills them
// (parent-death signal plus the host's PID namespace).
//
// Layout of a fleet directory:
//
//	<dir>/id_ed25519, known_hosts, ssh_config, authorized_keys
//	<dir>/<host>/host_key(.pub), sshd_config, init, sshd.log (init's and sshd's), daemon.log
//	<dir>/<host>/system   system.nix and its scripts, for the first generation
//	<dir>/<host>/ctl   -> /run/fakehost (knobs, calls/ = call records, init.fifo)
//	<dir>/<host>/etc, var (overlay upper dirs), root, home, nix, boot (bind mounts)
package fakehost

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// HostSpec describes one fake host.
type HostSpec struct {
	// Name is the host name: hostname in the namespace and Host alias in the
	// ssh_config. Lowercase letters, digits and '-'.
	Name string
	// Groups are extra groups to create (keys always exists).
	Groups []string
	// Users are extra users; root always exists.
	Users []UserSpec
	// NixDaemon starts a nix-daemon in the host before sshd, so that
	// non-root users reach the host's store through the daemon socket.
	NixDaemon bool
	// HTTP gives the host a port on 127.0.0.1 (Host.HTTPPort) for the web
	// service of its systems (System.HTTP), as nginx on a real host. It
	// needs busybox (its httpd).
	HTTP bool
	// System is the host's first generation, which it builds and boots at
	// its first start (the zero System by default).
	System System
}

// UserSpec describes a user created on a fake host. The user logs in with
// the fleet's key, owns /home/<name> (mode 0700) and has the login shell
// /run/current-system/sw/bin/bash, as NixOS's defaults.
type UserSpec struct {
	Name   string
	Groups []string // supplementary groups, created when missing
	Sudo   bool     // passwordless sudo rule in /etc/sudoers (needs sudo installed)
	// SudoPassword, when set, is the user's password (set with chpasswd)
	// and puts the user in wheel, whose sudo rule (NixOS's default,
	// wheelNeedsPassword) asks for it. Not a newline; needs sudo installed.
	SudoPassword string
	// Trusted puts the user in nix.conf trusted-users, which the nix-daemon
	// requires to import unsigned paths (nix copy as that user).
	Trusted bool
}

// The PATH of a session: NixOS's setuid wrappers and system profile first,
// then Debian's directories, where everything a fake system lacks comes
// from. sshd sets it for every session.
const sessionPath = "/run/wrappers/bin:/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var (
	hostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	userRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}$`)
	// Paths go into sshd_config, ssh_config and overlay mount options.
	pathRE = regexp.MustCompile(`^/[A-Za-z0-9._/+@=-]*$`)
)

// tools holds the absolute paths of the programs a fleet runs.
type tools struct {
	unshare, nsenter, sshd, keygen, keyscan, nixStore, nixBuild, nixEnv, nixDaemon, bash, sudo, busybox string
	// shTarget is the file /bin/sh resolves to (dash on Debian), which each
	// host replaces with bash.
	shTarget string
}

var toolPackages = map[string]string{
	"unshare": "util-linux", "nsenter": "util-linux", "sshd": "openssh-server",
	"ssh-keygen": "openssh-client", "ssh-keyscan": "openssh-client", "ssh": "openssh-client",
	"nix-store": "nix-bin", "nix-build": "nix-bin", "nix-env": "nix-bin", "nix": "nix-bin",
	"useradd": "passwd", "groupadd": "passwd", "bash": "bash", "flock": "util-linux",
}

// lookTool finds a program on PATH or in the sbin directories, which a
// non-login root shell may lack on its PATH.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// Available reports nil when fake hosts can run here: root, the required
// programs, and overlayfs. Otherwise the error says exactly what is missing.
func Available() error {
	_, err := findTools()
	return err
}

func findTools() (tools, error) {
	var t tools
	var problems, missing []string
	if platformProblem != "" {
		return t, errors.New(platformProblem)
	}
	if os.Geteuid() != 0 {
		problems = append(problems, fmt.Sprintf("not root (euid %d)", os.Geteuid()))
	}
	need := []struct {
		name string
		dst  *string
	}{
		{"unshare", &t.unshare}, {"nsenter", &t.nsenter}, {"sshd", &t.sshd},
		{"ssh-keygen", &t.keygen}, {"ssh-keyscan", &t.keyscan}, {"ssh", nil},
		{"nix-store", &t.nixStore}, {"nix-build", &t.nixBuild}, {"nix-env", &t.nixEnv}, {"nix", nil},
		{"useradd", nil}, {"groupadd", nil}, {"bash", &t.bash}, {"flock", nil},
	}
	for _, n := range need {
		p, err := lookTool(n.name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", n.name, toolPackages[n.name]))
			continue
		}
		if n.dst != nil {
			*n.dst = p
		}
	}
	if len(missing) > 0 {
		problems = append(problems, "missing "+strings.Join(missing, ", "))
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(fs), "\toverlay\n") {
		problems = append(problems, "no overlayfs in /proc/filesystems")
	}
	if len(problems) > 0 {
		return t, errors.New(strings.Join(problems, "; "))
	}
	t.nixDaemon, _ = lookTool("nix-daemon") // checked when a spec asks for it
	t.sudo, _ = lookTool("sudo")
	t.busybox, _ = lookTool("busybox") // checked when a spec asks for HTTP
	var err error
	if t.bash, err = filepath.EvalSymlinks(t.bash); err != nil {
		return t, err
	}
	if t.shTarget, err = filepath.EvalSymlinks("/bin/sh"); err != nil {
		return t, fmt.Errorf("/bin/sh: %w", err)
	}
	if !pathRE.MatchString(t.bash) || !pathRE.MatchString(t.shTarget) {
		return t, fmt.Errorf("unusual path of bash (%s) or /bin/sh (%s)", t.bash, t.shTarget)
	}
	return t, nil
}

// checkSpecs validates names and that the tools the specs need exist.
func checkSpecs(specs []HostSpec, t tools) error {
	if len(specs) == 0 {
		return errors.New("no hosts")
	}
	seen := map[string]bool{}
	for _, s := range specs {
		if !hostRE.MatchString(s.Name) {
			return fmt.Errorf("invalid host name %q (want %s)", s.Name, hostRE)
		}
		if seen[s.Name] {
			return fmt.Errorf("duplicate host %q", s.Name)
		}
		seen[s.Name] = true
		if s.NixDaemon && t.nixDaemon == "" {
			return fmt.Errorf("%s: NixDaemon needs nix-daemon, which is not installed", s.Name)
		}
		if s.HTTP && t.busybox == "" {
			return fmt.Errorf("%s: HTTP needs busybox (its httpd), which is not installed (apt-get install busybox)", s.Name)
		}
		for _, g := range s.Groups {
			if !userRE.MatchString(g) {
				return fmt.Errorf("%s: invalid group name %q", s.Name, g)
			}
		}
		users := map[string]bool{"root": true}
		for _, u := range s.Users {
			if !userRE.MatchString(u.Name) || users[u.Name] {
				return fmt.Errorf("%s: invalid or duplicate user name %q", s.Name, u.Name)
			}
			users[u.Name] = true
			for _, g := range u.Groups {
				if !userRE.MatchString(g) {
					return fmt.Errorf("%s: user %s: invalid group name %q", s.Name, u.Name, g)
				}
			}
			if (u.Sudo || u.SudoPassword != "") && t.sudo == "" {
				return fmt.Errorf("%s: user %s wants sudo, but sudo is not installed (apt-get install sudo)", s.Name, u.Name)
			}
			if strings.ContainsAny(u.SudoPassword, "\n\r\x00") {
				return fmt.Errorf("%s: user %s: SudoPassword must be one line", s.Name, u.Name)
			}
		}
	}
	return nil
}

// checkDir makes dir absolute and checks that it can be named in config
// files and stays visible inside the hosts' namespaces.
func checkDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return "", err
	}
	if !pathRE.MatchString(abs) {
		return "", fmt.Errorf("dir %q: only [A-Za-z0-9._/+@=-] allowed in its path", abs)
	}
	for _, p := range []string{"/run", "/etc", "/var", "/root", "/home", "/nix", "/boot"} {
		if abs == p || strings.HasPrefix(abs, p+"/") {
			return "", fmt.Errorf("dir %q: must not be under %s, which each host replaces", abs, p)
		}
	}
	return abs, nil
}
