# shellcheck shell=bash
# shellcheck disable=SC2154 # systemConfig (build.sh) and lib.sh's variables come first
# The activation script. NixOS's runs its snippets (users, /etc, ...); one
# that fails makes it exit 1 at the end, but /run/current-system points to
# the new system all the same. Here the one snippet is the host's
# activation hook (Host.SetActivationHook), as root, like NixOS creating
# users and groups.
_status=0
if [ -f "$ctl/activate-hook" ]; then
	/bin/sh "$ctl/activate-hook" || {
		echo "Activation script snippet 'fakehost-hook' failed ($?)" >&2
		_status=1
	}
fi
if [ -s "$systemConfig/fakehost/fail-activation" ]; then
	echo "Activation script snippet 'fakehost-fail' failed (1)" >&2
	_status=1
fi
[ -d /run/nixos ] || mkdir -m 0755 /run/nixos
ln -sfn "$systemConfig" /run/current-system.tmp && mv -T /run/current-system.tmp /run/current-system
exit $_status
