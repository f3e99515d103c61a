package fakehost

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// The host's init is a bash script, PID 1 of the host's PID namespace
// (bash reaps the orphans it adopts). It sets the host up, boots the
// boot loader's default system (or builds the first generation), then runs
// sshd as a service and serves requests from /run/fakehost/init.fifo:
//
//	<start|stop|restart> sshd <id>
//
// answering "ok" or an error in /run/fakehost/replies/<id>. This is the
// stand-in for systemd; NixOS's sshd.service has KillMode=process, and so
// stopping sshd here kills the listener only: sessions survive.
const initLoop = `
# Services: sshd only.
sshd_pid=
# listening: sshd holds the socket listening on its port (another process
# may hold the port, and then sshd exits).
listening() {
	local sl addr rem st txrx tr retr uid tmo inode rest fds
	while read -r sl addr rem st txrx tr retr uid tmo inode rest; do
		[ "$addr" = "$listen_addr" ] && [ "$st" = 0A ] || continue
		fds=" $(readlink /proc/"$sshd_pid"/fd/* 2>/dev/null | tr '\n' ' ') "
		[[ $fds == *" socket:[$inode] "* ]] && return 0
	done </proc/net/tcp
	return 1
}
# start_sshd sets err when sshd does not come up.
start_sshd() {
	local i
	err=
	if [ -n "$sshd_pid" ] && kill -0 "$sshd_pid" 2>/dev/null; then return 0; fi
	"$sshd_bin" -D -e -f "$sshd_config" </dev/null &
	sshd_pid=$!
	for ((i = 0; i < 1000; i++)); do
		if ! kill -0 "$sshd_pid" 2>/dev/null; then
			sshd_pid=
			err="sshd exited at start (see sshd.log)"
			return 1
		fi
		if listening; then
			echo "$sshd_pid" >"$ctl/sshd.active"
			echo "fakehost-init: sshd listens ($EPOCHREALTIME)" >&2
			return 0
		fi
		sleep 0.01
	done
	err="sshd does not listen after 10s"
	return 1
}
stop_sshd() {
	if [ -n "$sshd_pid" ]; then
		kill -TERM "$sshd_pid" 2>/dev/null
		wait "$sshd_pid" 2>/dev/null
	fi
	sshd_pid=
	rm -f "$ctl/sshd.active"
}

set +e
echo "fakehost-init: booting $booted ($EPOCHREALTIME, since $t0)"
"$booted/activate" || echo "fakehost-init: the activation of $booted failed"
# boot-failed tells Host.Start at once why no sshd will answer.
if [ -s "$booted/fakehost/sshd" ]; then
	start_sshd || { echo "fakehost-init: $err"; echo "$err" >"$ctl/boot-failed"; }
else
	echo "fakehost-init: $booted has no sshd"
	echo "the booted system $booted has no sshd" >"$ctl/boot-failed"
fi

# Requests. The FIFO stays open read-write, so that no request is lost
# between two reads and a writer never blocks.
rm -f "$ctl/init.fifo"
mkfifo -m 0600 "$ctl/init.fifo"
exec 3<>"$ctl/init.fifo"
partial=
while :; do
	# read -t keeps what it read before timing out: the start of a line.
	if ! read -r -t 1 line <&3; then
		partial+=$line
		# A listener that died is a stopped service.
		if [ -n "$sshd_pid" ] && ! kill -0 "$sshd_pid" 2>/dev/null; then
			sshd_pid=
			rm -f "$ctl/sshd.active"
		fi
		continue
	fi
	line=$partial$line partial=
	read -r verb unit id <<<"$line"
	[[ $id =~ ^[0-9.]+$ ]] || continue
	err=
	case $verb.$unit in
	start.sshd) start_sshd ;;
	stop.sshd) stop_sshd ;;
	restart.sshd) stop_sshd && start_sshd ;;
	*) err="unknown request: $verb $unit" ;;
	esac
	echo "${err:-ok}" >"$ctl/replies/$id.tmp"
	mv "$ctl/replies/$id.tmp" "$ctl/replies/$id"
done
`

// initBuild starts building the first generation at the first start of a
// host, with the host's own Nix from system.nix, while the users are
// created; initBoot waits for it and finds the system to boot: the boot
// loader's default. /run/current-system points to it before sshd starts,
// so that the users' login shell exists; its activation comes later.
const initBuild = `if [ ! -e /nix/var/nix/profiles/system ]; then
	echo "fakehost-init: building the first generation"
	nix-build --no-out-link --arg args "$first_args" -E '{ args }: import '"$system_nix"' args' >/run/first-generation &
	first_pid=$!
fi
`

const initBoot = `if [ -n "${first_pid-}" ]; then
	wait "$first_pid" || { echo "fakehost-init: building the first generation failed"; exit 1; }
	first=$(</run/first-generation)
	nix-env -p /nix/var/nix/profiles/system --set "$first"
	mkdir -p /boot/entries
	ln -sfn "$first" /boot/entries/nixos-generation-1
	ln -sfn "$first" /boot/default
	echo "fakehost-init: first generation $first ($EPOCHREALTIME, since $t0)"
fi
booted=$(readlink -f /boot/default || true)
[ -e "$booted/activate" ] || booted=$(readlink -f /nix/var/nix/profiles/system)
ln -sfn "$booted" /run/booted-system
ln -sfn "$booted" /run/current-system
`

