// Package activation switches a NixOS host to a new system so that the host
// returns to its previous system by itself when the switch breaks it — even
// when the switch cut the deployer's SSH connection, the deployer died, or
// the host rebooted meanwhile.
//
// The protocol, all of it driven by the deployer over the host's shared
// connection, every remote command as root (through sudo when configured):
//
//  1. Prepare (prepare.sh): create the activation's state directory,
//     /run/lollypops/activation/<id>, in /run/lollypops (root's, mode 0700:
//     no other user can create, replace or read anything in it; an existing
//     /run/lollypops that is not a root-owned directory writable by root
//     alone is refused). It records the run's id and the status "starting".
//  2. Pin the new system (a GC root in the state directory): build it on the
//     host (build.sh) or register the closure the deployer copied (pin.sh).
//  3. Start the guard (guard.sh) detached from the SSH session, as a
//     transient systemd service (systemd-run), and return at once. Guarded
//     (switch, test with rollback): it runs switch-to-configuration test,
//     then waits for the deployer's confirmation within a window counted on
//     the host's monotonic clock from the end of the activation; a switch
//     only then becomes the profile's generation and the boot default. It
//     rolls back by itself without confirmation. Unguarded (boot,
//     dry-activate, rollback disabled): it activates as nixos-rebuild does.
//  4. The deployer watches the status (watch.sh: one command that waits on
//     the host, not a poll per quarter second), reconnects when the
//     connection drops, waits for "activated", proves the host reachable
//     over a connection opened after the activation, runs the health
//     checks, and confirms (signal.sh) — or aborts and lets it roll back.
//     A guard that stopped without a final state is finished by a recovery
//     unit (guard.sh recover).
//  5. Once final, the guard removes its GC roots; the deployer removes the
//     state directory once it has read it.
//
// The guard runs as a service of the host's init, not of sshd: a lost
// connection, a stopped sshd, or a killed deployer cannot stop it halfway.
package activation

import (
	"embed"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lollypops/lollypops/go/internal/flakelink"
)

// The host-side scripts. Each is POSIX sh, run by the host's /bin/sh, and
// linted (make lint) and tested under bash, dash, busybox sh and mksh.
//
//go:embed guard.sh watch.sh prepare.sh build.sh pin.sh signal.sh reboot.sh then.sh
var scripts embed.FS

// Script returns the text of one of the package's host-side scripts; the
// one that builds from the deployed flake (build.sh) with flakelink's
// fragment in front of it.
func Script(name string) string {
	b, err := scripts.ReadFile(name)
	if err != nil {
		panic("activation: no script " + name)
	}
	if name == "build.sh" {
		return flakelink.WithResolve(string(b))
	}
	return string(b)
}

// Root is the directory of lollypops' state on the host.
const Root = "/run/lollypops"

// SystemProfile is the system profile; ProfilePath names another.
const SystemProfile = "/nix/var/nix/profiles/system"

// ProfilePath is the profile a system is installed into: the system
// profile, or /nix/var/nix/profiles/system-profiles/<name> (nixos-rebuild's
// --profile-name), which the boot loader lists too.
func ProfilePath(name string) string {
	if name == "" {
		return SystemProfile
	}
	return "/nix/var/nix/profiles/system-profiles/" + name
}

// Keep is the Specialisation that keeps the one the host runs, when the
// new system has it.
const Keep = ":keep"

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

// Unit is the systemd unit the guard runs as; RecoverUnit the one that
// finishes an activation whose guard stopped.
func Unit(id string) string        { return "lollypops-activation-" + id }
func RecoverUnit(id string) string { return "lollypops-recover-" + id }

// sh runs one of the scripts with arguments: argv[0] is the script's name,
// which the deployer shows instead of its text (see Shown).
func sh(name string, args ...string) []string {
	return append([]string{"sh", "-c", Script(name + ".sh"), "lollypops-" + name}, args...)
}

// PrepareArgv creates the activation's state directory for the run (its
// id, as the deploy lock records it).
func PrepareArgv(id, run string) []string {
	return sh("prepare", Root, Dir(id), run)
}

// BuildArgv builds the system on the host from the flake flakeLink points
// to (in its directory dir, "" for its root); its last output line is
// "lollypops-system <store path>" (see ParseSystem).
func BuildArgv(flakeLink, host, id, dir string) []string {
	return sh("build", flakeLink, host, Dir(id), dir)
}

