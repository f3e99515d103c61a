package config

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nix-community/go-nix/pkg/storepath"
)

var (
	// hostNameRe matches nixosConfigurations names that can name tasks:
	// no ":" (the task separator), no glob or template characters.
	hostNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	// homeNameRe matches homeConfigurations names: as host names, and "@"
	// inside ("alice@host1", home-manager's usual spelling); a leading "@"
	// would read as a tag on the command line.
	homeNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@-]*$`)
	// taskNameRe matches extra task names (the part after "<host>:").
	taskNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	// sshHostRe matches what ssh takes as a destination host: a name, an
	// ssh_config alias, an IPv4 or a bare IPv6 address (with a %zone).
	sshHostRe = regexp.MustCompile(`^[A-Za-z0-9_\[][A-Za-z0-9_.:%\[\]-]*$`)
	// userRe matches POSIX-ish user and group names (shadow-utils' rule,
	// upper case allowed), or numeric ids.
	userRe = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_.-]*\$?|[0-9]+)$`)
	// tagRe matches a host's tag (selected as "@<tag>").
	tagRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	// unitRe matches a systemd unit name with its type. The name goes into
	// the argv of systemctl as root on the host: it never starts with '-'.
	unitRe = regexp.MustCompile(`^[A-Za-z0-9:_\\][A-Za-z0-9:_.@\\-]*\.(service|socket|target|path|timer|mount|automount|swap|slice|scope|device)$`)
	// modeRe matches an octal mode with three or four digits.
	modeRe = regexp.MustCompile(`^[0-7]{3,4}$`)
	// hostKeyRe matches an OpenSSH public key line: type, base64, comment.
	hostKeyRe = regexp.MustCompile(`^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\x00-\x1f\x7f]*)?$`)
)

// ReservedHostNames cannot be hosts: they name fleet-wide tasks.
var ReservedHostNames = []string{"all"}

// Validate checks every value of a decoded inventory. It returns the first
// problem, in a stable order (hosts by name, fields in document order).
func Validate(inv *Inventory) error {
	for _, name := range sortedKeys(inv.Hosts) {
		h := inv.Hosts[name]
		check := validateHost
		if h.Home != nil {
			check = validateHome
		}
		if err := check(name, h); err != nil {
			return err
		}
	}
	return nil
}

// flakeDirRe is the directory of a ?dir= flake in its source: it becomes
// part of a flake reference's query, unescaped.
var flakeDirRe = regexp.MustCompile(`^[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$`)

// CheckName checks the name of a target: an attribute name of
// nixosConfigurations (home false) or homeConfigurations (home true). It
// names the target's tasks, so it is plain text: a flake's names are
// checked before anything else is done with them, and one that fails is
// never a task, never printed raw (the error quotes it).
func CheckName(name string, home bool) error {
	switch {
	case home && (!homeNameRe.MatchString(name) || len(name) > 128):
		return &Error{Host: name, Home: true, Msg: "the name can only use letters, digits, '_', '.', '-' and '@' (and cannot start with '.', '-' or '@')",
			Advice: "the name is its attribute name in homeConfigurations (\"alice\" or \"alice@host1\"); it names its tasks, as in \"<name>:rebuild\""}
	case !home && (!hostNameRe.MatchString(name) || len(name) > 128):
		return &Error{Host: name, Msg: "the name can only use letters, digits, '_', '.' and '-' (and cannot start with '.' or '-')",
			Advice: "the host's name is its attribute name in nixosConfigurations; it names its tasks, as in \"<host>:rebuild\""}
	case slices.Contains(ReservedHostNames, name):
		kind := "nixosConfigurations"
		if home {
			kind = "homeConfigurations"
		}
		return &Error{Host: name, Home: home, Msg: fmt.Sprintf("the name %q is reserved for the task that deploys every host", name),
			Advice: "rename this entry of " + kind}
	}
	return nil
}

