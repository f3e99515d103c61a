package fakehost

import (
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lollypops/lollypops/go/internal/secrets"
)

// systemFiles is the fake NixOS system (system/system.nix and the scripts
// it installs). WriteFlake copies it into every test flake, and every host
// builds its first generation from a copy in its directory.
//
//go:embed system/*.nix system/*.sh
var systemFiles embed.FS

// System is one fake NixOS configuration: the parameters of system.nix.
// The zero value is a system with sshd that activates fine; it is also
// what every host boots at its first start.
type System struct {
	// Kernel is the kernel's version ("" = system.nix's, 6.6.30): the
	// toplevel's kernel links to bzImage in a store path linux-<Kernel> of
	// its own, whose contents are the version, as on NixOS. Systems with
	// the same Kernel share it: a closure diff, and the reboot after a
	// switch, see whether the kernel changed. Store path name characters
	// only.
	Kernel string
	// Initrd is the contents of the initrd ("" = system.nix's), which
	// links into the store path initrd-linux-<Kernel>: a different Initrd
	// with the same kernel changes the initrd alone.
	Initrd string
	// FailActivation makes the activation script fail:
	// /run/current-system still switches, switch-to-configuration exits 2.
	FailActivation bool
	// StopSSHD is a configuration without sshd: switch and test stop the
	// host's sshd (sessions stay, new connections are refused); a later
	// switch to a system with sshd starts it again.
	StopSSHD bool
	// Packages are names such as "hello-2.12": each is a small store path
	// in the system's closure.
	Packages []string
	// HTTP is the system's web service, httpd.service: busybox httpd on
	// 127.0.0.1:<Host.HTTPPort> (HostSpec.HTTP), whose GET / answers 200
	// (HTTPHealthy) or 500 (HTTPUnhealthy) with "<state> <system's store
	// path>". HTTPNone (the zero value): the system has no web service, and
	// switching to it stops the running one.
	HTTP HTTPState
	// KernelModules is the contents of the kernel's modules ("" =
	// system.nix's): the toplevel's kernel-modules links to a store path
	// linux-<Kernel>-modules of its own, as on NixOS, so that a system can
	// change its modules (extraModulePackages) without changing kernel or
	// initrd.
	KernelModules string

	// ActivationTime is how long switch and test spend in "activating the
	// configuration..." (a slow switch: systemd re-executing, many
	// restarts). Millisecond precision.
	ActivationTime time.Duration
	// RestartNetwork makes the activation (switch, test) restart the
	// host's network: every sshd process of the host dies (the listener and
	// every session: ssh clients and ControlMaster connections drop), new
	// connections are refused for this long, then sshd listens again on the
	// same port with the same keys. The activation goes on: it runs under
	// init (systemd-run), not under sshd. Millisecond precision.
	RestartNetwork time.Duration
	// FailUnits are units ("foo" or "foo.service") that fail in this
	// system: its switch and test end with "warning: the following units
	// failed: ..." and their status, exit 4, and they stay failed (also
	// after booting it) until the next activation resets failed units or
	// `systemctl reset-failed`. They have no process.
	FailUnits []string
	// RestartUnits are units the activation of this system restarts
	// ("restarting the following units: ..."); `systemctl is-active` says
	// active for them. They have no process.
	RestartUnits []string
	// InitInterface is the toplevel's init-interface-version ("" =
	// "systemd 2", which every other system has). switch and test from a
	// running system with another value install the boot loader (switch)
	// and exit 100 with NixOS's warning, activating nothing; after a
	// reboot into it, switching between systems with this value works.
	InitInterface string
	// PreSwitchCheckFails makes the system's pre-switch check fail:
	// switch-to-configuration (any action) prints "Pre-switch checks
	// failed" and exits 1 unless NIXOS_NO_CHECK=1 is in its environment.
	PreSwitchCheckFails bool
	// BootLoader is the system's boot loader: "" (the fake one each host
	// has installed at its first boot) or BootLoaderSystemdBoot. switch and
	// boot to a system whose loader is not the installed one fail
	// ("Failed to install bootloader", exit 1, /boot unchanged) unless
	// NIXOS_INSTALL_BOOTLOADER=1 (nixos-rebuild --install-bootloader),
	// which installs it.
	BootLoader string
	// SecretWaiters are services that wait for their secret, as on a NixOS
	// host with lollypops' secret units: the system has the unit of each
	// secret (lollypops-secret-<name>.service, secrets.UnitName), active
	// while the file exists, and each Service (when set) is ordered after
	// it (after and wants), so that init starts it only once the unit is
	// active. See "Secrets' units" in docs/fakehosts.md.
	SecretWaiters []SecretWaiter
	// Specialisations are names: each is <toplevel>/specialisation/<name>,
	// a toplevel of its own with the same settings and
	// fakehost/specialisation holding the name, activated on its own
	// (nixos-rebuild switch|test -c <name>). Letters, digits, '_' and '-'.
	Specialisations []string
}