// PinArgv makes a system copied to the host a GC root of the activation.
func PinArgv(id, system string) []string {
	return sh("pin", Dir(id), system)
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

// Params is what the guard is asked to do.
type Params struct {
	System string // the new toplevel
	Action string // switch, test, boot, dry-activate
	// Window is how long the guard waits for the confirmation after the
	// activation; 0 activates without the guard's protection.
	Window  time.Duration
	Profile string // ProfilePath
	// Specialisation is "", a name, or Keep.
	Specialisation string
	// InstallBootloader sets NIXOS_INSTALL_BOOTLOADER=1 (nixos-rebuild's
	// --install-bootloader); NoCheck sets NIXOS_NO_CHECK=1, which skips
	// the new system's pre-switch checks.
	InstallBootloader, NoCheck bool
}

// unitArgv starts a script as a transient service, detached from the
// session: systemd-run returns once it runs. PATH and LOCALE_ARCHIVE are
// the session's (nixos-rebuild passes LOCALE_ARCHIVE too); NixOS's units
// get no /run/current-system/sw/bin otherwise.
func unitArgv(unit, description string, env []string, argv []string) []string {
	out := []string{"systemd-run", "--unit=" + unit, "--description=" + description,
		"--collect", "--quiet", "--no-ask-password", "--service-type=exec",
		"--setenv=PATH", "--setenv=LOCALE_ARCHIVE"}
	for _, e := range env {
		out = append(out, "--setenv="+e)
	}
	return append(append(out, "--", "/bin/sh"), argv[1:]...)
}

// StartArgv starts the guard of activation id.
func StartArgv(id string, p Params) []string {
	var env []string
	if p.InstallBootloader {
		env = append(env, "NIXOS_INSTALL_BOOTLOADER=1")
	}
	if p.NoCheck {
		env = append(env, "NIXOS_NO_CHECK=1")
	}
	window := 0
	if p.Window > 0 {
		window = max(1, int(p.Window.Round(time.Second).Seconds()))
	}
	return unitArgv(Unit(id), "lollypops activation "+id, env,
		sh("guard", "run", Dir(id), p.System, p.Action, strconv.Itoa(window), p.Profile, p.Specialisation))
}

// RecoverArgv starts the unit that finishes activation id after its guard
// stopped without a final state: a confirmed activation is completed, any
// other rolled back.
func RecoverArgv(id string) []string {
	return unitArgv(RecoverUnit(id), "lollypops recovery of activation "+id, nil, sh("guard", "recover", Dir(id)))
}

// WatchArgv waits on the host until the activation's status is no longer
// last nor in one of the states through, its units are gone, or max
// passed, and prints what ParseWatch reads, with the log from byte offset
// on.
func WatchArgv(id, last string, offset int64, max time.Duration, through ...State) []string {
	words := make([]string, len(through))
	for i, s := range through {
		words[i] = string(s)
	}
	return sh("watch", Dir(id), Unit(id)+" "+RecoverUnit(id), last,
		strconv.FormatInt(offset, 10), strconv.Itoa(int(max.Seconds())), strings.Join(words, " "))
}

// Then runs two commands in one session on the host, in one shell
// (then.sh): second only once first succeeded, and a line "lollypops-then
// ok" (ThenRan) between their outputs. The session is named after both
// (lollypops-signal+watch, lollypops-systemd-run+watch).
func Then(first, second []string) []string { return frame(first, second, "0", "ok") }

// frame puts first and second in then.sh: second runs once first exited
// want, after the line "lollypops-then mark".
func frame(first, second []string, want, mark string) []string {
	s1, n1, a1 := asScript(first)
	s2, n2, a2 := asScript(second)
	head, rest, _ := strings.Cut(Script("then.sh"), "\t#FIRST\n")
	mid, tail, _ := strings.Cut(rest, "#SECOND\n")
	text := head + s1 + "\n" + mid + s2 + "\n" + tail
	name := n1 + "+" + strings.TrimPrefix(n2, "lollypops-")
	return append(append([]string{"sh", "-c", text, name, strconv.Itoa(len(a1)), want, mark}, a1...), a2...)
}

// ConfirmedExit is the exit code of a watch given it (WatchConfirmedArgv)
// that printed the status "confirmed".
const ConfirmedExit = 10

// WatchConfirmedArgv is WatchArgv whose watch exits ConfirmedExit when the
// status it prints is "confirmed": the first command of an After.
func WatchConfirmedArgv(id, last string, offset int64, max time.Duration, through ...State) []string {
	return append(WatchArgv(id, last, offset, max, through...), strconv.Itoa(ConfirmedExit))
}

// After runs first, a Then whose watch is a WatchConfirmedArgv, and second
// in the same session once that watch printed "confirmed" (then.sh): the
// line "lollypops-then MARK" between their outputs (AfterSplit). mark is
// a nonce: no line of the activation's log can be taken for it.
func After(first []string, mark string, second []string) []string {
	return frame(first, second, strconv.Itoa(ConfirmedExit), mark)
}

// AfterSplit splits the output of an After with mark: what its first
// command printed, what its second printed, and whether the second ran.
func AfterSplit(out []byte, mark string) (first, second []byte, ran bool) {
	m := "\nlollypops-then " + mark + "\n"
	i := strings.LastIndex(string(out), m)
	if i < 0 {
		return out, nil, false
	}
	return out[:i], out[i+len(m):], true
}

// asScript returns a command as a script, its name and its words: one of
// the package's scripts (sh -c SCRIPT NAME ARG..., see sh) as it is, any
// other command as `exec "$@"` with the command's words, named after its
// program.
func asScript(argv []string) (script, name string, args []string) {
	if len(argv) >= 4 && argv[0] == "sh" && argv[1] == "-c" && strings.HasPrefix(argv[3], "lollypops-") {
		return argv[2], argv[3], argv[4:]
	}
	return `exec "$@"`, "lollypops-" + path.Base(argv[0]), argv
}

// thenMark is the line then.sh prints between its two commands.
const thenMark = "lollypops-then ok"

// ThenRan reports whether the output of a Then says its first command
// succeeded: also when the session was cut during the second one.
func ThenRan(out []byte) bool {
	_, ran := ThenFirst(out)
	return ran
}

// ThenFirst returns what a Then's first command printed, and whether it
// succeeded (the mark came).
func ThenFirst(out []byte) (first []byte, ran bool) {
	rest := out
	for len(rest) > 0 {
		line, next, _ := strings.Cut(string(rest), "\n")
		if strings.TrimRight(line, "\r") == thenMark {
			first = out[:len(out)-len(rest)]
			return []byte(strings.TrimSuffix(string(first), "\n")), true
		}
		rest = []byte(next)
	}
	return out, false
}

// ReachedArgv tells the guard the deployer reached the host over a new
// connection: its window starts again, once.
func ReachedArgv(id string) []string {
	return sh("signal", Dir(id), "reached")
}

// ConfirmArgv tells the guard the new system is good.
func ConfirmArgv(id string) []string {
	return sh("signal", Dir(id), "confirm")
}

// AbortArgv tells the guard to roll back, with the reason.
func AbortArgv(id, reason string) []string {
	return sh("signal", Dir(id), "abort", oneLine(reason))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// CleanupArgv removes an activation's state directory (and with it any GC
// root left in it).
func CleanupArgv(id string) []string {
	return []string{"rm", "-rf", "--", Dir(id)}
}

// RebootMarker is the file that tells the boot before a reboot from the
// one after it: /run does not survive a reboot.
func RebootMarker(id string) string { return Root + "/reboot-" + id }

// BootChangesArgv prints what of system differs from what the host booted
// (kernel, initrd, kernel-modules), or "unknown".
func BootChangesArgv(system string) []string { return sh("reboot", "changes", system) }

// RebootArgv leaves the marker of activation id and reboots the host.
func RebootArgv(id string) []string { return sh("reboot", "start", RebootMarker(id)) }

// RebootedArgv prints "old-boot" or "new-boot", then the running system.
func RebootedArgv(id string) []string { return sh("reboot", "check", RebootMarker(id)) }

// MissingArgv prints each of paths that does not exist on the host.
func MissingArgv(paths []string) []string {
	return sh("reboot", append([]string{"missing"}, paths...)...)
}
