#!/bin/sh
# reboot.sh: the reboot after an activation (package activation).
#
#   reboot.sh changes SYSTEM   prints what of SYSTEM differs from what the
#                              host booted (/run/booted-system): kernel,
#                              initrd, kernel-modules, one a line; or
#                              "unknown" without a booted system. Read only.
#   reboot.sh start MARKER     as root: leaves MARKER (in /run, which a boot
#                              empties) and asks systemd to reboot.
#   reboot.sh check MARKER     "old-boot" while MARKER exists, else
#                              "new-boot"; then the running system.
#   reboot.sh missing PATH...  prints each PATH that does not exist (the
#                              secrets a reboot took with its tmpfs).
#
# Test seam (environment): LOLLYPOPS_BOOTED (/run/booted-system).
set -u
case $1 in
changes)
	b=${LOLLYPOPS_BOOTED:-/run/booted-system} sys=$2
	[ -e "$b" ] || {
		echo unknown
		exit 0
	}
	# As NixOS's system.autoUpgrade.allowReboot compares them; in one
	# readlink when all six resolve to one word each (store paths).
	set -f
	# shellcheck disable=SC2086 # split into the six paths
	if l=$(readlink -e -- "$b/kernel" "$sys/kernel" "$b/initrd" "$sys/initrd" "$b/kernel-modules" "$sys/kernel-modules") &&
		set -- $l && [ $# = 6 ]; then
		[ "$1" = "$2" ] || echo kernel
		[ "$3" = "$4" ] || echo initrd
		[ "$5" = "$6" ] || echo kernel-modules
		exit 0
	fi
	for f in kernel initrd kernel-modules; do
		[ "$(readlink -e "$b/$f")" = "$(readlink -e "$sys/$f")" ] || echo "$f"
	done
	;;
start)
	umask 077
	: >"$2" || exit 1
	systemctl reboot
	;;
check)
	if [ -e "$2" ]; then echo old-boot; else echo new-boot; fi
	readlink -f /run/current-system
	;;
missing)
	shift
	for p; do
		[ -e "$p" ] || printf '%s\n' "$p"
	done
	;;
*) exit 2 ;;
esac
