package fakehost

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// The host's init is a bash script, PID 1 of the host's PID namespace
// (bash reaps the orphans it adopts). It sets the host up, boots the
// boot loader's default system (or builds the first generation), then runs
// the system's services and serves requests from /run/fakehost/init.fifo,
// each ended by ";" (and a newline):
//
//	<start|stop|restart> <sshd|httpd> <id>;
//	run <unit>.service <request> <id>;    (systemd-run)
//	<stop|reset-failed> <unit> <id>;      (transient units)
//	restart network <seconds> <id>;       (System.RestartNetwork)
//	start secrets <id>;                   (the secrets' units, after a switch)
//	reboot system <id>;
//
// answering "ok" or an error in /run/fakehost/replies/<id>. This is the
// stand-in for systemd; NixOS's sshd.service has KillMode=process, and so
// stopping sshd here kills the listener only: sessions survive. A network
// restart kills every sshd process (listener and sessions) and starts sshd
// again after the given time, while init goes on serving requests.
const initLoop = `
# nap <seconds> sleeps without a process: read -t on a FIFO (fd 4) that
# nobody writes to. wake <fifo> [line] writes a line to a client's FIFO,
# opened read-write so that it never blocks, whether the client still
# reads it or not. Services and units do not inherit init's FIFOs (fd 3
# and 4).
rm -f "$ctl/nap.fifo"
mkfifo -m 0600 "$ctl/nap.fifo"
exec 4<>"$ctl/nap.fifo"
rm -f "$ctl/nap.fifo"
nap() { read -r -t "$1" -u 4 _ || :; }
wake() {
	[ -p "$1" ] || return 1
	exec {w}<>"$1"
	printf '%s\n' "${2-}" >&"$w"
	exec {w}>&-
}
# reply <id> <answer> [fifo]: the answer to a request goes to the client's
# FIFO (replies/<id>.wake, or the one given) when it made one, else to
# replies/<id> (Host.StopSSHD and the like poll for it).
reply() {
	wake "${3:-$ctl/replies/$1.wake}" "$2" && return 0
	echo "$2" >"$ctl/replies/$1.tmp"
	mv "$ctl/replies/$1.tmp" "$ctl/replies/$1"
}
# Services: sshd, httpd (the system's web service) and the transient units
# of systemd-run.
sshd_pid= httpd_pid=
# listening <pid> <addr>: the process holds the socket listening on addr
# (another process may hold the port, and then the service exits).
listening() {
	local sl addr rem st txrx tr retr uid tmo inode rest fds
	while read -r sl addr rem st txrx tr retr uid tmo inode rest; do
		[ "$addr" = "$2" ] && [ "$st" = 0A ] || continue
		fds=" $(readlink /proc/"$1"/fd/* 2>/dev/null | tr '\n' ' ') "
		[[ $fds == *" socket:[$inode] "* ]] && return 0
	done </proc/net/tcp
	return 1
}
# wait_listening <name> <pid> <addr> sets err when the service does not
# come up.
wait_listening() {
	local i
	for ((i = 0; i < 1000; i++)); do
		if ! kill -0 "$2" 2>/dev/null; then
			err="$1 exited at start (see its log)"
			return 1
		fi
		if listening "$2" "$3"; then
			echo "fakehost-init: $1 listens ($EPOCHREALTIME)" >&2
			return 0
		fi
		nap 0.01
	done
	err="$1 does not listen after 10s"
	return 1
}
start_sshd() {
	err= net_up_at=
	if [ -n "$sshd_pid" ] && kill -0 "$sshd_pid" 2>/dev/null; then return 0; fi
	"$sshd_bin" -D -e -f "$sshd_config" </dev/null 3>&- 4>&- &
	sshd_pid=$!
	if ! wait_listening sshd "$sshd_pid" "$listen_addr"; then
		kill -KILL "$sshd_pid" 2>/dev/null
		sshd_pid=
		return 1
	fi
	echo "$sshd_pid" >"$ctl/sshd.active"
	rm -rf "$ctl/units/sshd.service"
}
stop_sshd() {
	net_up_at=
	if [ -n "$sshd_pid" ]; then
		kill -TERM "$sshd_pid" 2>/dev/null
		wait "$sshd_pid" 2>/dev/null
	fi
	sshd_pid=
	rm -f "$ctl/sshd.active"
}
# restart_network <seconds>: the network goes down: every sshd process
# dies at once (the listener and every session: clients see their
# connection drop), and sshd, if it ran, listens again after that time.
net_up_at=
restart_network() {
	local was=$sshd_pid f c pid
	err=
	if ! [[ $1 =~ ^[0-9]+(\.[0-9]{1,6})?$ ]]; then
		err="bad time $1"
		return 1
	fi
	for f in /proc/[0-9]*/comm; do
		read -r c <"$f" 2>/dev/null || continue
		[ "$c" = sshd ] || continue
		pid=${f#/proc/}
		kill -KILL "${pid%/comm}" 2>/dev/null
	done
	if [ -n "$sshd_pid" ]; then
		wait "$sshd_pid" 2>/dev/null
		sshd_pid=
		rm -f "$ctl/sshd.active"
	fi
	echo "fakehost-init: network restart: sshd down for $1s ($EPOCHREALTIME)" >&2
	[ -n "$was" ] || return 0
	local s=${1%.*} us=0
	[[ $1 != *.* ]] || { us=${1#*.}000000; us=$((10#${us:0:6})); }
	net_up_at=$((${EPOCHREALTIME/[.,]/} + s * 1000000 + us))
}
# httpd.service runs busybox httpd on the host's HTTP port, serving the
# www directory of the current system (its unit, as systemd loads units
# from the activated /etc).
start_httpd() {
	local www port
	err=
	if [ -n "$httpd_pid" ] && kill -0 "$httpd_pid" 2>/dev/null; then return 0; fi
	www=$(cat /run/current-system/fakehost/httpd 2>/dev/null) || www=
	if [ -z "$www" ]; then
		err="Unit httpd.service not found."
		return 1
	fi
	read -r port <"$ctl/http-port" 2>/dev/null || port=
	if [ -z "$port" ] || [ -z "$busybox_bin" ]; then
		err="httpd.service: the host has no HTTP port (HostSpec.HTTP) or no busybox"
		return 1
	fi
	"$busybox_bin" httpd -f -p "127.0.0.1:$port" -h "$www" -c "$www/httpd.conf" </dev/null \
		>>/var/log/fakehost/units/httpd.service.log 2>&1 3>&- 4>&- &
	httpd_pid=$!
	if ! wait_listening httpd "$httpd_pid" "$(printf '0100007F:%04X' "$port")"; then
		kill -KILL "$httpd_pid" 2>/dev/null
		httpd_pid=
		return 1
	fi
	echo "$www" >"$ctl/httpd.active"
	echo "$httpd_pid" >"$ctl/httpd.main-pid"
	rm -rf "$ctl/units/httpd.service"
}
stop_httpd() {
	if [ -n "$httpd_pid" ]; then
		kill -TERM "$httpd_pid" 2>/dev/null
		wait "$httpd_pid" 2>/dev/null
	fi
	httpd_pid=
	rm -f "$ctl/httpd.active" "$ctl/httpd.main-pid"
}

# Transient units: $ctl/units/<unit>/ holds state (activating, active,
# failed), main-pid, description, and once ended result and exec-main;
# unit_pid, unit_type, unit_collect and unit_wait (the waiting client's
# request) are init's own. A unit that ends well is unloaded (its directory
# goes); a failed one stays until reset-failed, unless --collect.
declare -A unit_pid=() unit_type=() unit_collect=() unit_wait=() unit_start=()
# session_pids <sid>: the processes of a session (the unit's "cgroup").
session_pids() {
	local f st rest pid
	pids=()
	for f in /proc/[0-9]*/stat; do
		read -r st <"$f" 2>/dev/null || continue
		pid=${st%% *}
		rest=${st##*) }
		read -r _ _ _ rest <<<"$rest"
		[ "${rest%% *}" = "$1" ] && [ "$pid" != "$1" ] && pids+=("$pid")
	done
}
run_unit() {
	local u=$1 req=$ctl/requests/$2 d=$ctl/units/$1 pid cwd=/ src=/dev/null in out errf
	local -a argv envv
	err=
	if [ "$u" = sshd.service ] || [ "$u" = httpd.service ] || [ -e "$d" ]; then
		err="Unit $u was already loaded or has a fragment file."
		return 1
	fi
	if [ ! -d "$req" ] || [[ $2 == */* ]] || [[ $2 == .* ]]; then
		err="bad request $2"
		return 1
	fi
	mapfile -d '' -t argv <"$req/argv"
	mapfile -d '' -t envv <"$req/env"
	[ ! -e "$req/cwd" ] || read -r cwd <"$req/cwd"
	mkdir -m 0755 "$d"
	if [ -e "$req/description" ]; then
		local -a desc
		mapfile -t desc <"$req/description"
		printf '%s\n' "${desc[@]}" >"$d/description"
	fi
	read -r unit_type[$u] <"$req/type"
	unit_collect[$u]= unit_wait[$u]=
	[ ! -e "$req/collect" ] || unit_collect[$u]=1
	[ ! -e "$req/wait" ] || unit_wait[$u]=$2
	out=/var/log/fakehost/units/$u.log errf=$out in=/dev/null
	if [ -e "$req/pipe" ]; then
		read -r pid <"$req/pipe"
		in=/proc/$pid/fd/0 out=/proc/$pid/fd/1 errf=/proc/$pid/fd/2
	fi
	# A service of its own session, with SIGINT and SIGQUIT as usual
	# (a background job of a script without job control ignores them) and
	# SIGPIPE ignored (systemd's IgnoreSIGPIPE=yes). The environment is
	# systemd's for services: no session PATH (no /run/current-system/sw/bin).
	local invocation delay=
	printf -v invocation '%04x' $RANDOM $RANDOM $RANDOM $RANDOM $RANDOM $RANDOM $RANDOM $RANDOM
	# Host.SetUnitStartDelay: the unit's process runs, but its program
	# reaches its first line only later (a loaded host).
	[ ! -s "$ctl/unit-start-delay" ] || read -r delay <"$ctl/unit-start-delay"
	[ -z "$delay" ] || argv=(/bin/sh -c 'sleep "$0" && exec "$@"' "$delay" "${argv[@]}")
	set +m
	(
		trap - INT QUIT
		trap '' PIPE
		exec 3>&- 4>&-
		cd "$cwd" 2>/dev/null || exit 200
		exec <"$in" >>"$out" 2>>"$errf" || exit 209
		exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			INVOCATION_ID="$invocation" "${envv[@]}" setsid -- "${argv[@]}"
	) &
	pid=$!
	set -m
	unit_pid[$u]=$pid unit_start[$u]=$EPOCHREALTIME
	# Started once it leads its own session (or ended).
	local i st sid
	for ((i = 0; i < 2500; i++)); do
		read -r st 2>/dev/null <"/proc/$pid/stat" || break
		read -r _ _ _ sid _ <<<"${st##*) }"
		[ "$sid" != "$pid" ] || break
		nap 0.002
	done
	echo "$pid" >"$d/main-pid"
	if [ "${unit_type[$u]}" = oneshot ]; then echo activating >"$d/state"; else echo active >"$d/state"; fi
	[ -n "${unit_wait[$u]}" ] || rm -rf "$req"
	echo "fakehost-init: started $u (pid $pid): ${argv[*]}" >&2
}
# end_unit <unit> [stopping]: the main process ended; reap it, kill what is
# left of its session (KillMode=control-group), record the result.
end_unit() {
	local u=$1 d=$ctl/units/$1 pid=${unit_pid[$1]} code result status kind ms
	wait "$pid" 2>/dev/null
	code=$?
	session_pids "$pid"
	[ ${#pids[@]} = 0 ] || kill -KILL "${pids[@]}" 2>/dev/null
	if [ "$code" -gt 128 ] && [ "$code" -lt 160 ]; then
		kind=killed status=$((code - 128)) result=signal
		# SIGHUP, SIGINT, SIGTERM and SIGPIPE are a clean end, but for oneshot.
		case $status in 1 | 2 | 13 | 15) [ "${unit_type[$u]}" = oneshot ] || result=success ;; esac
		[ -z "${2-}" ] || result=success
	else
		kind=exited status=$code result=success
		[ "$code" = 0 ] || result=exit-code
	fi
	ms=$(((${EPOCHREALTIME/[.,]/} - ${unit_start[$u]/[.,]/}) / 1000))
	echo "fakehost-init: $u ended: $kind $status ($result)" >&2
	if [ -n "${unit_wait[$u]}" ] && [ -d "$ctl/requests/${unit_wait[$u]}" ]; then
		echo "$result $kind $status $ms" >"$ctl/requests/${unit_wait[$u]}/exit.tmp"
		mv "$ctl/requests/${unit_wait[$u]}/exit.tmp" "$ctl/requests/${unit_wait[$u]}/exit"
		wake "$ctl/requests/${unit_wait[$u]}/done"
	fi
	if [ "$result" = success ] || [ -n "${unit_collect[$u]}" ]; then
		rm -rf "$d"
	else
		echo "$result" >"$d/result"
		echo "code=$kind, status=$status" >"$d/exec-main"
		echo failed >"$d/state"
	fi
	unset "unit_pid[$u]" "unit_type[$u]" "unit_collect[$u]" "unit_wait[$u]" "unit_start[$u]"
}
# stop_unit: SIGTERM to the unit's session, SIGKILL after 5s
# (TimeoutStopSec, shortened).
stop_unit() {
	local u=$1 pid=${unit_pid[$1]-} i
	err=
	if [ -z "$pid" ]; then
		# A failed unit, or one without a process (static).
		if [ -e "$ctl/units/$u/static" ] || { [ -e "$ctl/units/$u/state" ] && [ "$(<"$ctl/units/$u/state")" = failed ]; }; then
			rm -rf "${ctl:?}/units/$u"
		fi
		return 0
	fi
	session_pids "$pid"
	kill -TERM "$pid" "${pids[@]}" 2>/dev/null
	local st
	for ((i = 0; i < 500; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		read -r st 2>/dev/null <"/proc/$pid/stat" || break
		read -r st _ <<<"${st##*) }"
		[ "$st" != Z ] || break
		nap 0.01
	done
	kill -KILL "$pid" 2>/dev/null
	end_unit "$u" stopping
}
# units_tick reaps the units whose main process ended. A main process that
# is a zombie has ended too: bash reaps its jobs when SIGCHLD comes, and a
# loaded init was seen with SIGCHLD pending and blocked for minutes (bash
# 5.2, after read -t), a switch-to-configuration unreaped and its
# systemd-run waiting for ever; end_unit's wait reaps it.
units_tick() {
	local u st
	for u in "${!unit_pid[@]}"; do
		if ! kill -0 "${unit_pid[$u]}" 2>/dev/null; then
			end_unit "$u"
			continue
		fi
		read -r st 2>/dev/null <"/proc/${unit_pid[$u]}/stat" || continue
		read -r st _ <<<"${st##*) }"
		[ "$st" != Z ] || end_unit "$u"
	done
}
# The secrets' units (System.SecretWaiters), as lollypops' NixOS module
# makes them: lollypops-secret-<name>.service runs the wait script (the
# very file the module uses) with "present" (ExecStartPre: the unit is
# activating, or inactive while only its path unit waits), then is active
# and runs it with "absent" (ExecStart); once the file is gone it is
# inactive, until the file is there again (its path unit). The services
# that wait for a secret (after and wants) start once its unit is active.
# Each unit is a watcher, a background job of init (its own process group),
# whose state is $ctl/units/<unit>/state (and a "secret" marker); a
# waiting service has no process: its state, and what it saw at its start
# in "saw" and its log.
declare -A secret_watch=()
# start_waiter <service> <path>: the service starts (once): it looks
# whether its secret is there, and how large it is, never what it holds.
start_waiter() {
	local w=$1 p=$2 d=$ctl/units/$1 saw st=
	[ ! -e "$d/state" ] || read -r st <"$d/state"
	[ "$st" != active ] || return 0
	if [ -e "$p" ]; then saw="$p present, $(stat -c %s "$p") bytes"; else saw="$p absent"; fi
	mkdir -p "$d" && : >"$d/waiter" && echo "$saw" >"$d/saw"
	echo "started: $saw" >>"/var/log/fakehost/units/$w.log"
	echo active >"$d/state"
}
# watch_secret <unit> <path> <wait script> <service>...
watch_secret() {
	local u=$1 p=$2 wait=$3 d=$ctl/units/$1 st w log=/var/log/fakehost/units/$1.log
	shift 3
	trap - INT QUIT TERM
	exec 3>&- 4>&- </dev/null
	mkdir -p "$d" && : >"$d/secret" && echo "lollypops secret (active while $p exists)" >"$d/description"
	while :; do
		# Wanted by a service that is not started yet: activating.
		st=inactive
		for w; do [ "$(cat "$ctl/units/$w/state" 2>/dev/null)" = active ] || st=activating; done
		echo "$st" >"$d/state"
		if /bin/sh "$wait" present "$p" 0.2 >>"$log" 2>&1; then
			echo active >"$d/state"
			for w; do start_waiter "$w" "$p"; done
			/bin/sh "$wait" absent "$p" 0.2 >>"$log" 2>&1 && continue
		fi
		# Restart=on-failure, RestartSec=1s.
		echo failed >"$d/state"
		sleep 1
	done
}
# sync_secret_units: the current system's secrets' units run, others are
# stopped (as the activation starts new units and stops removed ones); so
# are the waiting services the system no longer has.
sync_secret_units() {
	local sys=/run/current-system/fakehost u p w unit pid d
	local -A want=() waiters=() waiting=()
	[ ! -s "$sys/secret-waiters" ] || while IFS=$'\t' read -r w unit; do
		waiters[$unit]+=" $w"
		waiting[$w]=1
	done <"$sys/secret-waiters"
	[ ! -s "$sys/secret-units" ] || while IFS=$'\t' read -r u p; do
		want[$u]=1
		[ -z "${secret_watch[$u]-}" ] || continue
		# shellcheck disable=SC2086 # the services' names
		watch_secret "$u" "$p" "$sys/secret-wait.sh" ${waiters[$u]-} &
		secret_watch[$u]=$!
		echo "fakehost-init: started $u (pid $!) for $p" >&2
	done <"$sys/secret-units"
	for u in "${!secret_watch[@]}"; do
		[ -z "${want[$u]-}" ] || continue
		pid=${secret_watch[$u]}
		kill -TERM -- -"$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		unset "secret_watch[$u]"
		rm -rf "${ctl:?}/units/$u"
		echo "fakehost-init: stopped $u" >&2
	done
	for d in "$ctl"/units/*/waiter; do
		[ -e "$d" ] || continue
		d=${d%/waiter}
		w=${d##*/}
		[ -n "${waiting[$w]-}" ] || rm -rf "$d"
	done
}
# reboot: as systemd's reboot would, the services and sessions end (here
# all at once: when PID 1 exits, the kernel kills every process of the
# namespace); package fakehost sees the request and boots the host again.
reboot_host() {
	echo "fakehost-init: reboot requested ($EPOCHREALTIME)" >&2
	echo reboot >"$ctl/reboot-request"
	reply "$1" ok
	exit 0
}

set +eu
mkdir -p -m 0700 /var/log/fakehost/units
echo "fakehost-init: booting $booted ($EPOCHREALTIME, since $t0)"
"$booted/activate" || echo "fakehost-init: the activation of $booted failed"
# The units without a process: the booted system's restartUnits run, its
# failUnits and the host's failing units (Host.SetFailingUnits) failed.
static_units() {
	local st=$1 u
	shift
	for u in "$@"; do
		[ -n "$u" ] || continue
		mkdir -p "$ctl/units/$u" && : >"$ctl/units/$u/static" && echo "$st" >"$ctl/units/$u/state"
		[ "$st" != failed ] || echo exit-code >"$ctl/units/$u/result"
	done
}
for f in "$booted/fakehost/restart-units" "$booted/fakehost/fail-units" "$ctl/failing-units"; do
	[ -s "$f" ] || continue
	mapfile -t l <"$f"
	if [ "${f##*/}" = restart-units ]; then static_units active "${l[@]}"; else static_units failed "${l[@]}"; fi
done
# Requests are taken from here on, before any service starts: on NixOS,
# systemd answers before sshd lets anyone in (a systemd-run in the first
# session finds its bus). The FIFO stays open read-write, so that no
# request is lost between two reads and a writer never blocks; the
# requests made while the services start are served after.
rm -f "$ctl/init.fifo"
mkfifo -m 0600 "$ctl/init.fifo"
exec 3<>"$ctl/init.fifo"
# boot-failed tells Host.Start at once why no sshd will answer.
if [ -s "$booted/fakehost/sshd" ]; then
	start_sshd || { echo "fakehost-init: $err"; echo "$err" >"$ctl/boot-failed"; }
else
	echo "fakehost-init: $booted has no sshd"
	echo "the booted system $booted has no sshd" >"$ctl/boot-failed"
fi
if [ -s "$booted/fakehost/httpd" ]; then
	start_httpd || echo "fakehost-init: httpd.service: $err"
fi
sync_secret_units

# serve <request>: one request, answered.
serve() {
	local verb unit arg id f=
	read -r verb unit arg id <<<"$1"
	[ -n "$id" ] || id=$arg arg=
	[[ $id =~ ^[0-9.]+$ ]] || return 0
	err=
	case $verb.$unit in
	start.sshd) start_sshd ;;
	stop.sshd) stop_sshd ;;
	restart.sshd) stop_sshd && start_sshd ;;
	start.httpd) start_httpd ;;
	stop.httpd) stop_httpd ;;
	restart.httpd) stop_httpd && start_httpd ;;
	run.*) run_unit "$unit" "$arg" ;;
	stop.*) stop_unit "$unit.service" ;;
	reset-failed.*) stop_unit "$unit.service" ;;
	restart.network) restart_network "$arg" ;;
	start.secrets) sync_secret_units ;;
	reboot.system) reboot_host "$id" ;;
	*) err="unknown request: $verb $unit" ;;
	esac
	# systemd-run waits for the answer and the unit's end on one FIFO.
	[ "$verb" != run ] || [ ! -p "$ctl/requests/$arg/done" ] || f=$ctl/requests/$arg/done
	reply "$id" "${err:-ok}" "$f"
}
partial=
while :; do
	# read -t keeps what it read before timing out: the start of a line
	# (IFS= keeps its blanks). But bash 5.2's read -t can also take a
	# line's newline and report a timeout all the same: the next read
	# then returns two requests in one line, which ";" separates.
	# While units run, their end is noticed within 50ms; within 10ms when a
	# client waits for it (systemd-run --wait or --pipe).
	tick=1
	[ ${#unit_pid[@]} = 0 ] && [ -z "$net_up_at" ] || tick=0.05
	for u in "${unit_wait[@]}"; do [ -z "$u" ] || tick=0.01; done
	if [ -n "$net_up_at" ] && [ "${EPOCHREALTIME/[.,]/}" -ge "$net_up_at" ]; then
		echo "fakehost-init: network up ($EPOCHREALTIME)" >&2
		start_sshd || echo "fakehost-init: sshd after the network restart: $err" >&2
	fi
	if ! IFS= read -r -t $tick line <&3; then
		partial+=$line
		# A listener that died is a stopped service.
		if [ -n "$sshd_pid" ] && ! kill -0 "$sshd_pid" 2>/dev/null; then
			sshd_pid=
			rm -f "$ctl/sshd.active"
		fi
		if [ -n "$httpd_pid" ] && ! kill -0 "$httpd_pid" 2>/dev/null; then
			httpd_pid=
			rm -f "$ctl/httpd.active" "$ctl/httpd.main-pid"
		fi
		units_tick
		continue
	fi
	line=$partial$line partial=
	IFS=';' read -ra requests <<<"$line"
	for request in "${requests[@]}"; do serve "$request"; done
	units_tick
done
`

