# shellcheck shell=bash
# shellcheck disable=SC2154 # systemConfig (build.sh) and lib.sh's variables come first
# switch-to-configuration with the semantics of NixOS's (switch-to-
# configuration-ng, the default since 24.11), for a fake host:
#   switch        boot loader default = this system, activate it, services
#   boot          boot loader default only; nothing is activated
#   test          activate and services, boot loader untouched
#   dry-activate  print what would change; change nothing
#   check         run the pre-switch check only
# In stc-ng's order: /etc/NIXOS, the lock (non-blocking: "Could not acquire
# lock", exit 11 = EWOULDBLOCK), the pre-switch check (exit 1; skipped with
# NIXOS_NO_CHECK=1), the boot loader for switch and boot (exit 1), boot
# ends there; init-interface-version (exit 100), stop units, activate
# (exit 2 when it fails), reset failed units, restart and start units,
# list failed units (exit 4).
# The services are sshd and httpd, run by the host's init (the stand-in
# for systemd); sshd's unit does not change between systems, so it is only
# stopped or started; httpd's changes with every system, so it is stopped
# before and started after the activation. The systems' restartUnits and
# failUnits, and the host's failing units (Host.SetFailingUnits), are
# units without a process ("static"): names with a state.
record_pre toplevel "$systemConfig"
record_pre installBootloader "${NIXOS_INSTALL_BOOTLOADER-}"
record_start switch-to-configuration "$@"
action=${1-}
case $action in
switch | boot | test | dry-activate | check) ;;
*)
	cat >&2 <<USAGE
Usage: ${0##*/} [check|switch|boot|test|dry-activate]
check:        run pre-switch checks and exit
switch:       make the configuration the boot default and activate now
boot:         make the configuration the boot default
test:         activate the configuration, but don't make it the boot default
dry-activate: show what would be done if this configuration were activated

USAGE
	exit 1
	;;
esac
if [ "$EUID" != 0 ]; then
	echo "Error: ${0##*/} must be run as the root user" >&2
	exit 1
fi
if [ ! -f /etc/NIXOS ]; then
	echo "This is not a NixOS installation!" >&2
	exit 1
fi
# As stc-ng: one switch at a time, and a second one fails at once.
[ -d /run/nixos ] || mkdir -m 0755 /run/nixos
exec 9>>/run/nixos/switch-to-configuration.lock || {
	echo "Could not open lock" >&2
	exit 1
}
flock -n 9 || {
	echo "Could not acquire lock" >&2
	exit 11
}
export NIXOS_ACTION=$action

# The pre-switch check (system.preSwitchChecks).
if [ "${NIXOS_NO_CHECK-}" != 1 ] && [ -s "$systemConfig/fakehost/pre-switch-check-fails" ]; then
	echo "Pre-switch check 'fakehost' failed (System.PreSwitchCheckFails)" >&2
	echo "Pre-switch checks failed" >&2
	exit 1
fi
[ "$action" != check ] || exit 0

# The boot loader: /boot/loader names the installed one ("fake" or
# "systemd-boot"), /boot/default is the entry that boots, /boot/entries has
# one per generation of the system profile (and its specialisations).
# Installing another loader needs NIXOS_INSTALL_BOOTLOADER=1, as
# systemd-boot-builder.py wants.
install_bootloader() {
	local want installed=fake l n g s default=
	read -r want <"$systemConfig/fakehost/boot-loader" || true
	want=${want:-fake}
	[ ! -e /boot/loader ] || read -r installed </boot/loader
	if [ "$want" != "$installed" ]; then
		if [ "${NIXOS_INSTALL_BOOTLOADER-}" != 1 ]; then
			case $want in
			systemd-boot) echo "Exception: Could not find any previously installed systemd-boot. If you are switching to systemd-boot from a different bootloader, you need to run \`nixos-rebuild switch --install-bootloader\`" >&2 ;;
			*) echo "fakehost: the fake boot loader is not installed (/boot/loader: $installed). If you are switching to it from a different bootloader, you need to run \`nixos-rebuild switch --install-bootloader\`" >&2 ;;
			esac
			return 1
		fi
		echo "$want" >/boot/loader.tmp && mv -T /boot/loader.tmp /boot/loader || return 1
	fi
	mkdir -p /boot/entries && rm -f /boot/entries/* || return 1
	for l in /nix/var/nix/profiles/system-*-link; do
		[ -e "$l" ] || continue
		n=${l#/nix/var/nix/profiles/system-}
		n=nixos-generation-${n%-link}
		g=$(readlink -f "$l")
		ln -sfn "$g" "/boot/entries/$n" || return 1
		[ "$g" != "$systemConfig" ] || default=$g
		for s in "$g"/specialisation/*; do
			[ -e "$s" ] || continue
			ln -sfn "$(readlink -f "$s")" "/boot/entries/$n-specialisation-${s##*/}" || return 1
		done
	done
	# GRUB (and the fake loader) boot the given system by default, a
	# specialisation too; systemd-boot makes only a generation of the
	# profile the default, and keeps its default otherwise.
	[ "$want" = systemd-boot ] || default=$systemConfig
	[ -z "$default" ] || { ln -sfn "$default" /boot/default.tmp && mv -T /boot/default.tmp /boot/default; }
}
if [ "$action" = switch ] || [ "$action" = boot ]; then
	install_bootloader || {
		echo "Failed to install bootloader" >&2
		exit 1
	}
	[ "$action" = boot ] && exit 0
