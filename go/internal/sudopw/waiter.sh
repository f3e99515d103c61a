# shellcheck shell=sh
# One command of a run through the host's root session (relay.sh), as the
# ssh user: this session's standard input, output and error become the
# command's. It keeps them on descriptors 4, 5 and 6 (reading, below,
# moves descriptor 0 for a while), opens a FIFO of its own on descriptor 3
# (read and write, so that it never ends by itself) and removes its name,
# says which process it is on standard error, behind the nonce ($1), reads
# the command's exit code from descriptor 3, where the root session writes
# it, and exits with it.
#
# POSIX sh; no backslash in it (fish's single quotes change some).

exec 4<&0 5>&1 6>&2
d=$(mktemp -d) || exit 255
if mkfifo -m 600 "$d/rc"; then
	exec 3<>"$d/rc"
fi
ok=$?
rm -rf -- "$d"
[ "$ok" = 0 ] || exit 255
echo "lollypops-root-waiter $1 $$" >&2
rc=""
IFS= read -r rc <&3
exec 3<&- 4<&- 5>&- 6>&-
case $rc in
'' | *[!0-9]*) exit 255 ;;
esac
exit "$rc"
