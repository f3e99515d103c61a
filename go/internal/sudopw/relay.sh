# shellcheck shell=sh
# The root session of a run on one host (package sudopw): the only command
# a run sends through sudo when sudo asks for a password. sudo starts it
# once per connection, after the one authentication; it then starts, as
# root, every command the run sends, each with the standard input, output
# and error of its own ssh session, and reports its exit code there.
#
# Requests come from the deployer on standard input, two lines each:
#
#	run P
#	'word' 'wo'"$nl"'rd' ...     (the command: single-quoted words, its
#	                              newlines outside the quotes as "$nl")
#
# P is the shell of a session of the ssh user (waiter.sh): the command
# gets its descriptors 4, 5 and 6 (the session's standard input, output
# and error, opened again through /proc) as its 0, 1 and 2, and its exit
# code is written to P's descriptor 3, a FIFO P reads it from. The
# answer is one line, "ok" or "err <why>". P must be the ssh user's
# (SUDO_UID) and its descriptors pipes: a request cannot make root read or
# write a file through them.
#
# Argument: a nonce, echoed on the ready line.
#
# POSIX sh: bash (NixOS's sh), dash, busybox sh and mksh run it the same;
# no backslash in it (fish's single quotes change some).

set -u -f
# shellcheck disable=SC2034 # used by the commands, in eval
nl='
'
uid=${SUDO_UID:-}
case $uid in
'' | *[!0-9]*)
	echo "lollypops: the root session needs SUDO_UID, which sudo sets; is sudo.command sudo?" >&2
	exit 3
	;;
esac
me=$(id -u) || exit 3
if [ "$me" != 0 ] && [ "$me" != "$uid" ]; then
	echo "lollypops: the root session runs as uid $me (sudo.opts choose another user than root): it cannot reach the commands' sessions" >&2
	exit 3
fi
[ -r /proc/self/stat ] || {
	echo "lollypops: the root session needs /proc" >&2
	exit 3
}
echo "lollypops-root ready $1"
while IFS= read -r req && IFS= read -r line; do
	# shellcheck disable=SC2086 # the request's words; globbing is off (-f)
	set -- $req
	if [ $# -ne 2 ] || [ "$1" != run ]; then
		echo "err bad request"
		continue
	fi
	p=$2
	case $p in
	'' | *[!0-9]*)
		echo "err bad process id"
		continue
		;;
	esac
	if ! owner=$(stat -c %u -- "/proc/$p" 2>/dev/null); then
		echo "err process $p is gone"
		continue
	fi
	if [ "$owner" != "$uid" ]; then
		echo "err process $p is not uid $uid's"
		continue
	fi
	if ! { [ -p "/proc/$p/fd/3" ] && [ -p "/proc/$p/fd/4" ] && [ -p "/proc/$p/fd/5" ] && [ -p "/proc/$p/fd/6" ]; }; then
		echo "err the descriptors of process $p are not all pipes"
		continue
	fi
	(
		(
			exec 2>>"/proc/$p/fd/6" || exit 126
			exec <"/proc/$p/fd/4" >>"/proc/$p/fd/5" || exit 126
			eval "set -- $line" || exit 126
			exec "$@"
		)
		echo "$?" >>"/proc/$p/fd/3"
	) </dev/null >/dev/null 2>&1 &
	echo ok
done
