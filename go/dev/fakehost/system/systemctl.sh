# shellcheck shell=bash
# shellcheck disable=SC2154 # systemConfig (build.sh) and lib.sh's variables come first
# systemctl stand-in: on NixOS systemd runs the services; on a fake host
# the host's init does, and this talks to it. Units: sshd.service,
# httpd.service (the system's web service, when it has one), the
# transient units of systemd-run, and the units without a process that the
# systems' activations restart or fail. Also reboot (and `reboot`, a link
# here).
log() { echo "$@" >&2; }
verb='' plain='' legend=1 states=() types=()
[ "${0##*/}" != reboot ] || verb=reboot
# Options go anywhere; the first other word is the verb, the rest its
# arguments.
args=()
while [ $# -gt 0 ]; do
	a=$1
	shift
	case $a in
	--no-block | --no-pager | --quiet | -q | --full | -l | --no-ask-password | --system) ;;
	--plain) plain=1 ;;
	--)
		# The rest are arguments, as with getopt_long.
		for a; do if [ -z "$verb" ]; then verb=$a; else args+=("$a"); fi; done
		break
		;;
	--no-legend) legend='' ;;
	--failed) states+=(failed) ;;
	--state=*) IFS=, read -ra s <<<"${a#*=}" && states+=("${s[@]}") ;;
	--type=*) IFS=, read -ra s <<<"${a#*=}" && types+=("${s[@]}") ;;
	--state | --type | -t)
		[ $# -gt 0 ] || {
			log "systemctl: option '$a' requires an argument"
			exit 1
		}
		IFS=, read -ra s <<<"$1"
		if [ "$a" = --state ]; then states+=("${s[@]}"); else types+=("${s[@]}"); fi
		shift
		;;
	-*)
		log "systemctl (fake host): option $a is not supported"
		exit 1
		;;
	*) if [ -z "$verb" ]; then verb=$a; else args+=("$a"); fi ;;
	esac
done
# systemctl without a verb lists units.
[ -n "$verb" ] || verb=list-units
needs_root() {
	if [ "$EUID" != 0 ]; then
		log "Failed to $1 ${2-}: Access denied"
		exit 1
	fi
}
# A static unit (no process): one the running system restarts or fails,
# one failing on this host (Host.SetFailingUnits), or one in
# $ctl/units/<unit>/static.
static_unit() {
	local l
	[ ! -e "$ctl/units/$1/static" ] || return 0
	for l in /run/current-system/fakehost/restart-units /run/current-system/fakehost/fail-units "$ctl/failing-units"; do
		[ -s "$l" ] || continue
		mapfile -t lst <"$l"
		for u in "${lst[@]}"; do [ "$u" != "$1" ] || return 0; done
	done
	return 1
}
# fails <unit>: a static unit that fails when it starts.
fails() {
	local l
	for l in /run/current-system/fakehost/fail-units "$ctl/failing-units"; do
		[ -s "$l" ] || continue
		mapfile -t lst <"$l"
		for u in "${lst[@]}"; do [ "$u" != "$1" ] || return 0; done
	done
	return 1
}
# describe <unit>: the unit's description, load, active and sub state, and
# its status glyph, in desc, ustate, sub and glyph.
describe() {
	local d=$ctl/units/$1
	unit_state "$1"
	desc=$1
	case $1 in
	sshd.service) desc="SSH Daemon" ;;
	httpd.service) desc="Web server (busybox httpd)" ;;
	*) [ ! -e "$d/description" ] || desc=$(<"$d/description") ;;
	esac
	case $ustate in
	active) if [ -e "$d/static" ]; then sub=exited; else sub=running; fi ;;
	activating) sub=start ;;
	failed) sub=failed ;;
	*) sub=dead ;;
	esac
	case $ustate in
	active | activating) glyph=● ;;
	failed) glyph=× ;;
	*) glyph=○ ;;
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
		if static_unit "$unit"; then
			needs_root "$verb" "$unit"
			if [ "$verb" = stop ]; then
				set_static inactive "$unit"
			elif fails "$unit"; then
				set_static failed "$unit"
				log "Job for $unit failed because the control process exited with error code."
				log "See \"systemctl status $unit\" and \"journalctl -xeu $unit\" for details."
				res=1
			else
				set_static active "$unit"
			fi
			continue
		fi
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
try-restart)
	# systemd's semantics: a running unit is restarted, a stopped or failed
	# one left alone (exit 0), a unit that does not exist is an error.
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
		unit_state "$unit"
		if static_unit "$unit"; then
			case $ustate in active | activating | reloading) ;; *) continue ;; esac
			needs_root try-restart "$unit"
			if fails "$unit"; then
				set_static failed "$unit"
				log "Job for $unit failed because the control process exited with error code."
				log "See \"systemctl status $unit\" and \"journalctl -xeu $unit\" for details."
				res=1
				continue
			fi
			set_static active "$unit"
			echo x >>"$ctl/units/$unit/restarts"
			continue
		fi
		case $unit in
		sshd.service) ;;
		httpd.service)
			# Loaded only when the running system has the web service.
			if [ "$ustate" = inactive ] && [ ! -s /run/current-system/fakehost/httpd ]; then
				log "Failed to try-restart $unit: Unit $unit not found."
				res=5
				continue
			fi
			;;
		*)
			if [ ! -d "$ctl/units/$unit" ]; then
				log "Failed to try-restart $unit: Unit $unit not found."
				res=5
				continue
			fi
			# A transient unit cannot be started again (a fake host's limit).
			case $ustate in active | activating) ;; *) continue ;; esac
			log "Failed to try-restart $unit: the fake host cannot restart transient units"
			res=1
			continue
			;;
		esac
		case $ustate in active | activating | reloading) ;; *) continue ;; esac
		needs_root try-restart "$unit"
		service restart "${unit%.service}" || {
			log "Job for $unit failed. See \"systemctl status $unit\" and \"journalctl -xeu $unit\" for details."
			res=1
		}
	done
	exit $res
	;;
