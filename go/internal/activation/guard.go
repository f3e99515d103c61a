package activation

import (
	"fmt"
	"strings"
)

// Script is the guard: it runs as a transient service on the host, as
// root, detached from any SSH session. Arguments: the state directory, the
// new system, the action (switch or test), the confirm timeout in seconds,
// the system profile, the running system's link (/run/current-system).
//
// It writes <dir>/status, replaced atomically, one line each time its state
// changes:
//
//	activating
//	activated                   waiting for the deployer's confirmation
//	confirmed                   done: the new system stays
//	rolling-back <reason>
//	rolled-back <reason>        the previous systems are active again
//	rollback-failed <reason>    the host needs a person
//
// and everything the activations print to <dir>/log.
const Script = `set -u
dir=$1 new=$2 action=$3 timeout=$4 profile=$5 current=$6
umask 077
say() { printf '%s\n' "$*" >"$dir/status.tmp" && mv -f "$dir/status.tmp" "$dir/status"; }
exec >>"$dir/log" 2>&1 </dev/null
say activating
# What to return to: the running system, and the profile's generation
# (the boot loader's default).
prevRun=$(readlink -e "$current") || prevRun=
prevGen=$(readlink "$profile") || prevGen=
prevBoot=$(readlink -e "$profile") || prevBoot=

rollback() {
	say "rolling-back $1"
	ok=1
	if [ "$action" = switch ] && [ -n "$prevGen" ]; then
		g=${prevGen%-link}
		g=${g##*-}
		nix-env -p "$profile" --switch-generation "$g" || ok=
		if [ -n "$prevBoot" ] && [ "$prevBoot" != "$prevRun" ]; then
			"$prevBoot/bin/switch-to-configuration" boot || ok=
		elif [ -n "$prevBoot" ]; then
			"$prevBoot/bin/switch-to-configuration" switch || ok=
			prevRun=
		fi
	fi
	if [ -n "$prevRun" ]; then
		"$prevRun/bin/switch-to-configuration" test || ok=
	fi
	if [ -n "$ok" ]; then
		say "rolled-back $1"
	else
		say "rollback-failed $1"
	fi
	exit 1
}

if [ "$action" = switch ]; then
	nix-env -p "$profile" --set "$new" || rollback "setting the system profile failed"
fi
echo "lollypops: activating $new ($action)"
"$new/bin/switch-to-configuration" "$action"
rc=$?
if [ "$rc" -ne 0 ]; then
	rollback "switch-to-configuration $action failed (exit $rc)"
fi
say activated
end=$(($(date +%s) + timeout))
while :; do
	if [ -e "$dir/confirm" ]; then
		say confirmed
		exit 0
	fi
	if [ -e "$dir/abort" ]; then
		rollback "$(head -n 1 "$dir/abort")"
	fi
	if [ "$(date +%s)" -ge "$end" ]; then
		rollback "no confirmation from the deployer within ${timeout}s"
	fi
	sleep 0.2
done`

// State is the guard's state (its status file).
type State string

// The guard's states.
const (
	Activating     State = "activating"
	Activated      State = "activated"
	Confirmed      State = "confirmed"
	RollingBack    State = "rolling-back"
	RolledBack     State = "rolled-back"
	RollbackFailed State = "rollback-failed"
)

// Status is one reading of the status file.
type Status struct {
	State  State
	Reason string // of a rollback
}

// Final reports whether the guard is done.
func (s Status) Final() bool {
	return s.State == Confirmed || s.State == RolledBack || s.State == RollbackFailed
}

// ParseStatus reads the status file's content.
func ParseStatus(out string) (Status, error) {
	line := strings.TrimRight(out, "\n")
	state, reason, _ := strings.Cut(line, " ")
	switch State(state) {
	case Activating, Activated, Confirmed, RollingBack, RolledBack, RollbackFailed:
		return Status{State: State(state), Reason: reason}, nil
	}
	return Status{}, fmt.Errorf("unexpected activation status %q", line)
}
