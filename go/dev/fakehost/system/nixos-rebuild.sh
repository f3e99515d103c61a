# shellcheck shell=bash
# shellcheck disable=SC2154 # systemConfig (build.sh) and lib.sh's variables come first
# nixos-rebuild stand-in for a fake host: what NixOS 24.05's nixos-rebuild
# does when run on the host itself, with the host's own Nix, plus a call
# record (Host.RebuildCalls) and two test knobs in /run/fakehost:
#   rebuild-sleep  seconds to sleep first, as a slow build would
#   rebuild-exit   a non-zero code makes it fail right after that sleep,
#                  as a failed build would: nothing built, nothing changed
# As the real one, it runs switch-to-configuration through systemd-run
# (--unit=nixos-rebuild-switch-to-configuration --wait --pipe ...), so that
# a dropped ssh session does not end it, and directly when systemd-run does
# not work. Not here: --target-host/--build-host (nixos-rebuild runs on the
# host), the re-exec of the flake's own nixos-rebuild, channels and
# <nixpkgs/nixos>.
set -e
set -o pipefail
record_start nixos-rebuild "$@"

log() { echo "$@" >&2; }
showSyntax() {
	log "usage: nixos-rebuild [switch|boot|test|build|dry-build|dry-activate] --flake <ref>#<name> [--rollback] [-p name] [-c name] [--install-bootloader] [options]"
	exit 1
}
flakeFlags=(--extra-experimental-features 'nix-command flakes')
action='' flake='' flakeAttr='' rollback='' profile=/nix/var/nix/profiles/system
extraBuildFlags=() lockFlags=() maybeSudo=() installBootloader='' specialisation=''
while [ $# -gt 0 ]; do
	i=$1
	shift
	case $i in
	--help) showSyntax ;;
	switch | boot | test | build | dry-build | dry-run | dry-activate) action=$i ;;
	edit | repl | build-vm | build-vm-with-bootloader | list-generations)
		log "nixos-rebuild (fake host): $i is not supported"
		exit 1
		;;
	--flake)
		flake=$1
		shift
		;;
	--no-flake) flake= ;;
	--rollback) rollback=1 ;;
	--profile-name | -p)
		if [ -z "${1-}" ]; then
			log "$0: ‘--profile-name’ requires an argument"
			exit 1
		fi
		if [ "$1" != system ]; then
			profile=/nix/var/nix/profiles/system-profiles/$1
			# shellcheck disable=SC2174 # as the real one: the parent exists
			mkdir -p -m 0755 "$(dirname "$profile")"
		fi
		shift
		;;
	--option)
		extraBuildFlags+=("$i" "$1" "$2")
		shift 2
		;;
	--show-trace | --keep-failed | -K | --keep-going | -k | --quiet | -L | --print-build-logs | --impure | \
		--offline | --no-build-output | -Q | --refresh | --verbose | -v*)
		extraBuildFlags+=("$i")
		;;
	--max-jobs | -j | --cores | --builders | -I | --include)
		extraBuildFlags+=("$i" "$1")
		shift
		;;
	--recreate-lock-file | --no-update-lock-file | --no-write-lock-file | --no-registries | --commit-lock-file)
		lockFlags+=("$i")
		;;
	--update-input)
		lockFlags+=("$i" "$1")
		shift
		;;
	--override-input)
		lockFlags+=("$i" "$1" "$2")
		shift 2
		;;
	--use-remote-sudo) maybeSudo=(sudo) ;;
	--install-bootloader) installBootloader=1 ;;
	--specialisation | -c)
		if [ -z "${1-}" ]; then
			log "$0: ‘--specialisation’ requires an argument"
			exit 1
		fi
		specialisation=$1
		shift
		;;
	--fast | --no-build-nix | --upgrade | --upgrade-all | --use-substitutes | -s) ;;
	--target-host | --build-host)
		log "nixos-rebuild (fake host): $i is for the deployer's nixos-rebuild, not the host's"
		exit 1
		;;
	*)
		log "$0: unknown option \`$i'"
		exit 1
		;;
	esac
done
[ "$action" != dry-run ] || action=dry-build
[ -n "$action" ] || showSyntax

s=$(cat "$ctl/rebuild-sleep" 2>/dev/null) || s=
case $s in '' | 0 | 0.000) ;; *) sleep "$s" ;; esac
e=$(cat "$ctl/rebuild-exit" 2>/dev/null) || e=
if [ -n "$e" ] && [ "$e" != 0 ]; then
	log "nixos-rebuild (fake host): failing with exit code $e (Host.SetRebuildExit)"
	exit "$e"
fi

if [ -z "$flake" ] && [ -e /etc/nixos/flake.nix ]; then
	flake=$(dirname "$(readlink -f /etc/nixos/flake.nix)")
fi
if [ -z "$flake" ] && [ -z "$rollback" ]; then
	log "nixos-rebuild (fake host): only --flake is supported; there is no <nixpkgs/nixos> here"
	exit 1
fi
if [ -n "$specialisation" ] && [ "$action" != switch ] && [ "$action" != test ]; then
	log "error: ‘--specialisation’ can only be used with ‘switch’ and ‘test’"
	exit 1
