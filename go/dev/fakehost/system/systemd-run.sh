# shellcheck shell=bash
# shellcheck disable=SC2154 # systemConfig (build.sh) and lib.sh's variables come first
# systemd-run stand-in: the subset a deployer uses to run a command as a
# transient service of the host's init (the stand-in for systemd), detached
# from its ssh session: a child of PID 1 in a session of its own, stdin
# /dev/null, stdout and stderr to the unit's log (journalctl -u), unless
# --pipe. Without --wait (or --pipe) it returns once the unit started
# (Type=oneshot: once it finished); with --wait it returns the command's
# exit code, as systemd-run does.
log() { echo "$@" >&2; }
usage() {
	log "usage: systemd-run [--unit=NAME] [--description=TEXT] [--collect] [--quiet] [--no-block]"
	log "       [--service-type=simple|exec|oneshot] [-p PROP=VALUE] [-E NAME[=VALUE]] [--wait] [--pipe]"
	log "       [--same-dir] [--no-ask-password] [--] COMMAND [ARGS...]"
	exit 1
}
name='' description='' collect='' quiet='' noblock='' type=simple wait='' pipe='' samedir='' user=''
env=()
while [ $# -gt 0 ]; do
	a=$1
	case $a in
	--unit=*) name=${a#*=} ;;
	--unit | -u)
		[ $# -ge 2 ] || usage
		name=$2
		shift
		;;
	--description=*) description=${a#*=} ;;
	--description)
		[ $# -ge 2 ] || usage
		description=$2
		shift
		;;
	--collect | -G) collect=1 ;;
	--quiet | -q) quiet=1 ;;
	--no-block) noblock=1 ;;
	--service-type=*) type=${a#*=} ;;
	--service-type)
		[ $# -ge 2 ] || usage
		type=$2
		shift
		;;
	--property=* | -p?*) ;;
	--property | -p)
		[ $# -ge 2 ] || usage
		shift
		;;
	--setenv=*) env+=("${a#*=}") ;;
	-E?*) env+=("${a#-E}") ;;
	--setenv | -E)
		[ $# -ge 2 ] || usage
		env+=("$2")
		shift
		;;
	--wait) wait=1 ;;
	--pipe | -P) pipe=1 ;;
	--same-dir | -d) samedir=1 ;;
	--no-ask-password | --system) ;;
	--user) user=1 ;;
	--help | -h) usage ;;
	--)
		shift
		break
		;;
	-*)
		log "systemd-run: unrecognized option '$a' (fake host: only the options a deployer uses)"
		exit 1
		;;
	*) break ;;
	esac
	shift
done
[ $# -gt 0 ] || {
	log "Command line to execute required."
	exit 1
}
case $type in
simple | exec | oneshot) ;;
*)
	log "Failed to start transient service unit: Invalid service type $type (fake host: simple, exec or oneshot)"
	exit 1
	;;
esac
if [ -n "$user" ]; then
	log "Failed to connect to bus: \$DBUS_SESSION_BUS_ADDRESS and \$XDG_RUNTIME_DIR not defined (consider using --machine=<user>@.host --user to connect to bus of other user)"
	exit 1
fi
# -E NAME takes the value from our environment, as systemd-run does.
for i in "${!env[@]}"; do
	e=${env[i]}
	if [[ $e != *=* ]]; then
		if [ -n "${!e+x}" ]; then env[i]=$e=${!e}; else unset 'env[i]'; fi
	fi
done
# systemd-run resolves the command in its caller's PATH.
cmd=$1
if [[ $cmd != */* ]]; then
	p=$(type -P -- "$cmd") || {
		log "Failed to find executable $cmd: No such file or directory"
		exit 1
	}
	cmd=$p
fi
shift
if [ "$EUID" != 0 ]; then
	log "Failed to start transient service unit: Access denied"
	exit 1
fi
if [ -n "$name" ]; then
	unit_name "$name" || {
		log "Failed to mangle unit name: Invalid argument"
		exit 1
	}
else
	printf -v unit 'run-r%04x%04x%04x%04x%04x%04x%04x%04x.service' $RANDOM $RANDOM $RANDOM $RANDOM \
		$RANDOM $RANDOM $RANDOM $RANDOM
fi

# The request for init: a directory only root can write.
[ -d "$ctl/requests" ] || mkdir -m 0755 "$ctl/requests"
req=$(mktemp -d "$ctl/requests/XXXXXXXX") || exit 1
printf '%s\0' "$cmd" "$@" >"$req/argv"
: >"$req/env"
[ ${#env[@]} = 0 ] || printf '%s\0' "${env[@]}" >"$req/env"
[ -z "$samedir" ] || pwd -P >"$req/cwd"
[ -z "$description" ] || printf '%s\n' "$description" >"$req/description"
printf '%s\n' "$type" >"$req/type"
[ -z "$collect" ] || : >"$req/collect"
# --pipe: the unit gets our stdin, stdout and stderr (init opens them
# through /proc/<our pid>/fd).
[ -z "$pipe" ] || echo $$ >"$req/pipe"
waiting=''
if [ -n "$wait" ] || [ -n "$pipe" ] || { [ "$type" = oneshot ] && [ -z "$noblock" ]; }; then
	waiting=1
	: >"$req/wait"
	# Init answers there, and writes a line there when the unit ended.
	mkfifo -m 0600 "$req/done" && exec {service_fd}<>"$req/done"
fi
# shellcheck disable=SC2034 # read by service (lib.sh)
service_quiet=1
if ! service run "$unit ${req##*/}"; then
	rm -rf "$req"
	log "Failed to start transient service unit: $service_error"
	exit 1
fi
# A oneshot unit is "started" once it finished.
if [ "$type" != oneshot ] || [ -n "$noblock" ] || [ -n "$wait" ] || [ -n "$pipe" ]; then
	[ -n "$quiet" ] || log "Running as unit: $unit"
fi
if [ -z "$waiting" ]; then
	rm -rf "$req"
	exit 0
fi
# Init writes "<result> <exit code> <status> <runtime ms>" when the unit's
# main process ended.
while [ ! -e "$req/exit" ]; do
	read -r -t 1 -u "$service_fd" _ || true
done
read -r result code status ms <"$req/exit"
rm -rf "$req"
if [ -z "$wait" ] && [ -z "$pipe" ]; then
	# A oneshot start job.
	if [ "$result" != success ]; then
		log "Job for $unit failed because the control process exited with error code."
		log "See \"systemctl status $unit\" and \"journalctl -xeu $unit\" for details."
		exit 1
	fi
	[ -n "$quiet" ] || log "Running as unit: $unit"
	exit 0
fi
if [ -n "$wait" ] && [ -z "$quiet" ]; then
	log "Finished with result: $result"
	log "Main processes terminated with: code=$code/status=$status"
	log "Service runtime: ${ms}ms"
fi
case $result in
success) exit 0 ;;
exit-code) exit "$status" ;;
signal) exit 255 ;;
*) exit 1 ;;
esac
