package fakehost

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"mvdan.cc/sh/v3/syntax"
)

// localRebuild is the deployer-side nixos-rebuild (local evaluation):
//
//	nixos-rebuild <action> --flake <src>#<attr> --target-host <[user@]host> [--use-remote-sudo]
//
// It does what NixOS 24.05's does with --target-host, with the deployer's
// Nix: build the toplevel here, nix-copy-closure it to the target (ssh is
// whatever `ssh` comes first on PATH, with $NIX_SSHOPTS and the real one's
// ControlMaster options), then over ssh [sudo] nix-env --set the profile
// (switch, boot) and [sudo] <toplevel>/bin/switch-to-configuration <action>
// through systemd-run (the real one's flags; run as is when systemd-run
// fails). Like the real one, it ends by sending `-O exit` to the control
// sockets it expected in its temporary directory. It records each call.
const localRebuild = `
calls=$LOG_DIR
set -e
set -o pipefail
record_start nixos-rebuild "$@"
record_field sshopts "${NIX_SSHOPTS-}"
record_field ssh "$(command -v ssh || true)"
log() { echo "$@" >&2; }
flakeFlags=(--extra-experimental-features 'nix-command flakes')
action='' flake='' flakeAttr='' targetHost='' useSudo='' rollback='' extraBuildFlags=()
installBootloader='' specialisation='' profile=/nix/var/nix/profiles/system
while [ $# -gt 0 ]; do
	i=$1
	shift
	case $i in
	switch | boot | test | build | dry-activate) action=$i ;;
	--flake)
		flake=$1
		shift
		;;
	--target-host)
		targetHost=$1
		shift
		;;
	--use-remote-sudo) useSudo=1 ;;
	--rollback) rollback=1 ;;
	--install-bootloader) installBootloader=1 ;;
	--specialisation | -c)
		specialisation=${1-}
		shift
		;;
	--option)
		extraBuildFlags+=("$i" "$1" "$2")
		shift 2
		;;
	--show-trace | -L | --print-build-logs | -v* | --verbose | --fast | --use-substitutes | -s) ;;
	*)
		log "$0: unknown option \` + "`" + `$i' (deployer-side fake: see fakehost.WriteLocalRebuild)"
		exit 1
		;;
	esac
done
record_field action "$action"
record_field target "$targetHost"
record_field sudo "${useSudo:-0}"
if [ -z "$action" ] || [ -z "$flake" ] || [ -n "$rollback" ]; then
	log "deployer-side fake nixos-rebuild: needs an action and --flake (and no --rollback)"
	exit 1
fi
if [ -n "$specialisation" ] && [ "$action" != switch ] && [ "$action" != test ]; then
	log "error: ‘--specialisation’ can only be used with ‘switch’ and ‘test’"
	exit 1
fi

tmpDir=$(mktemp -t -d nixos-rebuild.XXXXXX)
SSHOPTS="${NIX_SSHOPTS-} -o ControlMaster=auto -o ControlPath=$tmpDir/ssh-%n -o ControlPersist=60"
cleanup() {
	for ctrl in "$tmpDir"/ssh-*; do
		ssh -o ControlPath="$ctrl" -O exit dummyhost 2>/dev/null || true
	done
	rm -rf "$tmpDir"
}
on_exit() {
	local s=$?
	cleanup
	record_end "$s"
}
trap on_exit EXIT

targetHostCmd() {
	local c=()
	[ -z "$useSudo" ] || c=(sudo)
	if [ -z "$targetHost" ]; then
		"${c[@]}" "$@"
	else
		# shellcheck disable=SC2086,SC2029 # SSHOPTS is split on blanks, the command runs there, as the real one does
		ssh $SSHOPTS "$targetHost" "${c[@]}" "$@"
	fi
}

