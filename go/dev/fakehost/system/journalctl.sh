# shellcheck shell=bash
# shellcheck disable=SC2154 # systemConfig (build.sh) and lib.sh's variables come first
# journalctl stand-in: the logs of the host's units (sshd and init log to
# the host's sshd.log instead). Each unit's stdout and stderr are appended
# to /var/log/fakehost/units/<unit>.log, which `journalctl -u <unit>` prints
# as `-o cat` would: no timestamps, no prefixes.
log() { echo "$@" >&2; }
units=() n=
while [ $# -gt 0 ]; do
	case $1 in
	--unit=*) units+=("${1#*=}") ;;
	-u | --unit)
		units+=("${2-}")
		shift
		;;
	-u?*) units+=("${1#-u}") ;;
	-n | --lines)
		n=${2-}
		shift
		;;
	--lines=*) n=${1#*=} ;;
	-n?*) n=${1#-n} ;;
	--no-pager | -b | --boot | -e | --pager-end | -x | --catalog | -q | --quiet | -o | --output=* | --no-hostname)
		[ "$1" != -o ] || shift
		;;
	*)
		log "journalctl (fake host): only -u UNIT, -n N, --no-pager, -b, -e, -x, -q and -o"
		exit 1
		;;
	esac
	shift
done
if [ ${#units[@]} = 0 ]; then
	log "journalctl (fake host): give -u UNIT"
	exit 1
fi
for u in "${units[@]}"; do
	unit_name "$u" || continue
	f=/var/log/fakehost/units/$unit.log
	[ -e "$f" ] || continue
	if [ -n "$n" ]; then tail -n "$n" "$f"; else cat "$f"; fi
done
exit 0
