#!/bin/sh
# after.sh, a frame: the deployer's word and a watch (a Then whose watch
# exits ConfirmedExit, 10, when the status it printed is "confirmed"), and
# one more command in the same session once that watch has printed
# "confirmed" (After, in activation.go). It runs as
#
#   sh -c FRAME NAME MARK N FIRST-ARG... SECOND-ARG...
#
# The first script runs in a subshell with the first N words. When it
# exits 10, the line "lollypops-after MARK" (MARK: a nonce of the
# deployer's, which no line of the activation's log can have), then the
# second script in this shell with the rest; otherwise the frame exits as
# the first did. The deployer saves the session that would have followed
# (the boot's changes and the state directory's removal, after a switch).
lollypops_after_m=$1 lollypops_after_n=$2
shift 2
(
	lollypops_after_i=0
	for lollypops_after_a do
		[ "$lollypops_after_i" -eq 0 ] && set --
		[ "$lollypops_after_i" -lt "$lollypops_after_n" ] && set -- "$@" "$lollypops_after_a"
		lollypops_after_i=$((lollypops_after_i + 1))
	done
	unset lollypops_after_i lollypops_after_a lollypops_after_n lollypops_after_m
	#FIRST
)
lollypops_after_rc=$?
[ "$lollypops_after_rc" = 10 ] || exit "$lollypops_after_rc"
# On a line of its own: the watch's log may end without a newline.
echo
echo "lollypops-after $lollypops_after_m"
shift "$lollypops_after_n"
unset lollypops_after_n lollypops_after_m lollypops_after_rc
#SECOND
