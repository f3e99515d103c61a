# shellcheck shell=bash

# lib.sh (system.nix): shared by the fake system's scripts, which build.sh
# writes as "#!/bin/bash", "systemConfig=<toplevel>", this file, the script.
ctl=/run/fakehost
calls=$ctl/calls

# Call records in $calls, read by package fakehost: "<id>.run" while the
# call runs, "<id>.done" once it ended; a killed call keeps its ".run".
# Values are hex, so that any byte but NUL survives. Plain bash, without
# forks: a record costs no time a deploy could notice.
hex=
tohex() {
	local LC_ALL=C s=$1 i h
	hex=
	for ((i = 0; i < ${#s}; i++)); do
		printf -v h '%02x' "'${s:i:1}"
		hex+=${h: -2}
	done
}
rec='' recText='' recExtra='' recPre=''
record_line() {
	tohex "$2"
	recText+="$1 $hex"$'\n'
}
# record_pre <key> <value>: a hex field of the record, known at its start:
# call it before record_start.
record_pre() {
	tohex "$2"
	recPre+="$1 $hex"$'\n'
}
record_start() {
	local prog=$1 a user
	shift
	[ -d "$calls" ] || return 0
	rec=$calls/${EPOCHREALTIME/,/.}.$$
	read -r user _ < <(id -un)
	recText=
	record_line prog "$prog"
	recText+="start ${EPOCHREALTIME/,/.}"$'\n'
	record_line host "$HOSTNAME"
	record_line user "$user"
	record_line invocation "${INVOCATION_ID-}"
	recText+="argc $#"$'\n'
	for a in "$@"; do record_line arg "$a"; done
	recText+=$recPre
	printf '%s' "$recText" >"$rec.tmp" && mv "$rec.tmp" "$rec.run"
	trap 'record_end $?' EXIT
}
# record_field <key> <value>: a hex field of the finished record.
record_field() {
	tohex "$2"
	recExtra+="$1 $hex"$'\n'
}
record_end() {
	[ -n "$rec" ] || return 0
	printf '%s%send %s\nexit %s\n' "$recText" "$recExtra" "${EPOCHREALTIME/,/.}" "$1" >"$rec.tmp" &&
		mv "$rec.tmp" "$rec.done" && rm -f "$rec.run"
}

# service <verb> <unit and arguments>: asks the host's init, which stands
# in for systemd (see fakehost's init.go), and waits for its answer (the
# error is printed). Units: sshd, httpd (the system's web service) and the
# transient units of systemd-run. Init writes the answer into a FIFO the
# caller made: replies/<id>.wake, or the one open on fd $service_fd when
# set (systemd-run's). The error is in service_error too; with
# service_quiet set, it is not printed.
service_fd='' service_quiet='' service_error=''
service() {
	local id=$$.$RANDOM$RANDOM w='' fd=$service_fd
	service_error=''
	if [ ! -w "$ctl/init.fifo" ]; then
		service_error="Failed to connect to bus: Permission denied"
	elif [ -z "$fd" ]; then
		w=$ctl/replies/$id.wake
		if mkfifo -m 0600 "$w"; then exec {fd}<>"$w"; else service_error="cannot make $w"; fi
	fi
	if [ -z "$service_error" ] && ! echo "$1 $2 $id;" >"$ctl/init.fifo"; then
		service_error="cannot write to $ctl/init.fifo"
	fi
	# A stop may take init's stop timeout (5s) and more.
	if [ -z "$service_error" ] && ! read -r -t 30 -u "$fd" service_error; then
		service_error="init did not answer: $1 $2"
	fi
	if [ -n "$w" ] && [ -n "$fd" ]; then
		exec {fd}>&-
		rm -f "$w"
	fi
	[ "$service_error" != ok ] || {
		service_error=''
		return 0
	}
	[ -n "$service_quiet" ] || echo "$service_error" >&2
	return 1
}
sshd_active() { [ -e "$ctl/sshd.active" ]; }
# unit_state <unit>: its active state, as is-active prints it. sshd and
# httpd run while init says so (a failed start leaves them failed); the
# others are in $ctl/units/<unit>/: systemd-run's transient units, and
# the units without a process that the systems' activations restart or
# fail ("static": names only).
ustate=''
# shellcheck disable=SC2034 # ustate is the result
unit_state() {
	ustate=inactive
	case $1 in
	sshd.service) [ ! -e "$ctl/sshd.active" ] || {
		ustate=active
		return
	} ;;
	httpd.service) [ ! -e "$ctl/httpd.active" ] || {
		ustate=active
		return
	} ;;
	esac
	[ ! -e "$ctl/units/$1/state" ] || read -r ustate <"$ctl/units/$1/state"
}
# set_static <state> <unit>...: units without a process become active,
# failed or (state inactive) unloaded.
set_static() {
	local st=$1 u
	shift
	for u in "$@"; do
		if [ "$st" = inactive ]; then
			rm -rf "${ctl:?}/units/$u"
			continue
		fi
		mkdir -p "$ctl/units/$u" && : >"$ctl/units/$u/static" && echo "$st" >"$ctl/units/$u/state"
		[ "$st" != failed ] || echo exit-code >"$ctl/units/$u/result"
	done
}
# sort_units <name>...: the names in sorted, in the order of their
# lowercase forms, as stc-ng and systemctl sort units.
sorted=()
sort_units() {
	sorted=("$@")
	[ $# -gt 1 ] || return 0
	local n
	mapfile -t sorted < <(for n; do printf '%s\t%s\n' "${n,,}" "$n"; done | LC_ALL=C sort)
	sorted=("${sorted[@]#*$'\t'}")
}
# failed_units sets failed to the units in the failed state, sorted as
# systemd sorts them.
failed=()
failed_units() {
	local d st
	failed=()
	for d in "$ctl"/units/*/state; do
		[ -e "$d" ] || continue
		read -r st <"$d"
		[ "$st" != failed ] || {
			d=${d%/state}
			failed+=("${d##*/}")
		}
	done
	sort_units "${failed[@]}"
	failed=("${sorted[@]}")
}
wants_sshd() { [ -s "$1/fakehost/sshd" ]; }
# httpd_unit prints the web service's unit (its www directory) of the
# running service or, with an argument, of that system; "" when none.
# shellcheck disable=SC2120 # the argument is optional
httpd_unit() {
	if [ $# = 0 ]; then
		cat "$ctl/httpd.active" 2>/dev/null || true
	else
		cat "$1/fakehost/httpd" 2>/dev/null || true
	fi
}
# unit_name <name>: systemd's mangling of a service name: ".service" added
# when there is no suffix. Invalid names fail.
unit=
unit_name() {
	unit=$1
	[[ $unit == *.service ]] || unit+=.service
	# systemd's characters, "\" of an escaped name included.
	local re='^[-A-Za-z0-9:_.@\]+\.service$'
	[[ $unit =~ $re ]] && [ ${#unit} -le 255 ]
}
