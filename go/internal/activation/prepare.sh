#!/bin/sh
# prepare.sh ROOT DIR RUN makes DIR, an activation's state directory in
# ROOT/activation, as root: ROOT and ROOT/activation are made here (mkdir
# without -p: each one is created, or checked when it exists), and one that
# another user owns or can write to is refused, never used. DIR gets the
# run's id (DIR/run) and the status "starting".
#
# It also removes what runs that ended without cleaning up left behind:
# activations in a final state, and ones whose guard never started. An
# activation whose guard runs is never touched, and the deploy lock keeps
# other runs out while this one runs.
set -u
umask 077
root=$1 dir=$2 run=$3
check() {
	{ [ -d "$1" ] && [ ! -L "$1" ]; } || {
		echo "lollypops: $1 exists and is not a directory" >&2
		exit 1
	}
	m=$(stat -c '%u %a' "$1") || exit 1
	case $m in
	"0 "*[2367]? | "0 "*[2367])
		echo "lollypops: $1 is writable by other users than root (mode ${m#0 }); refusing to use it" >&2
		exit 1
		;;
	"0 "*) ;;
	*)
		echo "lollypops: $1 is not owned by root (uid ${m% *}); refusing to use it" >&2
		exit 1
		;;
	esac
}
for d in "$root" "$root/activation"; do
	if [ -e "$d" ] || [ -L "$d" ]; then
		check "$d"
	else
		mkdir -m 0700 "$d" 2>/dev/null || check "$d"
	fi
done
for a in "$root"/activation/*/; do
	[ -d "$a" ] || continue
	[ "$(cat "${a}run" 2>/dev/null)" != "$run" ] || continue
	id=${a%/}
	id=${id##*/}
	st=$(head -n 1 "${a}status" 2>/dev/null) || st=
	case ${st%% *} in
	confirmed | rolled-back | rollback-failed | refused | needs-reboot | superseded | done | "") ;;
	starting)
		if systemctl is-active --quiet "lollypops-activation-$id" >/dev/null 2>&1; then
			continue
		fi
		;;
	*) continue ;;
	esac
	rm -rf -- "$a"
done
mkdir -m 0700 "$dir" || exit 1
printf '%s\n' "$run" >"$dir/run" && echo starting >"$dir/status"