// initBuild starts building the first generation at the first start of a
// host, with the host's own Nix from system.nix, while the users are
// created; initBoot waits for it and finds the system to boot: the boot
// loader's default. /run/current-system points to it before sshd starts,
// so that the users' login shell exists; its activation comes later.
const initBuild = `if [ ! -e /nix/var/nix/profiles/system ]; then
	echo "fakehost-init: building the first generation"
	nix-build --no-out-link --arg args "$first_args" -E '{ args }: import '"$system_nix"' args' >/run/first-generation &
	first_pid=$!
fi
`

const initBoot = `if [ -n "${first_pid-}" ]; then
	wait "$first_pid" || { echo "fakehost-init: building the first generation failed"; exit 1; }
	first=$(</run/first-generation)
	nix-env -p /nix/var/nix/profiles/system --set "$first"
	mkdir -p /boot/entries
	ln -sfn "$first" /boot/entries/nixos-generation-1
	ln -sfn "$first" /boot/default
	echo fake >/boot/loader
	echo "fakehost-init: first generation $first ($EPOCHREALTIME, since $t0)"
fi
booted=$(readlink -f /boot/default || true)
[ -e "$booted/activate" ] || booted=$(readlink -f /nix/var/nix/profiles/system)
ln -sfn "$booted" /run/booted-system
ln -sfn "$booted" /run/current-system
`

