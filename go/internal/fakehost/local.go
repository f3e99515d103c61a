package fakehost

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"mvdan.cc/sh/v3/syntax"
)

// localFake is the deployer-side fake nixos-rebuild (local evaluation:
// `nixos-rebuild <action> --flake <src>#<attr> --target-host <[user@]host>
// [--use-remote-sudo]`). It records the call, then, like the real one, it
// reaches the target for activating actions:
// ssh $NIX_SSHOPTS <target> [sudo] .../switch-to-configuration <action>,
// which the target's fake records (Host.Activations). It exits with ssh's
// exit code when that fails. Without --target-host nothing is activated.
const localFake = `{
	echo "start $start"
	echo "argc $#"
	for a in "$@"; do echo "arg $(hex "$a")"; done
	echo "sshopts $(hex "${NIX_SSHOPTS-}")"
	echo "ssh $(hex "$(command -v ssh)")"
	action= target= sudo=0 skip=0 want=
	for a in "$@"; do
		if [ "$skip" -gt 0 ]; then
			[ "$want" = target ] && target=$a
			want= skip=$((skip - 1))
			continue
		fi
		case $a in
		--target-host) skip=1 want=target ;;
		--target-host=*) target=${a#--target-host=} ;;
		--use-remote-sudo) sudo=1 ;;
		--option) skip=2 ;;
		--build-host | --flake | -I | --include | --profile-name | -p | --specialisation | -c | \
			--max-jobs | -j | --cores | --builders) skip=1 ;;
		-*) ;;
		*) [ -n "$action" ] || action=$a ;;
		esac
	done
	echo "action $(hex "$action")"
	echo "target $(hex "$target")"
	echo "sudo $sudo"
} >"$rec.tmp" && mv "$rec.tmp" "$rec.run"
echo "fake local nixos-rebuild: $*"
e=0
case $action in
switch | boot | test | dry-activate)
	if [ -n "$target" ]; then
		set -f
		stc=/run/current-system/sw/bin/switch-to-configuration
		if [ "$sudo" = 1 ]; then
			ssh ${NIX_SSHOPTS-} "$target" sudo "$stc" "$action" || e=$?
		else
			ssh ${NIX_SSHOPTS-} "$target" "$stc" "$action" || e=$?
		fi
		set +f
	fi
	;;
esac
` + recordEnd + `exit "$e"
`

// WriteLocalRebuild writes a fake nixos-rebuild into binDir (created if
// needed) for the deployer's PATH. Each call is recorded in logDir; read
// them with ReadLocalRebuildCalls. The ssh it runs is whatever `ssh` is
// first on its PATH, with $NIX_SSHOPTS split on blanks (no globbing), as
// the real nixos-rebuild does.
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
	qdir, err := syntax.Quote(logDir, syntax.LangPOSIX)
	if err != nil {
		return fmt.Errorf("fakehost: log dir: %w", err)
	}
	script := "#!/bin/sh\n# Fake nixos-rebuild for the deployer, written by fakehost.\ncalls=" + qdir + "\n" +
		recordLib + localFake
	p := filepath.Join(binDir, "nixos-rebuild")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		return fmt.Errorf("fakehost: %w", err)
	}
	if err := os.Chmod(p, 0o755); err != nil {
		return fmt.Errorf("fakehost: %w", err)
	}
	return nil
}

// LocalRebuildCall is one recorded call of the deployer-side fake.
type LocalRebuildCall struct {
	Args       []string // byte-exact argv[1:]
	NixSSHOpts string   // $NIX_SSHOPTS as seen by the fake ("" if unset)
	SSH        string   // `command -v ssh`: the ssh it used
	Action     string   // first non-option argument
	TargetHost string   // value of --target-host
	RemoteSudo bool     // --use-remote-sudo was given
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
			TargetHost: r.str("target"), RemoteSudo: r.fields["sudo"] == "1",
			Start: r.start, End: r.end, Exit: r.exit,
		}
		if r.bad != nil {
			return nil, fmt.Errorf("fakehost: %s: %w", logDir, r.bad)
		}
		out = append(out, c)
	}
	return out, nil
}
