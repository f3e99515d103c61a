#!/bin/sh
# holder.sh ROOT TTL MODE RUN USER HOST PID: the deploy lock's holder (see
# doc.go). It runs on the host as the user the host's steps act as (through
# sudo when enabled), over the run's shared connection; its stdin is the
# run's keeper. ROOT is the lock's directory when that user is root, TTL
# how long it waits for a heartbeat, MODE "join" or "take", and RUN USER
# HOST PID the holder's record.
#
# It answers with one line, marked so that the output of the login's
# start-up files (~/.ssh/rc, a shell's rc file) cannot be mistaken for it:
#
#   lollypops-lock: ok          the lock is this session's until its stdin
#                               ends or stays silent for TTL
#   lollypops-lock: ours        a session of the same run holds it (MODE join)
#   lollypops-lock: held        then the lock's directory and the holder's
#                               record (run, user, host, pid, since, its pid
#                               on the host), one a line
#   lollypops-lock: activation  then the activation's id, its status and its
#                               run: an activation of another run is not
#                               final yet (package activation)
#
# Anything else is an error, explained on stderr. MODE take is for a run
# that opened a new connection: its earlier holder, on the old one, is
# going or gone; take waits for it (and ends it if it lingers), then holds
# the lock itself, so the run never holds it through a dying session.
#
# The guard lock (DIR/guard) makes taking the lock and writing the record
# one step for the others: a contender reads the record under it, so it
# never sees a half-written or a dead run's record. The children of the
# waiting loop close both lock descriptors, so only this shell holds the
# lock. (flock works on the shell's descriptors: mksh, which closes them
# on exec, cannot run this script; NixOS's /bin/sh is bash.)
set -u
umask 077
root=$1 ttl=$2 mode=$3
shift 3
# The effective uid, as the kernel has it for this shell (no process); id
# where /proc is not mounted.
me=''
while read -r _k _ _v _; do
	[ "$_k" != Uid: ] || me=$_v
done 2>/dev/null </proc/self/status
[ -n "$me" ] || me=$(id -u) || exit 3
if [ "$me" = 0 ]; then
	d=$root
else
	[ -n "${HOME:-}" ] || {
		echo "lollypops: \$HOME is not set for uid $me" >&2
		exit 3
	}
	d=$HOME/.lollypops-lock
fi
base=${d%/*}
[ -n "$base" ] || base=/
# safe DIR OWNER [OWNER]: DIR is a directory, not a symlink, owned by one
# of OWNER, and no one else may write in it. stat's "%u %A" of DIR is in
# info when it was read with another's (one stat for both).
info=''
safe() {
	{ [ -d "$1" ] && [ ! -L "$1" ]; } || {
		why="$1 is not a directory"
		return 1
	}
	s=$info
	[ -n "$s" ] || s=$(stat -c '%u %A' -- "$1") || {
		why="cannot stat $1"
		return 1
	}
	info=''
	case $s in
	"$2 d"????-??-?* | "${3:-$2} d"????-??-?*) return 0 ;;
	esac
	why="$1 has owner uid ${s%% *} and mode ${s#* }; it must be owned by uid $2${3:+ or $3} and writable by no one else"
	return 1
}
# Both directories in one stat when the lock's exists (they are checked in
# turn all the same: the parent first).
both=''
if [ -d "$d" ] && [ ! -L "$d" ]; then
	both=$(stat -c '%u %A' -- "$base" "$d" 2>/dev/null) || both=''
fi
info=${both%%"
"*}
safe "$base" "$me" 0 || {
	echo "lollypops: lock directory: $why" >&2
	exit 3
}
[ -d "$d" ] || mkdir -m 0700 -- "$d" 2>/dev/null
case $both in *"
"*) info=${both#*"
"}
esac
safe "$d" "$me" || {
	echo "lollypops: lock directory: $why; only lollypops uses $d: remove it" >&2
	exit 3
}
# pending prints "<id> <status>" of an activation of another run that is
# not final and whose guard runs: the deploy lock covers it, whatever
# happened to that run's connection, until it is confirmed or rolled back.
pending() {
	[ "$me" = 0 ] && [ -d "$d/activation" ] || return 1
	for a in "$d"/activation/*/; do
		[ -f "${a}status" ] || continue
		# One line each: read, not head or cat.
		st=
		{ IFS= read -r st <"${a}status"; } 2>/dev/null
		case ${st%% *} in
		confirmed | rolled-back | rollback-failed | refused | needs-reboot | superseded | done) continue ;;
		esac
		r=
		{ IFS= read -r r <"${a}run"; } 2>/dev/null
		[ "$r" != "$1" ] || continue
		id=${a%/}
		id=${id##*/}
		systemctl is-active --quiet "lollypops-activation-$id" >/dev/null 2>&1 ||
			systemctl is-active --quiet "lollypops-recover-$id" >/dev/null 2>&1 || continue
		printf '%s\n%s\n%s\n' "$id" "$st" "$r"
		return 0
	done
	return 1
}
# since prints the time in UTC: bash's printf has it without a process.
since() {
	if [ -n "${BASH_VERSION:-}" ]; then
		# shellcheck disable=SC3059 # bash only
		TZ=UTC printf '%(%Y-%m-%d %H:%M:%S UTC)T\n' -1
	else
		date -u '+%Y-%m-%d %H:%M:%S UTC'
	fi
}
# hold: the lock is this session's; write the record, answer, and keep it
# until the keeper's side ends or stays silent for TTL.
hold() {
	if p=$(pending "$1"); then
		flock -u 9
		flock -u 8
		echo "lollypops-lock: activation"
		printf '%s\n' "$p"
		exit 0
	fi
	{ printf '%s\n' "$@" && since && echo "$$"; } >"$d/holder.new" &&
		mv -f -- "$d/holder.new" "$d/holder" || exit 3
	# The guard lock goes with its descriptor: no child holds it any more.
	exec 8>&-
	echo "lollypops-lock: ok"
	while b=$(
		exec 9>&-
		timeout "$ttl" head -c 1
	) && [ "$b" = . ]; do :; done
	exec 8>>"$d/guard" && flock -w 60 8
	rm -f -- "$d/holder"
	exit 0
}
exec 8>>"$d/guard" 9>>"$d/lock" || exit 3
flock -w 60 8 || {
	echo "lollypops: $d/guard: busy for 60 s" >&2
	exit 3
}
if flock -n 9; then
	hold "$@"
fi
if [ -f "$d/holder" ] && [ "$(head -n 1 -- "$d/holder")" = "$1" ]; then
	if [ "$mode" != take ]; then
		echo "lollypops-lock: ours"
		exit 0
	fi
	# The run's earlier holder, on a connection that is gone: let it
	# leave (it takes the guard lock to remove its record), end it if it
	# lingers, and take the lock after it.
	old=$(sed -n 6p -- "$d/holder")
	flock -u 8
	if ! flock -w 5 9; then
		case $old in
		'' | *[!0-9]*) ;;
		*) if tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep -q lollypops-lock; then kill "$old"; fi ;;
		esac
		flock -w 10 9 || {
			echo "lollypops: the run's earlier lock holder (pid $old) did not let go" >&2
			exit 3
		}
	fi
	flock -w 60 8 || exit 3
	hold "$@"
fi
echo "lollypops-lock: held"
echo "$d"
cat -- "$d/holder" 2>/dev/null
exit 0