// initScript is PID 1 of the host: setup (mounts, hostname, users), boot,
// sshd, requests. port is sshd's.
func (h *Host) initScript(port int) (string, error) {
	var s shScript
	d, t := h.Dir, h.fleet.tools
	s.line("set -eu")
	s.line("t0=$EPOCHREALTIME")
	// Job control: sshd runs in its own process group and, unlike a
	// background job of a plain script, does not ignore SIGINT and SIGQUIT,
	// which its sessions would inherit.
	s.line("set -m")
	s.line("unset NIX_CONF_DIR NIX_REMOTE")
	s.line("ctl=/run/fakehost")
	s.line("sshd_bin=" + string(mustQuote(&s, t.sshd)))
	s.line("sshd_config=" + string(mustQuote(&s, filepath.Join(d, "sshd_config"))))
	s.line(fmt.Sprintf("listen_addr=0100007F:%04X", port))
	s.line("busybox_bin=" + string(mustQuote(&s, t.busybox)))
	s.line("system_nix=" + string(mustQuote(&s, filepath.Join(d, "system", "system.nix"))))
	args, err := h.spec.System.args(h.Name)
	if err != nil {
		return "", err
	}
	s.line("first_args=" + string(mustQuote(&s, args)))
	s.line("hostname", q(h.Name))
	s.line("mount -t tmpfs -o mode=0755 tmpfs /run")
	s.line("mkdir -m 0755 /run/sshd /run/fakehost /run/wrappers /run/wrappers/bin")
	s.line("mount --bind", q(filepath.Join(d, "ctl")), "/run/fakehost")
	for _, m := range []string{"etc", "var"} {
		opts := fmt.Sprintf("lowerdir=/%s,upperdir=%s,workdir=%s", m, filepath.Join(d, m), filepath.Join(d, m+".w"))
		s.line("mount -t overlay overlay -o", q(opts), "/"+m)
	}
	for _, m := range []string{"root", "home", "nix", "boot"} {
		s.line("mount --bind", q(filepath.Join(d, m)), "/"+m)
	}
	// NixOS has no dash: /bin/sh is bash. Mounting bash over the file
	// /bin/sh resolves to makes both sh and dash bash, in this host only.
	if t.shTarget != t.bash {
		s.line("mount --bind", q(t.bash), q(t.shTarget))
	}
	// Runtime state of the previous boot.
	s.line(`rm -rf "$ctl/replies" "$ctl/sshd.active" "$ctl/httpd.active" "$ctl/httpd.main-pid" "$ctl/init.fifo" "$ctl/boot-failed" \`)
	s.line(`	"$ctl/units" "$ctl/requests" "$ctl/reboot-request"`)
	s.line(`mkdir -m 0755 "$ctl/replies" "$ctl/units" "$ctl/requests"`)
	s.b.WriteString(initBuild)
	h.usersScript(&s)
	s.line("install -d -m 0750 -o root -g keys /run/keys")
	if t.sudo != "" {
		// NixOS's setuid sudo lives in /run/wrappers/bin, first on PATH.
		s.line(": >/run/wrappers/bin/sudo")
		s.line("mount --bind", q(t.sudo), "/run/wrappers/bin/sudo")
	}
	s.b.WriteString(initBoot)
	if h.spec.NixDaemon {
		s.line("rm -f /nix/var/nix/daemon-socket/socket")
		s.line("mkdir -p /nix/var/nix/daemon-socket")
		s.line(q(t.nixDaemon), "</dev/null >>", q(filepath.Join(d, "daemon.log")), "2>&1 &")
		s.line("i=0; until [ -S /nix/var/nix/daemon-socket/socket ]; do")
		s.line(`  i=$((i+1)); [ $i -lt 200 ] || { echo "fakehost: nix-daemon did not create its socket" >&2; exit 1; }`)
		s.line("  sleep 0.05")
		s.line("done")
	}
	s.b.WriteString(initLoop)
	return s.b.String(), s.err
}

// usersScript creates groups and users in the /etc overlay (idempotent,
// for restarts) with NixOS's defaults: login shell bash from the system
// profile, home owned by the user with mode 0700.
func (h *Host) usersScript(s *shScript) {
	groups := []string{"keys"}
	groups = append(groups, h.spec.Groups...)
	for _, u := range h.spec.Users {
		groups = append(groups, u.userGroups()...)
	}
	slices.Sort(groups)
	for _, g := range slices.Compact(groups) {
		s.line("getent group", q(g), ">/dev/null || groupadd -r", q(g))
	}
	for _, u := range h.spec.Users {
		// The shell appears at boot, later: no warning about it.
		args := []any{"getent passwd", q(u.Name), ">/dev/null || useradd -m -s", q(loginShell), "-p '*'",
			"2> >(grep -v 'non-executable shell' >&2)"}
		if g := u.userGroups(); len(g) > 0 {
			args = append(args, "-G", q(strings.Join(g, ",")))
		}
		s.line(append(args, q(u.Name))...)
		home := "/home/" + u.Name
		s.line("chown", q(u.Name+":"), q(home), "&& chmod 0700", q(home))
	}
	if h.hasSudoPasswords() {
		// The passwords, from a file only root reads (never in argv).
		s.line("chpasswd <", q(filepath.Join(h.Dir, "chpasswd")))
	}
	s.line("chmod 0700 /root")
	s.line(`[ "$(getent passwd root | cut -d: -f7)" = ` + string(mustQuote(s, loginShell)) + " ] || usermod -s " +
		string(mustQuote(s, loginShell)) + " root 2> >(grep -v 'non-executable shell' >&2)")
	// With UsePAM no, sshd refuses accounts whose password starts with '!'.
	s.line(`case $(getent shadow root | cut -d: -f2) in '!'*) usermod -p '*' root;; esac`)
}

// userGroups are the user's supplementary groups: wheel too with a
// SudoPassword.
func (u UserSpec) userGroups() []string {
	if u.SudoPassword != "" && !slices.Contains(u.Groups, "wheel") {
		return append(slices.Clip(u.Groups), "wheel")
	}
	return u.Groups
}

func (h *Host) hasSudoPasswords() bool {
	return slices.ContainsFunc(h.spec.Users, func(u UserSpec) bool { return u.SudoPassword != "" })
}

// loginShell is every user's shell, as on NixOS (users.defaultUserShell).
const loginShell = "/run/current-system/sw/bin/bash"

// mustQuote quotes a word for the script; an error sticks to s.
func mustQuote(s *shScript, w string) quoted {
	var t shScript
	t.line(q(w))
	if t.err != nil && s.err == nil {
		s.err = t.err
	}
	return quoted(strings.TrimSuffix(t.b.String(), "\n"))
}
