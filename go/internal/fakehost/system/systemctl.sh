# shellcheck disable=SC2154 # systemConfig (build.sh) and lib.sh's variables come first
# systemctl stand-in: on NixOS systemd runs the services; on a fake host
# the host's init does, and this talks to it. Units: sshd.service,
# httpd.service (the system's web service, when it has one) and the
# transient units of systemd-run. Also reboot (and `reboot`, a link here).
log() { echo "$@" >&2; }
verb=${1-}
[ "${0##*/}" != reboot ] || verb=reboot
# Options systemctl takes anywhere; the rest are the verb's arguments.
args=()
for a in "${@:2}"; do
	case $a in
	--no-block | --no-pager | --quiet | -q | --full | -l | --no-ask-password | --system) ;;
	-*)
		log "systemctl (fake host): option $a is not supported"
		exit 1
		;;
	*) args+=("$a") ;;
	esac
done
needs_root() {
	if [ "$EUID" != 0 ]; then
		log "Failed to $1 ${2-}: Access denied"
		exit 1
	fi
}
# state <unit>: the unit's active state, as is-active prints it.
state() {
	case $1 in
	sshd.service) if sshd_active; then echo active; else echo inactive; fi ;;
	httpd.service) if [ -n "$(httpd_unit)" ]; then echo active; else echo inactive; fi ;;
	*)
		if [ -e "$ctl/units/$1/state" ]; then
			cat "$ctl/units/$1/state"
		else
			echo inactive
		fi
		;;
	esac
}
case $verb in
start | stop | restart)
	[ ${#args[@]} -gt 0 ] || {
		log "Too few arguments."
		exit 1
	}
	res=0
	for u in "${args[@]}"; do
		unit_name "$u" || {
			log "Invalid unit name \"$u\"."
			exit 1
		}
		case $unit in
		sshd.service | httpd.service) ;;
		*)
			if [ "$verb" != stop ] || [ ! -d "$ctl/units/$unit" ]; then
				# A transient unit cannot be started again; a missing one
				# is not found (stopping it is fine, as on systemd).
				[ "$verb" = stop ] && continue
				log "Failed to $verb $unit: Unit $unit not found."
				exit 5
			fi
			;;
		esac
		needs_root "$verb" "$unit"
		service "$verb" "${unit%.service}" || {
			[ "$verb" = stop ] || log "Job for $unit failed. See \"systemctl status $unit\" and \"journalctl -xeu $unit\" for details."
			res=1
		}
	done
	exit $res
	;;
is-active | is-failed)
	[ ${#args[@]} -gt 0 ] || {
		log "Too few arguments."
		exit 1
	}
	res=3
	[ "$verb" = is-active ] || res=1
	for u in "${args[@]}"; do
		unit_name "$u" || unit=$u
		s=$(state "$unit")
		echo "$s"
		if [ "$verb" = is-active ] && [ "$s" = active ]; then res=0; fi
		if [ "$verb" = is-failed ] && [ "$s" = failed ]; then res=0; fi
	done
	exit $res
	;;
status)
	res=0
	for u in "${args[@]}"; do
		unit_name "$u" || unit=$u
		s=$(state "$unit")
		d=$ctl/units/$unit
		case $unit in
		sshd.service | httpd.service) ;;
		*)
			if [ ! -d "$d" ]; then
				log "Unit $unit could not be found."
				res=4
				continue
			fi
			;;
		esac
		desc=$unit
		[ ! -e "$d/description" ] || desc=$(<"$d/description")
		echo "● $unit - $desc"
		case $unit in
		sshd.service | httpd.service) echo "     Loaded: loaded (/etc/systemd/system/$unit; enabled; preset: enabled)" ;;
		*)
			echo "     Loaded: loaded (/run/systemd/transient/$unit; transient)"
			echo "  Transient: yes"
			;;
		esac
		case $s in
		active | activating)
			echo "     Active: $s (running)"
			[ ! -e "$d/main-pid" ] || echo "   Main PID: $(<"$d/main-pid")"
			;;
		failed)
			echo "     Active: failed (Result: $(<"$d/result"))"
			echo "    Process: $(<"$d/main-pid") ExecStart ($(<"$d/exec-main"))"
			;;
		*) echo "     Active: inactive (dead)" ;;
		esac
		[ "$s" = active ] || [ "$res" = 4 ] || res=3
		if [ -e "/var/log/fakehost/units/$unit.log" ]; then
			echo
			tail -n 10 "/var/log/fakehost/units/$unit.log"
		fi
	done
	exit $res
	;;
reset-failed)
	needs_root reset-failed "${args[0]-}"
	for d in "$ctl"/units/*; do
		[ -d "$d" ] || continue
		u=${d##*/}
		if [ ${#args[@]} -gt 0 ]; then
			m=
			for a in "${args[@]}"; do
				unit_name "$a" || continue
				[ "$unit" != "$u" ] || m=1
			done
			[ -n "$m" ] || continue
		fi
		[ "$(state "$u")" != failed ] || service reset-failed "${u%.service}"
	done
	;;
reboot)
	if [ "$EUID" != 0 ]; then
		log "Failed to reboot system via logind: Access denied"
		log "Failed to start reboot.target: Access denied"
		exit 1
	fi
	# The host goes down at once: this session dies with it.
	service reboot system
	;;
daemon-reload) needs_root daemon-reload ;;
*)
	log "systemctl (fake host): only start, stop, restart, is-active, is-failed, status, reset-failed and reboot"
	exit 1
	;;
esac