fi

tmpDir=$(mktemp -t -d nixos-rebuild.XXXXXX)
trap 'e=$?; rm -rf "$tmpDir"; record_end $e' EXIT

if [ -n "$flake" ]; then
	record_field flake "$flake"
	if [[ $flake =~ ^(.*)\#([^\#\"]*)$ ]]; then
		flake=${BASH_REMATCH[1]}
		flakeAttr=${BASH_REMATCH[2]}
	fi
	if [ -z "$flakeAttr" ]; then
		read -r hostname </proc/sys/kernel/hostname
		flakeAttr="nixosConfigurations.\"${hostname:-default}\""
	else
		flakeAttr="nixosConfigurations.\"$flakeAttr\""
	fi
	# Resolve the flake as the real one does: its locked URL. Nix rejects
	# what it rejects on NixOS (before Nix 2.19, a symlink to the flake).
	# The real one reads the JSON with jq, which is not a dependency here.
	meta=$(nix "${flakeFlags[@]}" flake metadata --json "${extraBuildFlags[@]}" "${lockFlags[@]}" -- "$flake")
	[[ $meta =~ \"url\":\"([^\"]*)\"\}$ ]] || {
		log "nixos-rebuild (fake host): no url in nix flake metadata: $meta"
		exit 1
	}
	flake=${BASH_REMATCH[1]}
	if [[ $meta =~ \"originalUrl\":\"[^\"]*\",\"path\":\"([^\"]*)\" ]]; then
		record_field target "${BASH_REMATCH[1]}"
		if nix-store --check-validity "${BASH_REMATCH[1]}" 2>/dev/null; then record_field valid 1; fi
	fi
fi

nixFlakeBuild() {
	if [ "$action" = build ] || [ "$action" = dry-build ]; then
		nix "${flakeFlags[@]}" build "$@"
		[ "$action" = dry-build ] || readlink -f ./result
	else
		nix "${flakeFlags[@]}" build "$@" --out-link "$tmpDir/result"
		readlink -f "$tmpDir/result"
	fi
}
toplevel="$flake#$flakeAttr.config.system.build.toplevel"

if [ -z "$rollback" ]; then
	log "building the system configuration..."
	case $action in
	switch | boot)
		pathToConfig=$(nixFlakeBuild "$toplevel" "${extraBuildFlags[@]}" "${lockFlags[@]}")
		"${maybeSudo[@]}" nix-env -p "$profile" --set "$pathToConfig"
		;;
	dry-build)
		nixFlakeBuild "$toplevel" "${extraBuildFlags[@]}" "${lockFlags[@]}" --dry-run
		;;
	*)
		pathToConfig=$(nixFlakeBuild "$toplevel" "${extraBuildFlags[@]}" "${lockFlags[@]}")
		;;
	esac
else
	case $action in
	switch | boot)
		"${maybeSudo[@]}" nix-env --rollback -p "$profile"
		pathToConfig=$profile
		;;
	test | build)
		systemNumber=$(nix-env -p "$profile" --list-generations |
			sed -n '/current/ {g; p;}; s/ *\([0-9]*\).*/\1/; h')
		pathToConfig=$profile-$systemNumber-link
		ln -sT "$pathToConfig" ./result || true
		;;
	*) showSyntax ;;
	esac
fi

case $action in
switch | boot | test | dry-activate)
	# As the real one: a transient unit of the host's systemd (init),
	# detached from this session, with the real one's flags; where
	# systemd-run does not work, a clean environment instead.
	cmd=(systemd-run -E LOCALE_ARCHIVE -E "NIXOS_INSTALL_BOOTLOADER=$installBootloader" --collect
		--no-ask-password --pipe --quiet --same-dir --service-type=exec
		--unit=nixos-rebuild-switch-to-configuration --wait)
	if [ -n "${NIXOS_SWITCH_USE_DIRTY_ENV-}" ]; then
		log "warning: skipping systemd-run since NIXOS_SWITCH_USE_DIRTY_ENV is set. This environment variable will be ignored in the future"
		cmd=(env "NIXOS_INSTALL_BOOTLOADER=$installBootloader")
	elif ! "${maybeSudo[@]}" "${cmd[@]}" true; then
		cmd=(env -i "LOCALE_ARCHIVE=${LOCALE_ARCHIVE-}" "NIXOS_INSTALL_BOOTLOADER=$installBootloader")
	fi
	# -c: the specialisation's switch-to-configuration; the profile has the
	# system itself.
	if [ -z "$specialisation" ]; then
		cmd+=("$pathToConfig/bin/switch-to-configuration")
	else
		cmd+=("$pathToConfig/specialisation/$specialisation/bin/switch-to-configuration")
		if [ ! -f "${cmd[-1]}" ]; then
			log "error: specialisation not found: $specialisation"
			exit 1
		fi
	fi
	if ! "${maybeSudo[@]}" "${cmd[@]}" "$action"; then
		log "warning: error(s) occurred while switching to the new configuration"
		exit 1
	fi
	;;
esac