if [[ $flake =~ ^(.*)\#([^\#\"]*)$ ]]; then
	flake=${BASH_REMATCH[1]}
	flakeAttr=${BASH_REMATCH[2]}
fi
if [ -z "$flakeAttr" ]; then
	read -r hostname </proc/sys/kernel/hostname
	flakeAttr=${hostname:-default}
fi
flakeAttr="nixosConfigurations.\"$flakeAttr\""
meta=$(nix "${flakeFlags[@]}" flake metadata --json "${extraBuildFlags[@]}" -- "$flake")
[[ $meta =~ \"url\":\"([^\"]*)\"\}$ ]] || {
	log "no url in nix flake metadata: $meta"
	exit 1
}
flake=${BASH_REMATCH[1]}

log "building the system configuration..."
if [ "$action" = build ]; then
	nix "${flakeFlags[@]}" build "$flake#$flakeAttr.config.system.build.toplevel" "${extraBuildFlags[@]}"
	pathToConfig=$(readlink -f ./result)
else
	nix "${flakeFlags[@]}" build "$flake#$flakeAttr.config.system.build.toplevel" "${extraBuildFlags[@]}" \
		--out-link "$tmpDir/result"
	pathToConfig=$(readlink -f "$tmpDir/result")
fi
record_field toplevel "$pathToConfig"
if [ -n "$targetHost" ] && [ "$action" != build ]; then
	NIX_SSHOPTS=$SSHOPTS nix-copy-closure --to "$targetHost" "$pathToConfig"
fi
case $action in
switch | boot)
	targetHostCmd nix-env -p "$profile" --set "$pathToConfig"
	;;
esac
case $action in
switch | boot | test | dry-activate)
	# As the real one: through systemd-run, detached from the ssh session.
	cmd=(systemd-run -E LOCALE_ARCHIVE -E "NIXOS_INSTALL_BOOTLOADER=$installBootloader" --collect
		--no-ask-password --pipe --quiet --same-dir --service-type=exec
		--unit=nixos-rebuild-switch-to-configuration --wait)
	if ! targetHostCmd "${cmd[@]}" true; then
		cmd=(env -i "LOCALE_ARCHIVE=${LOCALE_ARCHIVE-}" "NIXOS_INSTALL_BOOTLOADER=$installBootloader")
	fi
	if [ -z "$specialisation" ]; then
		cmd+=("$pathToConfig/bin/switch-to-configuration")
	else
		cmd+=("$pathToConfig/specialisation/$specialisation/bin/switch-to-configuration")
		if ! targetHostCmd test -f "${cmd[-1]}"; then
			log "error: specialisation not found: $specialisation"
			exit 1
		fi
	fi
	if ! targetHostCmd "${cmd[@]}" "$action"; then
		log "warning: error(s) occurred while switching to the new configuration"
		exit 1
	fi
	;;
esac
`

// WriteLocalRebuild writes a nixos-rebuild for the deployer's PATH into
// binDir (created if needed), standing in for nixpkgs' with --target-host:
// it builds the flake's toplevel with the deployer's Nix, copies its closure
// to the target over ssh (the `ssh` first on its PATH, with $NIX_SSHOPTS
// split on blanks), then sets the target's system profile (switch, boot)
// and runs the new system's switch-to-configuration there, with sudo for
// --use-remote-sudo. Each call is recorded in logDir; read them with
// ReadLocalRebuildCalls. The flake must be one of WriteFlake's.
func WriteLocalRebuild(binDir, logDir string) error {
	logDir, err := filepath.Abs(logDir)
	if err != nil {
		return fmt.Errorf("fakehost: %w", err)
	}
	for _, d := range []string{binDir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("fakehost: %w", err)
		}
	}
	qdir, err := syntax.Quote(logDir, syntax.LangBash)
	if err != nil {
		return fmt.Errorf("fakehost: log dir: %w", err)
	}
	lib, err := systemFiles.ReadFile("system/lib.sh")
	if err != nil {
		return fmt.Errorf("fakehost: %w", err)
	}
	script := "#!/bin/bash\n# nixos-rebuild for the deployer, written by fakehost.WriteLocalRebuild.\n" +
		"LOG_DIR=" + qdir + "\n" + string(lib) + localRebuild
	p := filepath.Join(binDir, "nixos-rebuild")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		return fmt.Errorf("fakehost: %w", err)
	}
	if err := os.Chmod(p, 0o755); err != nil {
		return fmt.Errorf("fakehost: %w", err)
	}
	return nil
}

// LocalRebuildCall is one recorded call of WriteLocalRebuild's nixos-rebuild.
type LocalRebuildCall struct {
	Args       []string // byte-exact argv[1:]
	NixSSHOpts string   // $NIX_SSHOPTS as seen by the fake ("" if unset)
	SSH        string   // `command -v ssh`: the ssh it used
	Action     string   // first non-option argument
	TargetHost string   // value of --target-host
	RemoteSudo bool     // --use-remote-sudo was given
	Toplevel   string   // the system it built ("" if it failed before)
	Start      time.Time
	End        time.Time // zero if killed
	Exit       int       // -1 if not finished
}

// ReadLocalRebuildCalls returns the calls recorded in logDir, oldest first.
func ReadLocalRebuildCalls(logDir string) ([]LocalRebuildCall, error) {
	recs, err := readRecords(logDir)
	if err != nil {
		return nil, fmt.Errorf("fakehost: %w", err)
	}
	var out []LocalRebuildCall
	for _, r := range recs {
		c := LocalRebuildCall{
			Args: r.args, NixSSHOpts: r.str("sshopts"), SSH: r.str("ssh"), Action: r.str("action"),
			TargetHost: r.str("target"), RemoteSudo: r.str("sudo") == "1", Toplevel: r.str("toplevel"),
			Start: r.start, End: r.end, Exit: r.exit,
		}
		if r.bad != nil {
			return nil, fmt.Errorf("fakehost: %s: %w", logDir, r.bad)
		}
		out = append(out, c)
	}
	return out, nil
}