reload)
	# sshd and httpd have ExecReload= (a SIGHUP; sshd's is only counted
	# here), the units without a process and the transient ones none.
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
		unit_state "$unit"
		case $unit in
		sshd.service | httpd.service)
			if [ "$unit" = httpd.service ] && [ "$ustate" = inactive ] && [ ! -s /run/current-system/fakehost/httpd ]; then
				log "Failed to reload $unit: Unit $unit not found."
				res=5
				continue
			fi
			needs_root reload "$unit"
			if [ "$ustate" != active ]; then
				# unit_reload() of an inactive unit: the job is invalid.
				log "Job for $unit invalid."
				res=1
				continue
			fi
			if [ "$unit" = httpd.service ] && [ -s "$ctl/httpd.main-pid" ]; then
				kill -HUP "$(<"$ctl/httpd.main-pid")" 2>/dev/null || true
			fi
			mkdir -p "$ctl/units/$unit" && echo x >>"$ctl/units/$unit/reloads"
			;;
		*)
			if [ ! -d "$ctl/units/$unit" ] && ! static_unit "$unit"; then
				log "Failed to reload $unit: Unit $unit not found."
				res=5
				continue
			fi
			needs_root reload "$unit"
			log "Failed to reload $unit: Job type reload is not applicable for unit $unit."
			res=3
			;;
		esac
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
		unit_state "$unit"
		echo "$ustate"
		if [ "$verb" = is-active ] && [ "$ustate" = active ]; then res=0; fi
		if [ "$verb" = is-failed ] && [ "$ustate" = failed ]; then res=0; fi
	done
	exit $res
	;;
