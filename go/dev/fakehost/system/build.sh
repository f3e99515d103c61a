# shellcheck shell=sh
# shellcheck disable=SC2154 # the derivation's attributes are its environment
# Builder of system.nix: POSIX sh, because the deployer's /bin/sh may be
# dash, while a fake host's is bash.
set -e
mkdir -p "$out/bin" "$out/sw/bin" "$out/fakehost" "$out/specialisation"
ln -s "$kernel/bzImage" "$out/kernel"
ln -s "$initrd/initrd" "$out/initrd"
ln -s "$modules" "$out/kernel-modules"
printf '%s\n' "$version" >"$out/nixos-version"
printf '%s\n' "$system" >"$out/system"
printf '%s' "$initInterface" >"$out/init-interface-version"
# specialisation/<name>: a toplevel of its own.
for s in $specialisations; do
	ln -s "${s#*=}" "$out/specialisation/${s%%=*}"
done
# Knobs, read by the scripts at run time.
printf '%s\n' "$hostName" >"$out/fakehost/host-name"
printf '%s' "$sshd" >"$out/fakehost/sshd"
printf '%s' "$failActivation" >"$out/fakehost/fail-activation"
printf '%s' "$preSwitchCheckFails" >"$out/fakehost/pre-switch-check-fails"
printf '%s' "$activationTime" >"$out/fakehost/activation-time"
printf '%s' "$restartNetwork" >"$out/fakehost/restart-network"
printf '%s' "$bootLoader" >"$out/fakehost/boot-loader"
[ -z "$specialisation" ] || printf '%s\n' "$specialisation" >"$out/fakehost/specialisation"
# Units without a process (names only), one a line.
: >"$out/fakehost/fail-units"
for u in $failUnits; do printf '%s\n' "$u" >>"$out/fakehost/fail-units"; done
: >"$out/fakehost/restart-units"
for u in $restartUnits; do printf '%s\n' "$u" >>"$out/fakehost/restart-units"; done
# The secrets' units and the services that wait for them, with the wait
# script they run (init reads them).
printf '%s' "$secretUnits" >"$out/fakehost/secret-units"
printf '%s' "$secretWaiters" >"$out/fakehost/secret-waiters"
[ -z "$waitScript" ] || cp "$waitScript" "$out/fakehost/secret-wait.sh"
# The web service (httpd.service): its unit is the www directory, which
# names the system, so that a switch between two systems restarts it.
if [ -n "$httpd" ]; then
	mkdir -p "$out/fakehost/www/cgi-bin"
	: >"$out/fakehost/www/httpd.conf"
	if [ "$httpd" = healthy ]; then status='200 OK'; else status='500 Internal Server Error'; fi
	# busybox httpd runs cgi-bin/index.cgi for "/" (there is no index.html).
	{
		echo '#!/bin/sh'
		echo "echo 'Status: $status'"
		echo "echo 'Content-Type: text/plain'"
		echo "echo"
		echo "echo '$httpd $out'"
	} >"$out/fakehost/www/cgi-bin/index.cgi"
	chmod 0555 "$out/fakehost/www/cgi-bin/index.cgi"
	printf '%s\n' "$out/fakehost/www" >"$out/fakehost/httpd"
else
	: >"$out/fakehost/httpd"
fi
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
script "$out/sw/bin/systemd-run" "$systemdRun"
script "$out/sw/bin/journalctl" "$journalctl"
{
	echo '#!/bin/bash'
	echo "echo \"would activate $out (the fake activation runs the host's activation hook" \
		"and switches /run/current-system)\""
} >"$out/dry-activate"
# One chmod: every process costs here.
chmod 0555 "$out/bin/switch-to-configuration" "$out/activate" "$out/sw/bin/nixos-rebuild" \
	"$out/sw/bin/systemctl" "$out/sw/bin/systemd-run" "$out/sw/bin/journalctl" "$out/dry-activate"
ln -s systemctl "$out/sw/bin/reboot"
ln -s /bin/bash "$out/sw/bin/bash"
ln -s /bin/bash "$out/sw/bin/sh"
