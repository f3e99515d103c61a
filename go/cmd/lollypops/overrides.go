package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/output"
	"github.com/lollypops/lollypops/go/internal/shellword"
	"github.com/lollypops/lollypops/go/internal/taskrun"
)

// overrides change how the run reaches its hosts, for this run only,
// without editing Nix: what the original lollypops did with its LP_*
// variables. They apply to the hosts the run touches, after the inventory
// is decoded and before anything is planned, so the steps, the extra
// tasks' variables and --dry all see the same values.
type overrides struct {
	SSHHosts    []string // [HOST=]ADDRESS
	SSHUser     string
	SSHOpts     string // shell words, placed before the host's ssh.opts
	SSHCommand  string
	Sudo        bool
	SudoCommand string
	SudoOpts    string // shell words, replacing the host's sudo.opts
	LocalEval   bool
	// BuildHost is [user@]host[:port], or "" for none.
	BuildHost string
	// InstallBootloader and Specialisation are nixos-rebuild's
	// --install-bootloader and --specialisation, for this run.
	InstallBootloader bool
	Specialisation    string
	fs                *pflag.FlagSet
	// from says where a value came from, for messages: "--ssh-user" or
	// "LP_REMOTE_USER".
	from map[string]string
}

func (o *overrides) AddFlags(fs *pflag.FlagSet) {
	o.fs = fs
	fs.StringArrayVar(&o.SSHHosts, "ssh-host", nil, "For this run, reach the host at this address instead of its lollypops.deployment.ssh.host: ADDRESS when the run touches one host, HOST=ADDRESS for one of several (repeatable).")
	fs.StringVar(&o.SSHUser, "ssh-user", "", "For this run, log in as this user on every host it touches (instead of ssh.user).")
	fs.StringVar(&o.SSHOpts, "ssh-opts", "", "For this run, extra ssh arguments, split like a shell would ('-p 2222 -J jump'), placed before each host's ssh.opts (ssh keeps the first value of an option, so these win).")
	fs.StringVar(&o.SSHCommand, "ssh-command", "", "For this run, the ssh program (instead of ssh.command).")
	fs.BoolVar(&o.Sudo, "sudo", false, "For this run, run the commands on the hosts through sudo (--sudo), or not (--sudo=false), whatever sudo.enable says.")
	fs.StringVar(&o.SudoCommand, "sudo-command", "", "For this run, the sudo program on the hosts (instead of sudo.command).")
	fs.StringVar(&o.SudoOpts, "sudo-opts", "", "For this run, the sudo arguments, split like a shell would, replacing sudo.opts.")
	fs.BoolVar(&o.LocalEval, "local-evaluation", false, "For this run, evaluate and build on this machine (--local-evaluation) or on the hosts (--local-evaluation=false), whatever deployment.local-evaluation says.")
	fs.StringVar(&o.BuildHost, "build-host", "", "For this run, build the systems on this machine, [user@]host[:port] (as nixos-rebuild --build-host): evaluated here, built there, copied from there to each host; the rest of deployment.build-host (opts, host keys) stays. --build-host='' builds as if none were set.")
	fs.BoolVar(&o.InstallBootloader, "install-bootloader", false, "For this run, install the boot loader on switch and boot, not only update it (NIXOS_INSTALL_BOOTLOADER=1, as nixos-rebuild --install-bootloader), whatever deployment.activation.install-bootloader says.")
	fs.StringVar(&o.Specialisation, "specialisation", "", "For this run, activate the specialisation NAME on switch and test (as nixos-rebuild --specialisation), instead of deployment.activation.specialisation.")
}

// activationFlags are the overrides of the build's and the activation's
// options.
var activationFlags = []string{"install-bootloader", "specialisation", "build-host"}

// legacy maps the original lollypops' LP_* variables to the flags.
var legacy = []struct{ name, flag string }{
	{"LP_REMOTE_HOST", "ssh-host"},
	{"LP_REMOTE_USER", "ssh-user"},
	{"LP_REMOTE_SSH_OPTS", "ssh-opts"},
	{"LP_REMOTE_COMMAND", "ssh-command"},
	{"LP_REMOTE_SUDO_COMMAND", "sudo-command"},
	{"LP_REMOTE_SUDO_OPTS", "sudo-opts"},
	{"LP_LOCAL_EVALUATION", "local-evaluation"},
}

