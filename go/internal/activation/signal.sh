#!/bin/sh
# signal.sh DIR reached | signal.sh DIR confirm | signal.sh DIR abort
# REASON: the deployer's word to the guard of the activation in DIR (see
# guard.sh). reached: the deployer has a new connection to the host, and the
# guard's window starts again. The word is a file; a line on the guard's
# FIFO then has the guard look at once. The FIFO is opened read-write: no
# reader, no wait.
set -u
[ -d "$1" ] || {
	echo "lollypops: $1 does not exist" >&2
	exit 1
}
umask 077
case $2 in
reached) : >"$1/reached" ;;
confirm) : >"$1/confirm" ;;
abort) printf '%s\n' "$3" >"$1/abort.tmp" && mv -f "$1/abort.tmp" "$1/abort" ;;
*) exit 2 ;;
esac
[ ! -p "$1/wake.guard" ] || echo w 1<>"$1/wake.guard"
# A guard that ended meanwhile removed its FIFO: the write made a regular
# file of that name.
[ -p "$1/wake.guard" ] || [ ! -e "$1/wake.guard" ] || rm -f "$1/wake.guard"
