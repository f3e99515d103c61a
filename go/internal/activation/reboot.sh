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
set -u
case $1 in
changes)
	[ -e /run/booted-system ] || {
		echo unknown
		exit 0
	}
	# As NixOS's system.autoUpgrade.allowReboot compares them.
	for f in kernel initrd kernel-modules; do
		[ "$(readlink -e "/run/booted-system/$f")" = "$(readlink -e "$2/$f")" ] || echo "$f"
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