list-units)
	# The loaded units: sshd, httpd, and every unit in $ctl/units (a failed
	# sshd or httpd is there too).
	units=(sshd.service httpd.service)
	for d in "$ctl"/units/*; do
		[ -d "$d" ] || continue
		d=${d##*/}
		[ "$d" = sshd.service ] || [ "$d" = httpd.service ] || units+=("$d")
	done
	sort_units "${units[@]}"
	units=("${sorted[@]}")
	rows=()
	for u in "${units[@]}"; do
		[ ${#args[@]} = 0 ] || {
			m=''
			# shellcheck disable=SC2053 # the arguments are patterns
			for a in "${args[@]}"; do [[ $u != $a ]] || m=1; done
			[ -n "$m" ] || continue
		}
		m=''
		[ ${#types[@]} = 0 ] || for a in "${types[@]}"; do [ "${u##*.}" != "$a" ] || m=1; done
		[ ${#types[@]} = 0 ] || [ -n "$m" ] || continue
		describe "$u"
		if [ ${#states[@]} = 0 ]; then
			[ "$ustate" != inactive ] || continue
		else
			m=''
			for a in "${states[@]}"; do [ "$a" != loaded ] && [ "$a" != "$ustate" ] && [ "$a" != "$sub" ] || m=1; done
			[ -n "$m" ] || continue
		fi
		# A failed unit has a red ●, the others none.
		if [ "$ustate" = failed ]; then glyph=●; else glyph=' '; fi
		rows+=("$glyph" "$u" loaded "$ustate" "$sub" "$desc")
	done
	# systemd's table: columns as wide as their widest cell, one blank
	# between them; --plain drops the glyph column, --no-legend the header
	# and the footer.
	if [ -n "$legend" ]; then w=(1 4 4 6 3); else w=(1 0 0 0 0); fi
	for ((i = 0; i < ${#rows[@]}; i += 6)); do
		for c in 1 2 3 4; do
			[ ${#rows[i + c]} -le "${w[c]}" ] || w[c]=${#rows[i + c]}
		done
	done
	line() {
		local l=''
		[ -n "$plain" ] || l="$1 "
		printf '%s%-*s %-*s %-*s %-*s %s\n' "$l" "${w[1]}" "$2" "${w[2]}" "$3" "${w[3]}" "$4" "${w[4]}" "$5" "$6"
	}
	[ -z "$legend" ] || line ' ' UNIT LOAD ACTIVE SUB DESCRIPTION
	for ((i = 0; i < ${#rows[@]}; i += 6)); do
		line "${rows[@]:i:6}"
	done
	if [ -n "$legend" ]; then
		n=$((${#rows[@]} / 6))
		[ "$n" = 0 ] || printf '\n%s\n%s\n%s\n' \
			"LOAD   = Reflects whether the unit definition was properly loaded." \
			"ACTIVE = The high-level unit activation state, i.e. generalization of SUB." \
			"SUB    = The low-level unit activation state, values depend on unit type."
		if [ ${#states[@]} = 0 ]; then
			echo "$n loaded units listed. Pass --all to see loaded but inactive units, too."
			echo "To show all installed unit files use 'systemctl list-unit-files'."
		else
			echo "$n loaded units listed."
		fi
	fi
	;;
status)
	res=0
	for u in "${args[@]}"; do
		unit_name "$u" || unit=$u
		d=$ctl/units/$unit
		case $unit in
		sshd.service | httpd.service) ;;
		*)
			if [ ! -d "$d" ] && ! static_unit "$unit"; then
				log "Unit $unit could not be found."
				res=4
				continue
			fi
			;;
		esac
		describe "$unit"
		if [ "$desc" = "$unit" ]; then echo "$glyph $unit"; else echo "$glyph $unit - $desc"; fi
		if [ -e "$d/main-pid" ] && [ ! -e "$d/static" ]; then
			echo "     Loaded: loaded (/run/systemd/transient/$unit; transient)"
			echo "  Transient: yes"
		else
			echo "     Loaded: loaded (/etc/systemd/system/$unit; enabled; preset: enabled)"
		fi
		case $ustate in
		active | activating)
			if [ "$sub" = exited ]; then echo "     Active: active (exited)"; else echo "     Active: $ustate (running)"; fi
			[ ! -e "$d/main-pid" ] || echo "   Main PID: $(<"$d/main-pid")"
			;;
		failed)
			r=exit-code
			[ ! -e "$d/result" ] || r=$(<"$d/result")
			echo "     Active: failed (Result: $r)"
			if [ -e "$d/exec-main" ]; then
				echo "    Process: $(<"$d/main-pid") ExecStart ($(<"$d/exec-main"))"
			else
				echo "    Process: ExecStart (code=exited, status=1/FAILURE)"
			fi
			;;
		*) echo "     Active: inactive (dead)" ;;
		esac
		[ "$ustate" = active ] || [ "$res" = 4 ] || res=3
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
			m=''
			for a in "${args[@]}"; do
				unit_name "$a" || continue
				[ "$unit" != "$u" ] || m=1
			done
			[ -n "$m" ] || continue
		fi
		unit_state "$u"
		[ "$ustate" = failed ] || continue
		if [ -e "$d/static" ]; then set_static inactive "$u"; else service reset-failed "${u%.service}"; fi
	done
	;;
reboot)
	if [ "$EUID" != 0 ]; then
		log "Failed to reboot system via logind: Access denied"
		log "Failed to start reboot.target: Access denied"
		exit 1
	fi
	# Host.SetRebootFails: the reboot is refused.
	if [ -s "$ctl/reboot-fails" ]; then
		cat "$ctl/reboot-fails" >&2
		exit 1
	fi
	# The host goes down at once: this session dies with it.
	service reboot system
	;;
daemon-reload) needs_root daemon-reload ;;
*)
	log "systemctl (fake host): only start, stop, restart, try-restart, reload, is-active, is-failed, list-units, status, reset-failed and reboot"
	exit 1
	;;
esac
