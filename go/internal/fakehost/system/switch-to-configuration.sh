# switch-to-configuration with the semantics of NixOS's, for a fake host:
#   switch        boot loader default = this system, activate it, services
#   boot          boot loader default only; nothing is activated
#   test          activate and services, boot loader untouched
#   dry-activate  print what would change; change nothing
# Exit codes: 1 usage or boot loader, 2 the activation script failed,
# 4 a service failed to start. The one service is sshd, run by the host's
# init (the stand-in for systemd); its unit does not change between
# systems, so it is only stopped or started, never restarted.
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
mkdir -p -m 0755 /run/nixos && exec 9>>/run/nixos/switch-to-configuration.lock || {
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

stop= start=
if sshd_active && ! wants_sshd "$systemConfig"; then stop=sshd.service; fi
if ! sshd_active && wants_sshd "$systemConfig"; then start=sshd.service; fi

if [ "$action" = dry-activate ]; then
	[ -z "$stop" ] || echo "would stop the following units: $stop" >&2
	echo "would activate the configuration..." >&2
	"$systemConfig/dry-activate"
	[ -z "$start" ] || echo "would start the following units: $start" >&2
	exit 0
fi

res=0
if [ -n "$stop" ]; then
	echo "stopping the following units: $stop" >&2
	service stop sshd || res=4
fi
echo "activating the configuration..." >&2
"$systemConfig/activate" || res=2
if [ -n "$start" ]; then
	echo "starting the following units: $start" >&2
	service start sshd || {
		echo "warning: the following units failed: $start" >&2
		res=4
	}
fi
exit $res