// initScript is PID 1 of the host: setup (mounts, hostname, users), boot,
// sshd, requests. port is sshd's.
func (h *Host) initScript(port int) (string, error) {
	var s shScript
	d, t := h.Dir, h.fleet.tools
	s.line("set -eu")
	s.line("t0=$EPOCHREALTIME")
	// Job control: sshd runs in its own process group and, unlike a
	// background job of a plain script, does not ignore SIGINT and SIGQUIT,
	// which its sessions would inherit.
	s.line("set -m")
	s.line("unset NIX_CONF_DIR NIX_REMOTE")
	s.line("ctl=/run/fakehost")
	s.line("sshd_bin=" + string(mustQuote(&s, t.sshd)))
	s.line("sshd_config=" + string(mustQuote(&s, filepath.Join(d, "sshd_config"))))
	s.line(fmt.Sprintf("listen_addr=0100007F:%04X", port))
	s.line("system_nix=" + string(mustQuote(&s, filepath.Join(d, "system", "system.nix"))))
	args, err := System{}.args(h.Name)
	if err != nil {
		return "", err
	}
	s.line("first_args=" + string(mustQuote(&s, args)))
	s.line("hostname", q(h.Name))
	s.line("mount -t tmpfs -o mode=0755 tmpfs /run")
	s.line("mkdir -m 0755 /run/sshd /run/fakehost /run/wrappers /run/wrappers/bin")
	s.line("mount --bind", q(filepath.Join(d, "ctl")), "/run/fakehost")
	for _, m := range []string{"etc", "var"} {
		opts := fmt.Sprintf("lowerdir=/%s,upperdir=%s,workdir=%s", m, filepath.Join(d, m), filepath.Join(d, m+".w"))
		s.line("mount -t overlay overlay -o", q(opts), "/"+m)
	}
	for _, m := range []string{"root", "home", "nix", "boot"} {
		s.line("mount --bind", q(filepath.Join(d, m)), "/"+m)
	}
	// NixOS has no dash: /bin/sh is bash. Mounting bash over the file
	// /bin/sh resolves to makes both sh and dash bash, in this host only.
	if t.shTarget != t.bash {
		s.line("mount --bind", q(t.bash), q(t.shTarget))
	}
	// Runtime state of the previous boot.
	s.line(`rm -rf "$ctl/replies" "$ctl/sshd.active" "$ctl/init.fifo" "$ctl/boot-failed"`)
	s.line(`mkdir -m 0755 "$ctl/replies"`)
	s.b.WriteString(initBuild)
	h.usersScript(&s)
	s.line("install -d -m 0750 -o root -g keys /run/keys")
	if t.sudo != "" {
		// NixOS's setuid sudo lives in /run/wrappers/bin, first on PATH.
		s.line(": >/run/wrappers/bin/sudo")
		s.line("mount --bind", q(t.sudo), "/run/wrappers/bin/sudo")
	}
	s.b.WriteString(initBoot)
	if h.spec.NixDaemon {
		s.line("rm -f /nix/var/nix/daemon-socket/socket")
		s.line("mkdir -p /nix/var/nix/daemon-socket")
		s.line(q(t.nixDaemon), "</dev/null >>", q(filepath.Join(d, "daemon.log")), "2>&1 &")
		s.line("i=0; until [ -S /nix/var/nix/daemon-socket/socket ]; do")
		s.line(`  i=$((i+1)); [ $i -lt 200 ] || { echo "fakehost: nix-daemon did not create its socket" >&2; exit 1; }`)
		s.line("  sleep 0.05")
		s.line("done")
	}
	s.b.WriteString(initLoop)
	return s.b.String(), s.err
}

// usersScript creates groups and users in the /etc overlay (idempotent,
// for restarts) with NixOS's defaults: login shell bash from the system
// profile, home owned by the user with mode 0700.
func (h *Host) usersScript(s *shScript) {
	groups := []string{"keys"}
	groups = append(groups, h.spec.Groups...)
	for _, u := range h.spec.Users {
		groups = append(groups, u.Groups...)
	}
	slices.Sort(groups)
	for _, g := range slices.Compact(groups) {
		s.line("getent group", q(g), ">/dev/null || groupadd -r", q(g))
	}
	for _, u := range h.spec.Users {
		// The shell appears at boot, later: no warning about it.
		args := []any{"getent passwd", q(u.Name), ">/dev/null || useradd -m -s", q(loginShell), "-p '*'",
			"2> >(grep -v 'non-executable shell' >&2)"}
		if len(u.Groups) > 0 {
			args = append(args, "-G", q(strings.Join(u.Groups, ",")))
		}
		s.line(append(args, q(u.Name))...)
		home := "/home/" + u.Name
		s.line("chown", q(u.Name+":"), q(home), "&& chmod 0700", q(home))
	}
	s.line("chmod 0700 /root")
	s.line(`[ "$(getent passwd root | cut -d: -f7)" = ` + string(mustQuote(s, loginShell)) + " ] || usermod -s " +
		string(mustQuote(s, loginShell)) + " root 2> >(grep -v 'non-executable shell' >&2)")
	// With UsePAM no, sshd refuses accounts whose password starts with '!'.
	s.line(`case $(getent shadow root | cut -d: -f2) in '!'*) usermod -p '*' root;; esac`)
}

// loginShell is every user's shell, as on NixOS (users.defaultUserShell).
const loginShell = "/run/current-system/sw/bin/bash"

// mustQuote quotes a word for the script; an error sticks to s.
func mustQuote(s *shScript, w string) quoted {
	var t shScript
	t.line(q(w))
	if t.err != nil && s.err == nil {
		s.err = t.err
	}
	return quoted(strings.TrimSuffix(t.b.String(), "\n"))
}
