// Package activation switches a NixOS host to a new system so that the host
// returns to its previous system by itself when the switch breaks it — even
// when the switch cut the deployer's SSH connection.
//
// The protocol, all of it driven by the deployer over the host's shared
// connection, every remote command as root (through sudo when configured):
//
//  1. Prepare: create the activation's state directory,
//     /run/lollypops/activation/<id>, in /run/lollypops (root's, mode 0700:
//     no other user can create, replace or read anything in it; an existing
//     /run/lollypops that is not a root-owned directory writable by root
//     alone is refused).
//  2. Pin the new system (a GC root in the state directory): build it on the
//     host (Build) or register the closure the deployer copied (Pin).
//  3. Guard: start the guard script (Script) detached from the SSH session,
//     as a transient systemd service (systemd-run): it records the running
//     system and the profile's generation, sets the system profile (switch),
//     runs switch-to-configuration, and writes its state to <dir>/status.
//     If the activation fails, it rolls back at once. Otherwise it waits for
//     <dir>/confirm; <dir>/abort (a failed health check) or the confirm
//     timeout make it roll back: the profile returns to its previous
//     generation and the previous systems are activated again (boot loader
//     and running system), as `nixos-rebuild switch --rollback` would.
//  4. The deployer polls the status, then proves the host is still
//     reachable over a new connection (the old one may have survived a
//     broken sshd), runs the health checks, and confirms (or aborts).
//
// The guard runs as a service of the host's init, not of sshd: a lost
// connection, a stopped sshd, or a killed deployer cannot stop it halfway.
package activation

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Root is the directory of lollypops' state on the host.
const Root = "/run/lollypops"

// Profile is the system profile.
const Profile = "/nix/var/nix/profiles/system"

// idRe matches an activation id: the unit name and directory name.
var idRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// CheckID reports whether id can name an activation.
func CheckID(id string) error {
	if !idRe.MatchString(id) {
		return fmt.Errorf("activation id %q: lowercase letters, digits and '-'", id)
	}
	return nil
}

// Dir is the state directory of an activation.
func Dir(id string) string { return Root + "/activation/" + id }

// Unit is the systemd unit the guard runs as.
func Unit(id string) string { return "lollypops-activation-" + id }

// prepareScript makes the state directory. mkdir without -p: each
// component is created here, or checked when it exists.
const prepareScript = `set -u
umask 077
check() {
	[ -d "$1" ] && [ ! -L "$1" ] || { echo "lollypops: $1 exists and is not a directory" >&2; exit 1; }
	m=$(stat -c '%u %a' "$1") || exit 1
	case $m in
	"0 "*[2367]? | "0 "*[2367]) echo "lollypops: $1 is writable by other users than root (mode ${m#0 }); refusing to use it" >&2; exit 1 ;;
	"0 "*) ;;
	*) echo "lollypops: $1 is not owned by root (uid ${m% *}); refusing to use it" >&2; exit 1 ;;
	esac
}
for d in "$1" "$1/activation"; do
	mkdir -m 0700 "$d" 2>/dev/null || check "$d"
done
mkdir -m 0700 "$2" || exit 1`

// PrepareArgv creates the activation's state directory.
func PrepareArgv(id string) []string {
	return []string{"sh", "-c", prepareScript, "lollypops-prepare", Root, Dir(id)}
}

// buildScript builds the host's system from the flake that <config-dir>/flake
// points to, with a GC root in the state directory, and prints its path.
const buildScript = `set -u
f=$(readlink -e -- "$1") || { echo "lollypops: $1 does not exist on this host; run the task $2:deploy-flake first" >&2; exit 1; }
case $f in
/nix/store/?*) ;;
*) echo "lollypops: $1 points to $f, which is not in the Nix store" >&2; exit 1 ;;
esac
echo "building the system configuration..." >&2
ref="path:$f"
if [ -n "$4" ]; then ref="$ref?dir=$4"; fi
nix --extra-experimental-features 'nix-command flakes' build --out-link "$3/new" "$ref#nixosConfigurations.\"$2\".config.system.build.toplevel" || exit 1
p=$(readlink -e -- "$3/new") || exit 1
echo "lollypops-system $p"`

// BuildArgv builds the system on the host from the flake flakeLink points
// to (in its directory dir, "" for its root); its last output line is
// "lollypops-system <store path>" (see ParseSystem).
func BuildArgv(flakeLink, host, id, dir string) []string {
	return []string{"sh", "-c", buildScript, "lollypops-build", flakeLink, host, Dir(id), dir}
}

// pinScript registers a copied system as a GC root of the activation.
const pinScript = `set -u
nix-store --realise --add-root "$1/new" --indirect -- "$2" >/dev/null || exit 1
echo "lollypops-system $(readlink -e -- "$1/new")"`

// PinArgv makes a system copied to the host a GC root of the activation.
func PinArgv(id, system string) []string {
	return []string{"sh", "-c", pinScript, "lollypops-pin", Dir(id), system}
}

// ParseSystem returns the store path a build or pin printed.
func ParseSystem(out string) (string, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	p, ok := strings.CutPrefix(last, "lollypops-system ")
	if !ok || !strings.HasPrefix(p, "/nix/store/") {
		return "", fmt.Errorf("unexpected output from the host: %q", last)
	}
	return p, nil
}

// GuardArgv starts the guard detached from the session, as a transient
// systemd service, and returns at once. PATH is handed to the unit: the
// guard needs nix-env and the session's tools.
func GuardArgv(id, system, action string, confirm time.Duration) []string {
	return []string{"systemd-run", "--unit=" + Unit(id), "--description=lollypops activation " + id,
		"--collect", "--quiet", "--service-type=exec", "--setenv=PATH", "--",
		"/bin/sh", "-c", Script, "lollypops-activation",
		Dir(id), system, action, strconv.Itoa(int(confirm.Round(time.Second).Seconds())), Profile, "/run/current-system"}
}

// StatusArgv prints the activation's status.
func StatusArgv(id string) []string {
	return []string{"cat", "--", Dir(id) + "/status"}
}

// ConfirmArgv tells the guard the new system is good.
func ConfirmArgv(id string) []string {
	return []string{"sh", "-c", `[ -d "$1" ] && : >"$1/confirm"`, "lollypops-confirm", Dir(id)}
}

// AbortArgv tells the guard to roll back, with the reason.
func AbortArgv(id, reason string) []string {
	return []string{"sh", "-c", `[ -d "$1" ] && printf '%s\n' "$2" >"$1/abort.tmp" && mv -f "$1/abort.tmp" "$1/abort"`,
		"lollypops-abort", Dir(id), oneLine(reason)}
}

// LogArgv prints what the activation printed.
func LogArgv(id string) []string {
	return []string{"cat", "--", Dir(id) + "/log"}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// CleanupArgv removes an activation's state directory (and with it the
// GC root of its system).
func CleanupArgv(id string) []string {
	return []string{"rm", "-rf", "--", Dir(id)}
}
