#!/bin/sh
# watch.sh DIR UNITS LAST OFFSET MAX [THROUGH [CONFIRMED]]: the deployer's view of an
# activation (package activation). It waits, on the host, until DIR/status
# is no longer LAST nor in a state of THROUGH (space-separated states the
# deployer waits through: "starting activating" while it waits for the
# activation's end), the guard's units (UNITS, space-separated) are all
# gone, or MAX seconds passed, then prints, for the deployer to parse:
#
#   lollypops-watch 2
#   status <the status line>
#   now <centiseconds since boot (the host's monotonic clock)>
#   alive <1 while one of UNITS runs, else 0; 0 once the status is final>
#   result <KEY VALUE>          one per line of DIR/result
#   log
#   <DIR/log from byte OFFSET on, at most 1 MiB>
#
# The deployer counts the log's bytes for the next OFFSET. It exits 0, or
# CONFIRMED when given and the status it printed is "confirmed" (see
# After in activation.go).
#
# One watch is one command (one sudo call) however long it waits: a
# deployer that polls every few seconds costs the host no more.
#
# It waits on its FIFO, DIR/wake.PID (see guard.sh): the guard writes a
# line to it at each change of the status, and a ticker (a sleep every
# LOLLYPOPS_TICK seconds, 1) for the deadline and for a look at whether
# the guard still runs. Where no FIFO can be made, it looks every 100 ms.
set -u
dir=$1 units=$2 last=$3 off=$4 max=$5 through=${6:-} okrc=${7:-0}
every=${LOLLYPOPS_TICK:-1}
up='' now=''
# cs reads the host's monotonic clock into now (centiseconds since boot),
# without a process.
cs() {
	read -r up _ </proc/uptime
	now=$((${up%%.*} * 100 + 1${up#*.} - 100))
}
alive() {
	for u in $units; do
		systemctl is-active --quiet "$u" >/dev/null 2>&1 && return 0
	done
	return 1
}
[ -d "$dir" ] || {
	echo "lollypops: $dir does not exist (the host rebooted, or another run removed it)" >&2
	exit 3
}
# The FIFO is there before the status is first read: no change is missed.
# The ticker stops after max ticks, or once the watch is gone; the exit
# removes both.
fifo='' ticker=''
f=$dir/wake.$$
if mkfifo -m 0600 "$f" 2>/dev/null; then
	fifo=$f
	# KILL, not TERM: mksh puts a TERM off until the ticker's sleep ends,
	# and a ticker that had not yet set its descriptors would keep the
	# session's output open meanwhile (with the tests' tick, for an
	# hour). What may stay is a sleep on the FIFO, for up to a tick.
	trap 'rm -f "$fifo"; [ -z "$ticker" ] || kill -s KILL "$ticker" 2>/dev/null' EXIT
	exec 3<>"$fifo"
	# Its descriptors are set inside (mksh would keep a saved copy of the
	# session's output in the subshell until the ticker ends), from
	# descriptor 3: by name, a FIFO the exit just removed would come back
	# as a regular file.
	(
		exec 1>&3 2>/dev/null </dev/null
		n=0
		while [ "$n" -le "$max" ] && kill -0 $$ 2>/dev/null; do
			sleep "$every"
			echo t
			n=$((n + 1))
		done
	) &
	ticker=$!
fi
# The status and the clock are read without a process (read, not head);
# whether the guard still runs (a systemctl) at each tick (every 10th look
# without a FIFO): most watches end before the first.
cs
end=$((now + max * 100))
i=0 ticked=
while :; do
	st=
	{ IFS= read -r st <"$dir/status"; } 2>/dev/null
	w=${st%% *}
	case " $through " in
	*" ${w:-.} "*) ;;
	*) [ "$st" = "$last" ] || break ;;
	esac
	if [ -n "$ticked" ]; then
		alive || break
		ticked=
	fi
	cs
	[ "$now" -lt "$end" ] || break
	if [ -n "$fifo" ]; then
		IFS= read -r w <&3
		[ "$w" != t ] || ticked=1
	else
		sleep 0.1
		i=$((i + 1))
		[ $((i % 10)) != 0 ] || ticked=1
	fi
done
a=0
st=
{ IFS= read -r st <"$dir/status"; } 2>/dev/null
case ${st%% *} in
confirmed | rolled-back | rollback-failed | refused | needs-reboot | superseded | done) ;;
*)
	if alive; then a=1; fi
	# The status again: a guard that ended right after the first read.
	st=
	{ IFS= read -r st <"$dir/status"; } 2>/dev/null
	;;
esac
echo "lollypops-watch 2"
echo "status $st"
cs
echo "now $now"
echo "alive $a"
sed 's/^/result /' "$dir/result" 2>/dev/null
echo "log"
# At most 1 MiB of log per watch: the next one gets the rest.
tail -c +"$((off + 1))" "$dir/log" 2>/dev/null | head -c 1048576
case $st in confirmed | "confirmed "*) exit "$okrc" ;; esac
exit 0