// adoptLegacy takes the LP_* variables from the command line (VAR=value)
// and the environment, as the original did, for every flag not given, and
// says which flag replaces each one.
func (o *overrides) adoptLegacy(vars []taskrun.Var, out *output.Sink) error {
	o.from = map[string]string{}
	for _, l := range legacy {
		value, origin, ok := "", "", false
		if v, set := os.LookupEnv(l.name); set && v != "" {
			value, origin, ok = v, "from the environment", true
		}
		for _, v := range vars {
			if v.Name == l.name {
				value, origin, ok = v.Value, "on the command line", true
			}
		}
		if !ok {
			continue
		}
		out.Printf("%s (%s) is the original lollypops' override; use --%s", l.name, origin, l.flag)
		if o.fs.Changed(l.flag) {
			continue
		}
		if err := o.fs.Set(l.flag, value); err != nil {
			return usage(fmt.Sprintf("%s %s: %v", l.name, origin, err), "--help describes --"+l.flag)
		}
		o.from[l.flag] = l.name
	}
	return nil
}

func (o *overrides) name(flag string) string {
	if n := o.from[flag]; n != "" {
		return n
	}
	return "--" + flag
}

func (o *overrides) any() bool {
	for _, l := range legacy {
		if o.fs.Changed(l.flag) {
			return true
		}
	}
	return slices.ContainsFunc(activationFlags, o.fs.Changed)
}

// forHosts checks the run's overrides against the names of the hosts the
// run touches and returns what applies them to one host as it arrives
// (nil: there are none). A host that the overrides make invalid is refused,
// naming the host and the option.
func (o *overrides) forHosts(names []string) (func(name string, h *config.Host) error, error) {
	if o.fs == nil || !o.any() {
		return nil, nil
	}
	names = slices.Clone(names)
	slices.Sort(names)
	addrs := map[string]string{}
	for _, v := range o.SSHHosts {
		host, addr, named := strings.Cut(v, "=")
		if !named {
			if len(names) != 1 {
				return nil, usage(fmt.Sprintf("%s %q: the run touches %d hosts; say which one", o.name("ssh-host"), v, len(names)),
					fmt.Sprintf("write --ssh-host HOST=%s, once per host", v))
			}
			host, addr = names[0], v
		}
		if !slices.Contains(names, host) {
			return nil, usage(fmt.Sprintf("%s %q: %q is not a host this run touches (%s)", o.name("ssh-host"), v, host, strings.Join(names, ", ")),
				"name a host of the run, or add it to the tasks")
		}
		addrs[host] = addr
	}
	sshOpts, err := o.words("ssh-opts", o.SSHOpts)
	if err != nil {
		return nil, err
	}
	sudoOpts, err := o.words("sudo-opts", o.SudoOpts)
	if err != nil {
		return nil, err
	}
	buildHost, err := o.buildHost()
	if err != nil {
		return nil, err
	}
	changed := o.fs.Changed
	return func(n string, h *config.Host) error {
		d := &h.Deployment
		if a, ok := addrs[n]; ok {
			d.SSH.Host = a
		}
		if changed("ssh-user") {
			u := o.SSHUser
			d.SSH.User = &u
		}
		if changed("ssh-opts") {
			d.SSH.Opts = append(slices.Clone(sshOpts), d.SSH.Opts...)
		}
		if changed("ssh-command") {
			d.SSH.Command = o.SSHCommand
		}
		if changed("sudo") {
			d.Sudo.Enable = o.Sudo
		}
		if changed("sudo-command") {
			d.Sudo.Command = o.SudoCommand
		}
		if changed("sudo-opts") {
			d.Sudo.Opts = slices.Clone(sudoOpts)
		}
		if changed("local-evaluation") {
			d.LocalEvaluation = o.LocalEval
		}
		if changed("build-host") && h.Home == nil { // a home-manager target builds here
			d.BuildHost = buildHost.over(d)
		}
		if changed("install-bootloader") {
			d.Activation.InstallBootloader = o.InstallBootloader
		}
		if changed("specialisation") {
			name := o.Specialisation
			d.Activation.Specialisation, d.Activation.KeepSpecialisation = &name, false
		}
		one := &config.Inventory{Version: config.Version, Hosts: map[string]*config.Host{n: h}}
		if err := config.Validate(one); err != nil {
			var ce *config.Error
			if errors.As(err, &ce) {
				return usage(fmt.Sprintf("with the overrides of this run, host %q: %s: %s", ce.Host, ce.Field, ce.Msg), ce.Advice)
			}
			return err
		}
		return nil
	}, nil
}