func validateHost(name string, h *Host) error {
	fail := func(field, format string, args ...any) error {
		return &Error{Host: name, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if err := CheckName(name, false); err != nil {
		return err
	}
	// The flake's source in the store, and the directory of its flake.nix
	// in there for a ?dir= flake.
	root, dir := h.FlakeSource()
	if err := storepath.Validate(root); err != nil {
		return fail("flake", "%q is not a Nix store path", h.Flake)
	}
	if dir != "" && (!flakeDirRe.MatchString(dir) || slices.Contains(strings.Split(dir, "/"), "..") || strings.Contains(dir, "//") ||
		strings.HasSuffix(h.Flake, "/")) {
		return fail("flake", "%q: the flake's directory in its source can only use letters, digits and '._+-/', without '..'", h.Flake)
	}

	d := &h.Deployment
	if err := checkAbsPath(d.ConfigDir); err != nil {
		return fail("deployment.config-dir", "%v", err)
	}
	if d.DeployMethod != MethodCopy && d.DeployMethod != MethodArchive {
		return fail("deployment.deploy-method", "%q is not one of %q, %q", d.DeployMethod, MethodCopy, MethodArchive)
	}
	if err := validateReach(name, d); err != nil {
		return err
	}
	if b := d.BuildHost; b != nil {
		s := b.SSH(d.SSH.Command)
		if err := validateSSH(name, "deployment.build-host.", &s); err != nil {
			return err
		}
	}
	if err := validateActivation(name, d); err != nil {
		return err
	}
	if err := validateSecrets(name, &h.Secrets); err != nil {
		return err
	}
	return validateTasks(name, h)
}

// validateHome checks a home-manager target (an entry of "homes").
func validateHome(name string, h *Host) error {
	fail := func(field, format string, args ...any) error {
		return &Error{Host: name, Home: true, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if err := CheckName(name, true); err != nil {
		return err
	}
	p := h.Home.ActivationPackage
	if err := storepath.Validate(p); err != nil || strings.Contains(p[len(storepath.StoreDir)+1:], "/") {
		return fail("activation-package", "%q is not a Nix store path", p)
	}
	if err := checkAbsPath(h.Home.Directory); err != nil {
		return fail("home-directory", "%v", err)
	}
	if err := validateReach(name, &h.Deployment); err != nil {
		return markHome(err)
	}
	if err := validateSecrets(name, &h.Secrets); err != nil {
		return markHome(err)
	}
	return markHome(validateTasks(name, h))
}

// markHome makes an error about a target name it as a home-manager target.
func markHome(err error) error {
	if e, ok := err.(*Error); ok {
		e.Home = true
	}
	return err
}

// validateReach checks what a NixOS host and a home-manager target share:
// tags, ssh and sudo.
func validateReach(name string, d *Deployment) error {
	fail := func(field, format string, args ...any) error {
		return &Error{Host: name, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	for _, tag := range d.Tags {
		if !tagRe.MatchString(tag) || len(tag) > 64 {
			return fail("deployment.tags", "%q is not a tag: letters, digits, '_', '.' and '-', not starting with '.' or '-'", tag)
		}
	}
	if err := validateSSH(name, "deployment.ssh.", &d.SSH); err != nil {
		return err
	}
	if err := checkWord(d.Sudo.Command); err != nil {
		return fail("deployment.sudo.command", "%v", err)
	}
	for i, o := range d.Sudo.Opts {
		if err := checkText(o); err != nil {
			return fail(fmt.Sprintf("deployment.sudo.opts[%d]", i), "%v", err)
		}
	}
	return nil
}

// validateSSH checks ssh settings; prefix is their place in the entry,
// "deployment.ssh." or "deployment.build-host.".
func validateSSH(host, prefix string, s *SSH) error {
	fail := func(field, format string, args ...any) error {
		return &Error{Host: host, Field: prefix + field, Msg: fmt.Sprintf(format, args...)}
	}
	if !sshHostRe.MatchString(s.Host) || len(s.Host) > 253 {
		return fail("host", "%q is not a host name, alias or address", s.Host)
	}
	if s.User != nil && (!userRe.MatchString(*s.User) || len(*s.User) > 64) {
		return fail("user", "%q is not a user name", *s.User)
	}
	if err := checkWord(s.Command); err != nil {
		e := fail("command", "%v", err).(*Error)
		e.Advice = "ssh.command names the ssh program; put its arguments in ssh.opts"
		return e
	}
	for i, o := range s.Opts {
		if err := checkText(o); err != nil {
			return fail(fmt.Sprintf("opts[%d]", i), "%v", err)
		}
	}
	switch s.HostKeyPolicy {
	case HostKeyStrict, HostKeyAcceptNew:
		if s.HostKey != nil {
			e := fail("host-key", "is set, but host-key-policy is %q", s.HostKeyPolicy).(*Error)
			e.Advice = "set host-key-policy = \"pinned\" to use the pinned key, or remove host-key"
			return e
		}
	case HostKeyPinned:
		if s.HostKey == nil {
			return fail("host-key", "host-key-policy is \"pinned\" but no host-key is set")
		}
		if !hostKeyRe.MatchString(*s.HostKey) {
			e := fail("host-key", "%q is not an OpenSSH public key line", *s.HostKey).(*Error)
			e.Advice = "use the content of the host's /etc/ssh/ssh_host_ed25519_key.pub, e.g. \"ssh-ed25519 AAAAC3Nz...\""
			return e
		}
	default:
		return fail("host-key-policy", "%q is not one of %q, %q, %q", s.HostKeyPolicy, HostKeyStrict, HostKeyAcceptNew, HostKeyPinned)
	}
	return nil
}

func validateSecrets(host string, s *Secrets) error {
	byPath := map[string]string{}
	for i := range s.Files {
		f := &s.Files[i]
		field := fmt.Sprintf("secrets.files[%d]", i)
		if f.Name != "" && checkText(f.Name) == nil {
			field = fmt.Sprintf("secrets.files.%q", f.Label())
		}
		fail := func(sub, format string, args ...any) error {
			return &Error{Host: host, Field: field + "." + sub, Msg: fmt.Sprintf(format, args...)}
		}
		switch {
		case f.Name == "":
			return fail("name", "must not be empty")
		case checkText(f.Name) != nil:
			return fail("name", "%v", checkText(f.Name))
		case f.HomeManagerUser != nil && !userRe.MatchString(*f.HomeManagerUser):
			return fail("home-manager-user", "%q is not a user name", *f.HomeManagerUser)
		case strings.TrimSpace(f.Cmd) == "":
			return fail("cmd", "must not be empty")
		case strings.ContainsRune(f.Cmd, 0):
			return fail("cmd", "contains a NUL byte")
		}
		if err := checkAbsPath(f.Path); err != nil {
			return fail("path", "%v", err)
		}
		if f.Path == storepath.StoreDir || strings.HasPrefix(f.Path, storepath.StoreDir+"/") {
			return fail("path", "%q is in the Nix store, which every user of the host can read", f.Path)
		}
		if !userRe.MatchString(f.Owner) || len(f.Owner) > 64 {
			return fail("owner", "%q is not a user name or id", f.Owner)
		}
		if !userRe.MatchString(f.Group) || len(f.Group) > 64 {
			return fail("group", "%q is not a group name or id", f.Group)
		}
		if !modeRe.MatchString(f.Mode) {
			return fail("mode", "%q is not an octal mode such as \"0400\"", f.Mode)
		}
		if f.UploadAt != PreActivation && f.UploadAt != PostActivation {
			return fail("upload-at", "%q is not one of %q, %q", f.UploadAt, PreActivation, PostActivation)
		}
		for _, l := range []struct {
			field string
			units []string
		}{{"restartUnits", f.RestartUnits}, {"reloadUnits", f.ReloadUnits}} {
			for j, u := range l.units {
				if err := checkUnit(u); err != nil {
					return fail(fmt.Sprintf("%s[%d]", l.field, j), "%v", err)
				}
			}
			if len(l.units) > 0 && f.HomeManagerUser != nil {
				return fail(l.field, "a home-manager user's secret cannot restart or reload units")
			}
		}
		if other, ok := byPath[f.Path]; ok {
			return &Error{Host: host, Field: field + ".path",
				Msg: fmt.Sprintf("%q is also the path of secret %q; each secret needs its own file", f.Path, other)}
		}
		byPath[f.Path] = f.Label()
	}
	return nil
}

func validateTasks(host string, h *Host) error {
	for _, name := range sortedKeys(h.ExtraTasks) {
		t := h.ExtraTasks[name]
		field := fmt.Sprintf("extraTasks.%q", name)
		if !taskNameRe.MatchString(name) {
			return &Error{Host: host, Field: field,
				Msg: "a task name can only use letters, digits, '_', '.' and '-' (and cannot start with '.' or '-')"}
		}
		if err := checkText(t.Desc); err != nil {
			return &Error{Host: host, Field: field + ".desc", Msg: err.Error()}
		}
		for i, c := range t.Cmds {
			if strings.ContainsRune(c, 0) {
				return &Error{Host: host, Field: fmt.Sprintf("%s.cmds[%d]", field, i), Msg: "contains a NUL byte"}
			}
		}
		for i, dep := range t.Deps {
			if !h.HasTask(dep) {
				return unknownTask(host, fmt.Sprintf("%s.deps[%d]", field, i), dep, h)
			}
		}
		if t.Dir == "" || strings.ContainsRune(t.Dir, 0) || strings.Contains(t.Dir, "{{") {
			return &Error{Host: host, Field: field + ".dir", Msg: fmt.Sprintf("%q is not a directory", t.Dir)}
		}
	}
	if cycle := findCycle(h); cycle != nil {
		return &Error{Host: host, Field: "extraTasks",
			Msg: "the deps form a cycle: " + strings.Join(cycle, " -> ")}
	}
	seen := map[string]bool{}
	for i, name := range h.Tasks {
		if !h.HasTask(name) {
			return unknownTask(host, fmt.Sprintf("tasks[%d]", i), name, h)
		}
		if seen[name] {
			return &Error{Host: host, Field: fmt.Sprintf("tasks[%d]", i), Msg: fmt.Sprintf("%q is listed twice", name)}
		}
		seen[name] = true
	}
	return nil
}

func unknownTask(host, field, name string, h *Host) error {
	known := slices.Clone(h.Builtins())
	for _, k := range sortedKeys(h.ExtraTasks) {
		if !slices.Contains(known, k) {
			known = append(known, k)
		}
	}
	return &Error{Host: host, Field: field, Msg: fmt.Sprintf("unknown task %q", name),
		Advice: "known tasks of this host: " + strings.Join(known, ", ") + "; define new ones in lollypops.extraTasks"}
}

// findCycle returns a dependency cycle among the host's extra tasks, or nil.
func findCycle(h *Host) []string {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var stack []string
	var visit func(string) []string
	visit = func(n string) []string {
		switch state[n] {
		case visiting:
			i := slices.Index(stack, n)
			return append(slices.Clone(stack[i:]), n)
		case done:
			return nil
		}
		state[n] = visiting
		stack = append(stack, n)
		for _, d := range h.ExtraTasks[n].Deps {
			if c := visit(d); c != nil {
				return c
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	for _, n := range sortedKeys(h.ExtraTasks) {
		if c := visit(n); c != nil {
			return c
		}
	}
	return nil
}

// checkAbsPath accepts clean absolute paths below the root directory.
func checkAbsPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is not an absolute path", p)
	case p == "/":
		return fmt.Errorf("%q is the root directory", p)
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not a clean path (no '..', '.', '//' or trailing '/'); write %q", p, path.Clean(p))
	case len(p) > 4096:
		return fmt.Errorf("the path is longer than 4096 bytes")
	}
	return checkText(p)
}

// checkWord accepts one non-empty word with no whitespace that does not
// start with '-' (it names a program).
func checkWord(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("must not be empty")
	case strings.HasPrefix(s, "-"):
		return fmt.Errorf("%q starts with '-'", s)
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		return fmt.Errorf("%q is more than one word", s)
	}
	return checkText(s)
}

// checkText rejects invalid UTF-8, control characters (newlines, NUL,
// escape sequences) and other characters that do not print (format
// characters, non-ASCII spaces): no option value needs them, they break
// logs, listings and quoting, and they make look-alike names.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", s)
	}
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return fmt.Errorf("%q contains a control character", s)
		case !unicode.IsPrint(r):
			return fmt.Errorf("%q contains the non-printing character %U", s, r)
		}
	}
	return nil
}

// specialisationRe matches the name of a specialisation or a profile: a
// directory name in the system or the profiles' directory.
var specialisationRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$`)

func validateActivation(host string, d *Deployment) error {
	fail := func(field, format string, args ...any) error {
		return &Error{Host: host, Field: "deployment." + field, Msg: fmt.Sprintf(format, args...)}
	}
	between := func(field string, v, lo, hi int) error {
		if v < lo || v > hi {
			return fail(field, "%d is not between %d and %d", v, lo, hi)
		}
		return nil
	}
	if err := between("rollback.confirm-timeout", d.Rollback.ConfirmTimeout, 5, 3600); err != nil {
		return err
	}
	if err := between("reboot.timeout", d.Reboot.Timeout, 10, 86400); err != nil {
		return err
	}
	a := &d.Activation
	if a.Specialisation != nil {
		if !specialisationRe.MatchString(*a.Specialisation) {
			return fail("activation.specialisation", "%q is not a specialisation's name (letters, digits, '_', '.', '+' and '-', not first)", *a.Specialisation)
		}
		if a.KeepSpecialisation {
			e := fail("activation.keep-specialisation", "cannot be set with activation.specialisation").(*Error)
			e.Advice = "name the specialisation to activate, or keep the one the host runs, not both"
			return e
		}
	}
	if a.ProfileName != nil && !specialisationRe.MatchString(*a.ProfileName) {
		return fail("activation.profile-name", "%q is not a profile's name (letters, digits, '_', '.', '+' and '-', not first)", *a.ProfileName)
	}
	for _, name := range sortedKeys(d.HealthChecks) {
		c := d.HealthChecks[name]
		field := "health-checks." + name
		if !taskNameRe.MatchString(name) || len(name) > 64 {
			return fail(field, "the name can only use letters, digits, '_', '.' and '-'")
		}
		switch {
		case (c.Cmd == nil) == (c.URL == nil):
			e := fail(field, "set exactly one of cmd (run on the host) and url (fetched from the deployer)").(*Error)
			e.Advice = fmt.Sprintf("lollypops.deployment.health-checks.%s.cmd = \"systemctl is-active nginx\", or .url = \"http://host:80/\"", name)
			return e
		case c.Cmd != nil:
			if strings.TrimSpace(*c.Cmd) == "" {
				return fail(field+".cmd", "is empty")
			}
			if err := checkText(*c.Cmd); err != nil && !strings.Contains(*c.Cmd, "\n") {
				return fail(field+".cmd", "%v", err)
			}
		default:
			u, err := url.Parse(*c.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fail(field+".url", "%q is not an http:// or https:// URL", *c.URL)
			}
			if err := between("health-checks."+name+".status", c.Status, 100, 599); err != nil {
				return err
			}
		}
		if err := between(field+".timeout", c.Timeout, 1, 3600); err != nil {
			return err
		}
		if err := between(field+".retries", c.Retries, 0, 1000); err != nil {
			return err
		}
		if err := between(field+".interval", c.Interval, 0, 3600); err != nil {
			return err
		}
	}
	return nil
}

// checkUnit accepts a systemd unit name with its type ("nginx.service",
// "getty@tty1.service"), as nix/types.nix's unitName does.
func checkUnit(u string) error {
	if !unitRe.MatchString(u) || strings.Contains(u, "@.") || len(u) > 255 {
		return fmt.Errorf("%q is not a systemd unit name with its type, such as \"nginx.service\"", u)
	}
	return nil
}