fi

# A new init (systemd) takes effect only at the next boot.
curInit=
[ ! -e /run/current-system/init-interface-version ] || curInit=$(</run/current-system/init-interface-version)
newInit=$(<"$systemConfig/init-interface-version")
if [ "$curInit" != "$newInit" ]; then
	cat >&2 <<'WARN'
Warning: the new NixOS configuration has an ‘init’ that is
incompatible with the current configuration.  The new configuration
won't take effect until you reboot the system.

WARN
	exit 100
fi

# list <file>: its lines (unit names) into the array lst.
lst=()
list() {
	lst=()
	[ ! -s "$1" ] || mapfile -t lst <"$1"
}
# has <word> <words>...: whether word is one of them.
has() {
	local w=$1 x
	shift
	for x; do [ "$x" != "$w" ] || return 0; done
	return 1
}
# join b A: "A, b", as stc-ng lists units (sorted).
join() {
	local IFS=, s
	sort_units "$@"
	set -- "${sorted[@]}"
	s="${*/#/ }"
	echo "${s# }"
}

stop=() start=() new=() restart=()
if sshd_active && ! wants_sshd "$systemConfig"; then stop+=(sshd.service); fi
if ! sshd_active && wants_sshd "$systemConfig"; then new+=(sshd.service); fi
# httpd.service: its unit (the www directory) names the system, so a
# change stops it before the activation and starts it after, as NixOS does
# with a changed unit (stopIfChanged); a new one is started by its target.
oldHttpd=$(httpd_unit) newHttpd=$(httpd_unit "$systemConfig")
if [ -n "$oldHttpd" ] && [ "$oldHttpd" != "$newHttpd" ]; then stop+=(httpd.service); fi
if [ -n "$newHttpd" ] && [ "$oldHttpd" != "$newHttpd" ]; then
	if [ -n "$oldHttpd" ]; then start+=(httpd.service); else new+=(httpd.service); fi
fi
# The static units: this system's are restarted (as changed units are) or
# fail; an active one the system does not have is stopped.
list "$systemConfig/fakehost/restart-units"
restart=("${lst[@]}")
list "$systemConfig/fakehost/fail-units"
failing=("${lst[@]}")
list "$ctl/failing-units"
failing+=("${lst[@]}")
for d in "$ctl"/units/*/static; do
	[ -e "$d" ] || continue
	d=${d%/static}
	u=${d##*/}
	unit_state "$u"
	if [ "$ustate" = active ] && ! has "$u" "${restart[@]}" "${failing[@]}"; then stop+=("$u"); fi
