package lock

import "time"

// RootDir is the lock's directory on a host when the run acts as root there
// (ssh user root, or sudo enabled). /run is a tmpfs: a reboot frees it.
const RootDir = "/run/lollypops"

// UserDirName is the lock's directory, in the home of the ssh user, when the
// run acts as a user other than root (no sudo).
const UserDirName = ".lollypops-lock"

// Heartbeat is how often the run sends a byte to each of its holders; TTL
// is how long a holder waits for one before it gives the lock up (the
// bound for a run whose connection hangs without closing).
const (
	Heartbeat = 15 * time.Second
	TTL       = 90 * time.Second
)

// holderScript runs on the host, as the user the host's steps act as
// (through sudo when enabled). Arguments: root lock dir, TTL in seconds,
// then the holder's record: run id, user, deployer host, pid.
//
// It answers with one line, marked so that the output of the login's
// start-up files (~/.ssh/rc, a shell's rc file) cannot be mistaken for it:
// "<mark> ok" (the lock is this session's until its stdin ends or stays
// silent for TTL), "<mark> ours" (a session of the same run holds it), or
// "<mark> held" followed by the lock's directory and the holder's record
// (run, user, host, pid, since, one a line). Anything else is an error, explained on stderr.
//
// The guard lock makes taking the lock and writing the record one step for
// the others: a contender reads the record under the guard, so it never
// sees a half-written or a dead run's record. The children of the waiting
// loop close both lock descriptors, so only this shell holds the lock.
const holderScript = `set -u
umask 077
root=$1 ttl=$2
shift 2
me=$(id -u) || exit 3
if [ "$me" = 0 ]; then
	d=$root
else
	[ -n "${HOME:-}" ] || { echo "lollypops: \$HOME is not set for uid $me" >&2; exit 3; }
	d=$HOME/` + UserDirName + `
fi
base=${d%/*}
[ -n "$base" ] || base=/
# safe DIR OWNER [OWNER]: DIR is a directory, not a symlink, owned by one
# of OWNER, and no one else may write in it.
safe() {
	[ -d "$1" ] && [ ! -L "$1" ] || { why="$1 is not a directory"; return 1; }
	s=$(stat -c '%u %A' -- "$1") || { why="cannot stat $1"; return 1; }
	case $s in
	"$2 d"????-??-?* | "${3:-$2} d"????-??-?*) return 0 ;;
	esac
	why="$1 has owner uid ${s%% *} and mode ${s#* }; it must be owned by uid $2${3:+ or $3} and writable by no one else"
	return 1
}
safe "$base" "$me" 0 || { echo "lollypops: lock directory: $why" >&2; exit 3; }
mkdir -m 0700 -- "$d" 2>/dev/null
safe "$d" "$me" || { echo "lollypops: lock directory: $why; only lollypops uses $d: remove it" >&2; exit 3; }
exec 8>>"$d/guard" 9>>"$d/lock" || exit 3
flock -w 60 8 || { echo "lollypops: $d/guard: busy for 60 s" >&2; exit 3; }
if flock -n 9; then
	{ printf '%s\n' "$@" && date -u '+%Y-%m-%d %H:%M:%S UTC'; } >"$d/holder.new" &&
		mv -f -- "$d/holder.new" "$d/holder" || exit 3
	flock -u 8
	echo "lollypops-lock: ok"
	while b=$(exec 8>&- 9>&-; timeout "$ttl" head -c 1) && [ "$b" = . ]; do :; done
	flock -w 60 8
	rm -f -- "$d/holder"
	exit 0
fi
if [ -f "$d/holder" ] && [ "$(head -n 1 -- "$d/holder")" = "$1" ]; then
	echo "lollypops-lock: ours"
	exit 0
fi
echo "lollypops-lock: held"
echo "$d"
cat -- "$d/holder" 2>/dev/null
exit 0
`
