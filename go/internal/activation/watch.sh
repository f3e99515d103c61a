#!/bin/sh
# watch.sh DIR UNITS LAST OFFSET MAX [THROUGH]: the deployer's view of an
# activation (package activation). It waits, on the host, until DIR/status
# is no longer LAST nor in a state of THROUGH (space-separated states the
# deployer waits through: "starting activating" while it waits for the
# activation's end), the guard's units (UNITS, space-separated) are all
# gone, or MAX seconds passed, then prints, for the deployer to parse:
#
#   lollypops-watch 1
#   status <the status line>
#   now <centiseconds since boot (the host's monotonic clock)>
#   alive <1 while one of UNITS runs, else 0>
#   result <KEY VALUE>          one per line of DIR/result
#   offset <size of DIR/log>
#   log
#   <DIR/log from byte OFFSET to that size>
#
# One watch is one command (one sudo call) however long it waits: a
# deployer that polls every few seconds costs the host no more.
set -u
dir=$1 units=$2 last=$3 off=$4 max=$5 through=${6:-}
up='' now=''
# tick reads the host's monotonic clock into now (centiseconds since boot),
# without a process.
tick() {
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
# The status is read every 100 ms, and the clock, without a process (read,
# not head); whether the guard still runs (a systemctl) at once and then
# every second. Each look costs a sleep, and a deployer watches every host
# of a run at once.
tick
end=$((now + max * 100))
i=0
while :; do
	st=
	{ IFS= read -r st <"$dir/status"; } 2>/dev/null
	w=${st%% *}
	case " $through " in
	*" ${w:-.} "*) ;;
	*) [ "$st" = "$last" ] || break ;;
	esac
	if [ $((i % 10)) = 0 ]; then
		alive || break
	fi
	i=$((i + 1))
	tick
	[ "$now" -lt "$end" ] || break
	sleep 0.1
done
a=0
if alive; then a=1; fi
# The status again: a guard that ended right after the first read.
st=
{ IFS= read -r st <"$dir/status"; } 2>/dev/null
size=$(wc -c <"$dir/log" 2>/dev/null) || size=0
size=$((size))
# At most 1 MiB of log per watch: the next one gets the rest.
[ "$size" -le $((off + 1048576)) ] || size=$((off + 1048576))
echo "lollypops-watch 1"
echo "status $st"
tick
echo "now $now"
echo "alive $a"
sed 's/^/result /' "$dir/result" 2>/dev/null
echo "offset $size"
echo "log"
if [ "$size" -gt "$off" ]; then
	tail -c +"$((off + 1))" "$dir/log" | head -c "$((size - off))"
fi
exit 0
