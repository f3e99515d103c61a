#!/bin/sh
# then.sh, a frame: two commands in one SSH session, in one shell (Then and
# After, in activation.go). They put two scripts in it, in place of the
# lines "#FIRST" and "#SECOND": lollypops' own (sh -c SCRIPT NAME ARG...)
# as they are, any other command as `exec "$@"`. It runs as
#
#   sh -c FRAME NAME N WANT MARK FIRST-ARG... SECOND-ARG...
#
# The first script runs in a subshell with the first N words as its
# arguments; once it exited WANT (Then: 0, it succeeded; After: 10, its
# watch printed "confirmed"), the line "lollypops-then MARK" (Then: "ok";
# After: a nonce of the deployer's, which no line of an activation's log
# can have), then the second in this shell with the rest; otherwise the
# frame exits as the first did. The deployer saves a session (an SSH
# channel, a login shell and a sudo call) per pair, and a shell per script;
# when the session ends early (a network restart cuts it) the line says
# whether the first command ran. Lines before a script's own mark are the
# login's, so the line is not mistaken for an answer. The frame's own
# variables are gone before either script starts.
lollypops_then_n=$1 lollypops_then_w=$2 lollypops_then_m=$3
shift 3
(
	lollypops_then_i=0
	for lollypops_then_a do
		[ "$lollypops_then_i" -eq 0 ] && set --
		[ "$lollypops_then_i" -lt "$lollypops_then_n" ] && set -- "$@" "$lollypops_then_a"
		lollypops_then_i=$((lollypops_then_i + 1))
	done
	unset lollypops_then_i lollypops_then_a lollypops_then_n lollypops_then_w lollypops_then_m
	#FIRST
)
lollypops_then_rc=$?
[ "$lollypops_then_rc" = "$lollypops_then_w" ] || exit "$lollypops_then_rc"
# On a line of its own, whatever the first script printed last (echo: a
# builtin in every shell, where mksh's printf is a program).
echo
echo "lollypops-then $lollypops_then_m"
shift "$lollypops_then_n"
unset lollypops_then_n lollypops_then_w lollypops_then_m lollypops_then_rc
#SECOND