done

if [ "$action" = dry-activate ]; then
	[ ${#stop[@]} = 0 ] || echo "would stop the following units: $(join "${stop[@]}")" >&2
	echo "would activate the configuration..." >&2
	"$systemConfig/dry-activate" "$systemConfig"
	[ ${#restart[@]} = 0 ] || echo "would restart the following units: $(join "${restart[@]}")" >&2
	[ ${#start[@]} = 0 ] || echo "would start the following units: $(join "${start[@]}")" >&2
	exit 0
fi

res=0
if [ ${#stop[@]} -gt 0 ]; then
	echo "stopping the following units: $(join "${stop[@]}")" >&2
	for u in "${stop[@]}"; do
		case $u in
		sshd.service | httpd.service) service stop "${u%.service}" || res=4 ;;
		*) set_static inactive "$u" ;;
		esac
	done
fi
echo "activating the configuration..." >&2
# A network restart (System.RestartNetwork): init takes sshd down now, and
# up again after the given time, while this goes on.
read -r t <"$systemConfig/fakehost/restart-network" || true
[ -z "$t" ] || service restart "network $t" || true
# A slow activation (System.ActivationTime).
read -r t <"$systemConfig/fakehost/activation-time" || true
[ -z "$t" ] || sleep "$t"
# The services that wait for a secret (System.SecretWaiters) and that the
# running system lacks: their start (multi-user.target's) waits for them.
list /run/current-system/fakehost/secret-waiters
oldWaiters=("${lst[@]}")
secretUnits=
[ ! -s /run/current-system/fakehost/secret-units ] && [ ! -s "$systemConfig/fakehost/secret-units" ] || secretUnits=1
"$systemConfig/activate" "$systemConfig" || {
	echo "Failed to run activate script" >&2
	res=2
}
# Forget about previously failed units, as stc-ng does.
failed_units
for u in "${failed[@]}"; do
	if [ -e "$ctl/units/$u/static" ]; then set_static inactive "$u"; else service reset-failed "${u%.service}"; fi
done
if [ ${#restart[@]} -gt 0 ]; then
	echo "restarting the following units: $(join "${restart[@]}")" >&2
	set_static active "${restart[@]}"
fi
# The secrets' units of the new system run, the others stop (init).
[ -z "$secretUnits" ] || service start secrets || res=4
# As NixOS's start of multi-user.target, wait for the new services that
# wait for a secret: until their secret is there (for ever, if it never
# comes: a secret written after the activation never is).
list "$systemConfig/fakehost/secret-waiters"
for l in "${lst[@]}"; do
	has "$l" "${oldWaiters[@]}" && continue
	w=${l%%$'\t'*}
	until [ "$(cat "$ctl/units/$w/state" 2>/dev/null)" = active ]; do sleep 0.1; done
done
[ ${#start[@]} = 0 ] || echo "starting the following units: $(join "${start[@]}")" >&2
for u in "${start[@]}" "${new[@]}"; do
	# A unit that does not start is failed.
	service start "${u%.service}" || set_static failed "$u"
done
# Units that fail in this system, or on this host (a flaky unit).
[ ${#failing[@]} = 0 ] || set_static failed "${failing[@]}"
started=()
for u in "${new[@]}"; do
	unit_state "$u"
	[ "$ustate" != active ] || started+=("$u")
done
[ ${#started[@]} = 0 ] || echo "the following new units were started: $(join "${started[@]}")" >&2
failed_units
if [ ${#failed[@]} -gt 0 ]; then
	echo "warning: the following units failed: $(join "${failed[@]}")" >&2
	"$systemConfig/sw/bin/systemctl" status --no-pager --full "${failed[@]}"
	res=4
fi
exit $res
