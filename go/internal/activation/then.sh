#!/bin/sh
# then.sh N WORD...: two commands in one SSH session. The first N words are
# one command, the rest another. It runs the first; once that succeeds it
# prints the line "lollypops-then ok" and runs the second in its place (exec). The
# deployer saves a session (an SSH channel, a login shell and a sudo call)
# per pair, and when the session ends early (a network restart cuts it) the
# line says whether the first command ran. Lines before a script's own mark
# are the login's, so the line is not mistaken for an answer.
set -u
n=$1
shift
(
	i=0
	for a do
		[ "$i" -eq 0 ] && set --
		[ "$i" -lt "$n" ] && set -- "$@" "$a"
		i=$((i + 1))
	done
	exec "$@"
) || exit
# On a line of its own, whatever the first command printed last.
printf '\nlollypops-then ok\n'
shift "$n"
exec "$@"
