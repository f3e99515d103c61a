# Builder of system.nix: POSIX sh, because the deployer's /bin/sh may be
# dash, while a fake host's is bash.
set -e
mkdir -p "$out/bin" "$out/sw/bin" "$out/fakehost"
printf '%s\n' "$kernel" >"$out/kernel"
printf '%s\n' "$initrd" >"$out/initrd"
printf '%s\n' "$version" >"$out/nixos-version"
printf '%s\n' "$system" >"$out/system"
# Knobs, read by the scripts at run time.
printf '%s\n' "$hostName" >"$out/fakehost/host-name"
printf '%s' "$sshd" >"$out/fakehost/sshd"
printf '%s' "$failActivation" >"$out/fakehost/fail-activation"
# References keep the packages in the system's closure.
: >"$out/fakehost/packages"
for p in $packages; do
	printf '%s\n' "$p" >>"$out/fakehost/packages"
done

# script <dest> <body>: a bash script that knows its system and shares lib.sh.
script() {
	{
		echo '#!/bin/bash'
		echo "systemConfig=$out"
		cat "$lib" "$2"
	} >"$1"
}
script "$out/bin/switch-to-configuration" "$switchToConfiguration"
script "$out/activate" "$activateScript"
script "$out/sw/bin/nixos-rebuild" "$nixosRebuild"
script "$out/sw/bin/systemctl" "$systemctl"
{
	echo '#!/bin/bash'
	echo "echo \"would activate $out (the fake activation runs the host's activation hook" \
		"and switches /run/current-system)\""
} >"$out/dry-activate"
# One chmod: every process costs here.
chmod 0555 "$out/bin/switch-to-configuration" "$out/activate" "$out/sw/bin/nixos-rebuild" \
	"$out/sw/bin/systemctl" "$out/dry-activate"
ln -s /bin/bash "$out/sw/bin/bash"
ln -s /bin/bash "$out/sw/bin/sh"
