#!/bin/sh
# watch.sh DIR UNITS LAST OFFSET MAX: the deployer's view of an activation
# (package activation). It waits, on the host, until DIR/status is no longer
# LAST, the guard's units (UNITS, space-separated) are all gone, or MAX
# seconds passed, then prints, for the deployer to parse:
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
dir=$1 units=$2 last=$3 off=$4 max=$5
up=
cs() {
	read -r up _ </proc/uptime
	echo $((${up%%.*} * 100 + 1${up#*.} - 100))
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
# The status is read every 200 ms, without a process (read, not head):
# each look costs a sleep and a systemctl, and a deployer watches every
# host of a run at once.
end=$(($(cs) + max * 100))
while :; do
	st=
	{ IFS= read -r st <"$dir/status"; } 2>/dev/null
	[ "$st" = "$last" ] || break
	alive || break
	[ "$(cs)" -lt "$end" ] || break
	sleep 0.2
done
a=0
if alive; then a=1; fi
# The status again: a guard that ended right after the first read.
st=$(head -n 1 "$dir/status" 2>/dev/null) || st=
size=$(wc -c <"$dir/log" 2>/dev/null) || size=0
size=$((size))
# At most 1 MiB of log per watch: the next one gets the rest.
[ "$size" -le $((off + 1048576)) ] || size=$((off + 1048576))
echo "lollypops-watch 1"
echo "status $st"
echo "now $(cs)"
echo "alive $a"
sed 's/^/result /' "$dir/result" 2>/dev/null
echo "offset $size"
echo "log"
if [ "$size" -gt "$off" ]; then
	tail -c +"$((off + 1))" "$dir/log" | head -c "$((size - off))"
fi
exit 0
