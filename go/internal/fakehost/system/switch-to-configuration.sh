# shellcheck disable=SC2154 # systemConfig (build.sh) and lib.sh's variables come first
# switch-to-configuration with the semantics of NixOS's, for a fake host:
#   switch        boot loader default = this system, activate it, services
#   boot          boot loader default only; nothing is activated
#   test          activate and services, boot loader untouched
#   dry-activate  print what would change; change nothing
# Exit codes: 1 usage or boot loader, 2 the activation script failed,
# 4 a service failed to start. The services are sshd and httpd, run by the
# host's init (the stand-in for systemd); sshd's unit does not change
# between systems, so it is only stopped or started; httpd's changes with
# every system, so it is stopped before and started after the activation.
record_start switch-to-configuration "$@"
action=${1-}
case $action in
switch | boot | test | dry-activate) ;;
*)
	cat >&2 <<USAGE
Usage: $0 [switch|boot|test|dry-activate]

switch:       make the configuration the boot default and activate now
boot:         make the configuration the boot default
test:         activate the configuration, but don't make it the boot default
dry-activate: show what would be done if this configuration were activated
USAGE
	exit 1
	;;
esac
if [ ! -f /etc/NIXOS ]; then
	echo "This is not a NixOS installation!" >&2
	exit 1
fi
# As NixOS's: one switch at a time.
[ -d /run/nixos ] || mkdir -m 0755 /run/nixos
exec 9>>/run/nixos/switch-to-configuration.lock || {
	echo "Could not open lock" >&2
	exit 1
}
flock 9 || {
	echo "Could not acquire lock" >&2
	exit 1
}

# The fake boot loader: /boot/default is the entry that boots, /boot/entries
# has one per generation of the system profile.
install_bootloader() {
	local l n
	mkdir -p /boot/entries &&
		rm -f /boot/entries/* &&
		for l in /nix/var/nix/profiles/system-*-link; do
			[ -e "$l" ] || continue
			n=${l#/nix/var/nix/profiles/system-}
			ln -sfn "$(readlink -f "$l")" "/boot/entries/nixos-generation-${n%-link}"
		done &&
		ln -sfn "$systemConfig" /boot/default.tmp && mv -T /boot/default.tmp /boot/default
}
if [ "$action" = switch ] || [ "$action" = boot ]; then
	install_bootloader || {
		echo "Failed to install bootloader" >&2
		exit 1
	}
	[ "$action" = boot ] && exit 0
fi

stop=() start=()
if sshd_active && ! wants_sshd "$systemConfig"; then stop+=(sshd.service); fi
if ! sshd_active && wants_sshd "$systemConfig"; then start+=(sshd.service); fi
# httpd.service: its unit (the www directory) names the system, so a
# change stops it before the activation and starts it after, as NixOS does
# with a changed unit (stopIfChanged).
oldHttpd=$(httpd_unit) newHttpd=$(httpd_unit "$systemConfig")
if [ -n "$oldHttpd" ] && [ "$oldHttpd" != "$newHttpd" ]; then stop+=(httpd.service); fi
if [ -n "$newHttpd" ] && [ "$oldHttpd" != "$newHttpd" ]; then start+=(httpd.service); fi
# join a b: "a, b", as NixOS lists units.
join() {
	local IFS=, s
	s="${*/#/ }"
	echo "${s# }"
}

if [ "$action" = dry-activate ]; then
	[ ${#stop[@]} = 0 ] || echo "would stop the following units: $(join "${stop[@]}")" >&2
	echo "would activate the configuration..." >&2
	"$systemConfig/dry-activate"
	[ ${#start[@]} = 0 ] || echo "would start the following units: $(join "${start[@]}")" >&2
	exit 0
fi

res=0
if [ ${#stop[@]} -gt 0 ]; then
	echo "stopping the following units: $(join "${stop[@]}")" >&2
	for u in "${stop[@]}"; do
		service stop "${u%.service}" || res=4
	done
fi
echo "activating the configuration..." >&2
"$systemConfig/activate" || res=2
if [ ${#start[@]} -gt 0 ]; then
	echo "starting the following units: $(join "${start[@]}")" >&2
	failed=()
	for u in "${start[@]}"; do
		service start "${u%.service}" || failed+=("$u")
	done
	if [ ${#failed[@]} -gt 0 ]; then
		echo "warning: the following units failed: $(join "${failed[@]}")" >&2
		res=4
	fi
fi
exit $res
