#!/bin/sh
# then-scripts.sh, a frame: Then (activation.go) puts two of the scripts in
# it, in place of the lines "#FIRST" and "#SECOND", when both of its
# commands are scripts (sh -c SCRIPT NAME ARG...). It runs as
#
#   sh -c FRAME NAME N FIRST-ARG... SECOND-ARG...
#
# and does what then.sh does with two shells fewer: the first script runs in
# a subshell with the first N words as its arguments; once it succeeded,
# the line "lollypops-then ok", then the second script in this shell with
# the rest. Its own variables are gone before the second one starts.
lollypops_then_n=$1
shift
(
	lollypops_then_i=0
	for lollypops_then_a do
		[ "$lollypops_then_i" -eq 0 ] && set --
		[ "$lollypops_then_i" -lt "$lollypops_then_n" ] && set -- "$@" "$lollypops_then_a"
		lollypops_then_i=$((lollypops_then_i + 1))
	done
	unset lollypops_then_i lollypops_then_a lollypops_then_n
	#FIRST
) || exit
# On a line of its own, whatever the first script printed last (echo: a
# builtin in every shell, where mksh's printf is a program).
echo
echo lollypops-then ok
shift "$lollypops_then_n"
unset lollypops_then_n
#SECOND