// SecretWaiter is a secret's unit and the service that waits for it
// (System.SecretWaiters).
type SecretWaiter struct {
	// Secret is the secret's name (lollypops.secrets.files.<name>): its
	// unit is secrets.UnitName(Secret).
	Secret string
	// Path is the secret's file on the host.
	Path string
	// Service ("app" or "app.service"), when set, waits for the secret:
	// init starts it once the secret's unit is active, and it records what
	// it saw then (whether the file existed, its size; never its
	// contents). A service waits for one secret.
	Service string
}

// BootLoaderSystemdBoot is System.BootLoader for systemd-boot.
const BootLoaderSystemdBoot = "systemd-boot"

// HTTPState is what a system's web service answers (System.HTTP).
type HTTPState string

// The states of a system's web service.
const (
	HTTPNone      HTTPState = ""
	HTTPHealthy   HTTPState = "healthy"
	HTTPUnhealthy HTTPState = "unhealthy"
)

var (
	pkgRE  = regexp.MustCompile(`^[A-Za-z0-9+_?=-][A-Za-z0-9+._?=-]*$`)
	unitRE = regexp.MustCompile(`^[A-Za-z0-9:_.@-]+$`)
	specRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*$`)
)

// otherUnitTypes are systemd's unit types but service.
var otherUnitTypes = []string{"socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope"}

// unitNames mangles names as systemd does for services: ".service" added
// when missing. Only service names are allowed.
func unitNames(what string, names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if i := strings.LastIndexByte(n, '.'); i >= 0 && slices.Contains(otherUnitTypes, n[i+1:]) {
			return nil, fmt.Errorf("%s: %q: only services (fake units have no other type)", what, n)
		}
		if !strings.HasSuffix(n, ".service") {
			n += ".service"
		}
		if !unitRE.MatchString(n) || len(n) > 255 || n == "sshd.service" || n == "httpd.service" {
			return nil, fmt.Errorf("%s: %q is not a service name (or it is sshd's or httpd's)", what, n)
		}
		out = append(out, n)
	}
	return out, nil
}

// seconds formats d for system.nix: seconds with millisecond precision.
func seconds(what string, d time.Duration) (string, error) {
	if d < 0 {
		return "", fmt.Errorf("%s: negative duration %s", what, d)
	}
	return strconv.FormatFloat(d.Round(time.Millisecond).Seconds(), 'f', 3, 64), nil
}

// nixList appends " name = [ "a" "b" ];" to b.
func nixList(b *strings.Builder, name string, items []string) {
	fmt.Fprintf(b, " %s = [", name)
	for _, i := range items {
		b.WriteString(" " + nixString(i))
	}
	b.WriteString(" ];")
}

// nixSystem is the Nix system type of this machine, which hosts share.
func nixSystem() string {
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i686"}[runtime.GOARCH]
	if arch == "" {
		arch = runtime.GOARCH
	}
	return arch + "-linux"
}

// nixString quotes s as a Nix string literal.
func nixString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `${`, `\${`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// args is the attribute set system.nix is called with.
func (s System) args(hostName string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "{ hostName = %s; system = %s;", nixString(hostName), nixString(nixSystem()))
	if s.Kernel != "" {
		if !pkgRE.MatchString(s.Kernel) {
			return "", fmt.Errorf("kernel %q: want a version such as 6.6.31 (store path name characters)", s.Kernel)
		}
		fmt.Fprintf(&b, " kernel = %s;", nixString(s.Kernel))
	}
	if s.Initrd != "" {
		fmt.Fprintf(&b, " initrd = %s;", nixString(s.Initrd))
	}
	if s.FailActivation {
		b.WriteString(" failActivation = true;")
	}
	if s.StopSSHD {
		b.WriteString(" stopSshd = true;")
	}
	switch s.HTTP {
	case HTTPNone:
	case HTTPHealthy, HTTPUnhealthy:
		fmt.Fprintf(&b, " httpd = %s;", nixString(string(s.HTTP)))
	default:
		return "", fmt.Errorf("HTTP %q: want \"\", %q or %q", s.HTTP, HTTPHealthy, HTTPUnhealthy)
	}
	if len(s.Packages) > 0 {
		for _, p := range s.Packages {
			if !pkgRE.MatchString(p) {
				return "", fmt.Errorf("package name %q: want a store path name such as hello-2.12", p)
			}
		}
		nixList(&b, "packages", s.Packages)
	}
	if s.KernelModules != "" {
		fmt.Fprintf(&b, " kernelModules = %s;", nixString(s.KernelModules))
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"activationTime", s.ActivationTime}, {"restartNetwork", s.RestartNetwork}} {
		if d.d == 0 {
			continue
		}
		v, err := seconds(d.name, d.d)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, " %s = %s;", d.name, nixString(v))
	}
	for _, l := range []struct {
		name  string
		units []string
	}{{"failUnits", s.FailUnits}, {"restartUnits", s.RestartUnits}} {
		if len(l.units) == 0 {
			continue
		}
		units, err := unitNames(l.name, l.units)
		if err != nil {
			return "", err
		}
		nixList(&b, l.name, units)
	}
	if s.InitInterface != "" {
		if strings.ContainsAny(s.InitInterface, "\n\x00") {
			return "", fmt.Errorf("init interface %q: want one line", s.InitInterface)
		}
		fmt.Fprintf(&b, " initInterface = %s;", nixString(s.InitInterface))
	}
	if s.PreSwitchCheckFails {
		b.WriteString(" preSwitchCheckFails = true;")
	}
	switch s.BootLoader {
	case "":
	case BootLoaderSystemdBoot:
		fmt.Fprintf(&b, " bootLoader = %s;", nixString(s.BootLoader))
	default:
		return "", fmt.Errorf("boot loader %q: want \"\" or %q", s.BootLoader, BootLoaderSystemdBoot)
	}
	if len(s.SecretWaiters) > 0 {
		units, waiters, err := secretWaiters(s.SecretWaiters)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, " secretUnits = %s; secretWaiters = %s;", nixString(units), nixString(waiters))
	}
	if len(s.Specialisations) > 0 {
		seen := map[string]bool{}
		for _, n := range s.Specialisations {
			if !specRE.MatchString(n) || seen[n] {
				return "", fmt.Errorf("specialisation %q: want a unique name of letters, digits, '_' and '-'", n)
			}
			seen[n] = true
		}
		nixList(&b, "specialisations", s.Specialisations)
	}
	b.WriteString(" }")
	return b.String(), nil
}

// secretWaiters are the lines of system.nix's secretUnits ("<unit>\t<path>")
// and secretWaiters ("<service>\t<unit>").
func secretWaiters(ws []SecretWaiter) (units, waiters string, err error) {
	var u, w strings.Builder
	seenUnit, seenService := map[string]bool{}, map[string]bool{}
	for _, sw := range ws {
		unit, ok := secrets.UnitName(sw.Secret)
		if !ok {
			return "", "", fmt.Errorf("secret %q: its name cannot name a unit", sw.Secret)
		}
		if !strings.HasPrefix(sw.Path, "/") || strings.ContainsAny(sw.Path, "\t\n\x00") {
			return "", "", fmt.Errorf("secret %q: path %q: want an absolute path without tabs or newlines", sw.Secret, sw.Path)
		}
		if !seenUnit[unit] {
			seenUnit[unit] = true
			fmt.Fprintf(&u, "%s\t%s\n", unit, sw.Path)
		}
		if sw.Service == "" {
			continue
		}
		names, err := unitNames("SecretWaiters", []string{sw.Service})
		if err != nil {
			return "", "", err
		}
		if seenService[names[0]] {
			return "", "", fmt.Errorf("SecretWaiters: %s waits for more than one secret", names[0])
		}
		seenService[names[0]] = true
		fmt.Fprintf(&w, "%s\t%s\n", names[0], unit)
	}
	return u.String(), w.String(), nil
}

// writeSystemFiles copies system.nix and its scripts into dir, and the
// secrets' wait script (secrets.WaitScript) as secret-wait.sh.
func writeSystemFiles(dir string) error {
	ents, err := systemFiles.ReadDir("system")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, e := range ents {
		b, err := systemFiles.ReadFile("system/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "secret-wait.sh"), []byte(secrets.WaitScript), 0o644)
}

// WriteFlake writes a test flake into dir (created if needed): flake.nix
// with nixosConfigurations.<name>.config.system.build.toplevel for each
// entry of systems (name = host name), system.nix and its scripts, and a
// flake.lock from `nix flake lock --offline`. Add dir to the store (for
// example with nix-store --add, naming the directory "source") to deploy
// it. Every host a flake is deployed to needs an entry.
func WriteFlake(dir string, systems map[string]System) error {
	return WriteFlakeWithOutputs(dir, systems, nil, "")
}

// WriteFlakeWithConfig is WriteFlake with more of each configuration:
// configs maps a host name to a Nix expression of an attribute set that
// is merged (//) into its `config` — lollypops' options, for example. A
// host of configs without a system gets the expression alone as its
// `config`, which may throw, to stand for a host that does not evaluate.
func WriteFlakeWithConfig(dir string, systems map[string]System, configs map[string]string) error {
	return WriteFlakeWithOutputs(dir, systems, configs, "")
}

// WriteFlakeWithOutputs is WriteFlakeWithConfig with more outputs: Nix
// text of attributes ("homeConfigurations = …;") added to the flake's
// outputs, which can use `self`.
func WriteFlakeWithOutputs(dir string, systems map[string]System, configs map[string]string, outputs string) error {
	if err := writeFlake(dir, systems, configs, outputs); err != nil {
		return fmt.Errorf("fakehost: flake %s: %w", dir, err)
	}
	return nil
}

func writeFlake(dir string, systems map[string]System, configs map[string]string, outputs string) error {
	names := make([]string, 0, len(systems))
	for n := range systems {
		if !hostRE.MatchString(n) {
			return fmt.Errorf("invalid host name %q (want %s)", n, hostRE)
		}
		names = append(names, n)
	}
	slices.Sort(names)
	var only []string
	for n := range configs {
		if _, ok := systems[n]; !ok {
			only = append(only, n)
		}
	}
	slices.Sort(only)
	var b strings.Builder
	b.WriteString("# A test flake written by fakehost.WriteFlake: fake NixOS systems, no nixpkgs.\n{\n")
	b.WriteString("  outputs = { self }: let\n    system = import ./system.nix;\n  in {\n    nixosConfigurations = {\n")
	for _, n := range names {
		args, err := systems[n].args(n)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if extra, ok := configs[n]; ok {
			fmt.Fprintf(&b, "      %s.config = { system.build.toplevel = system %s; } // (%s);\n", nixString(n), args, extra)
			continue
		}
		fmt.Fprintf(&b, "      %s.config.system.build.toplevel = system %s;\n", nixString(n), args)
	}
	for _, n := range only {
		fmt.Fprintf(&b, "      %s.config = %s;\n", nixString(n), configs[n])
	}
	b.WriteString("    };\n")
	if outputs != "" {
		b.WriteString("    " + outputs + "\n")
	}
	b.WriteString("  };\n}\n")
	if err := writeSystemFiles(dir); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	lock := exec.Command("nix", "--extra-experimental-features", "nix-command flakes", "--offline", "flake", "lock")
	lock.Dir = dir
	if out, err := lock.CombinedOutput(); err != nil {
		return fmt.Errorf("nix flake lock: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// TestNixConf is a nix.conf for the deployer's side of tests, demos and
// benchmarks, which must not depend on the machine's: no build users, no
// sandbox, no substituters (offline), flakes on. Write it into a directory
// and point NIX_CONF_DIR there.
const TestNixConf = "build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command flakes\n"

// StoreAdd adds dir to this machine's Nix store (nix-store --add) and
// returns its store path, read from stdout only: Nix may warn on stderr,
// which goes into the error.
func StoreAdd(dir string) (string, error) {
	var stderr strings.Builder
	cmd := exec.Command("nix-store", "--add", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("nix-store --add %s: %v: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