// apply applies the overrides to every host of inv (the commands that
// only print: --dry shows them).
func (o *overrides) apply(inv *config.Inventory) error {
	names := slices.Collect(maps.Keys(inv.Hosts))
	each, err := o.forHosts(names)
	if err != nil || each == nil {
		return err
	}
	slices.Sort(names)
	for _, n := range names {
		if err := each(n, inv.Hosts[n]); err != nil {
			return err
		}
	}
	return nil
}

// words splits a flag's value as a shell would, refusing what a shell
// would expand.
func (o *overrides) words(flag, value string) ([]string, error) {
	if strings.TrimSpace(value) == "" {
		return nil, nil
	}
	w, ok := shellword.Literal(value)
	if !ok {
		return nil, usage(fmt.Sprintf("%s %q: not plain words (quotes are fine; no $, globs, backslashes or operators)", o.name(flag), value), "lollypops splits it like a shell would, without expanding anything")
	}
	return w, nil
}

// buildHostFlag is --build-host, parsed: nil for an empty value.
type buildHostFlag struct {
	user       *string
	host, port string
}

// buildHost parses --build-host [user@]host[:port] (an IPv6 address with
// a port in brackets: [::1]:2222).
func (o *overrides) buildHost() (*buildHostFlag, error) {
	v := o.BuildHost
	if !o.fs.Changed("build-host") || v == "" {
		return nil, nil
	}
	bad := func(why string) error {
		return usage(fmt.Sprintf("%s %q: %s", o.name("build-host"), v, why), "write [user@]host[:port], e.g. --build-host nix@builder.example.org:2222")
	}
	var b buildHostFlag
	rest := v
	if u, r, ok := strings.Cut(v, "@"); ok {
		if u == "" {
			return nil, bad("the user is empty")
		}
		b.user, rest = &u, r
	}
	switch {
	case strings.HasPrefix(rest, "["):
		host, after, ok := strings.Cut(rest[1:], "]")
		if !ok || (after != "" && !strings.HasPrefix(after, ":")) {
			return nil, bad("not [address] or [address]:port")
		}
		b.host, b.port = host, strings.TrimPrefix(after, ":")
		if after == ":" {
			return nil, bad("the port is empty")
		}
	case strings.Count(rest, ":") == 1:
		b.host, b.port, _ = strings.Cut(rest, ":")
		if b.port == "" {
			return nil, bad("the port is empty")
		}
	default:
		b.host = rest
	}
	if b.host == "" {
		return nil, bad("the host is empty")
	}
	if b.port != "" {
		if p, err := strconv.Atoi(b.port); err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != b.port {
			return nil, bad(fmt.Sprintf("%q is not a port", b.port))
		}
	}
	return &b, nil
}

// over is the host's build host with the flag applied: the flag's host,
// user and port; the option's ssh options and user (unless the flag names
// one), when the option is set; its host key settings when the flag names
// the same host. Otherwise the key policy is the option's, else the
// host's, but a pinned key belongs to another machine: then "strict".
func (b *buildHostFlag) over(d *config.Deployment) *config.BuildHost {
	if b == nil {
		return nil
	}
	nb := &config.BuildHost{Host: b.host, User: b.user, Opts: []string{}, HostKeyPolicy: d.SSH.HostKeyPolicy}
	if old := d.BuildHost; old != nil {
		nb.Opts, nb.HostKeyPolicy = slices.Clone(old.Opts), old.HostKeyPolicy
		if nb.User == nil {
			nb.User = old.User
		}
		if old.Host == b.host {
			nb.HostKey = old.HostKey
		}
	}
	if nb.HostKeyPolicy == config.HostKeyPinned && nb.HostKey == nil {
		nb.HostKeyPolicy = config.HostKeyStrict
	}
	if b.port != "" {
		// ssh keeps the first -p: the flag's port wins over opts.
		nb.Opts = append([]string{"-p", b.port}, nb.Opts...)
	}
	return nb
}
