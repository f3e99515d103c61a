//go:build linux

package e2e

// The standing guard of issue 17: hostile values in every field a user,
// a flake or a host controls, through listing, --dry, a deploy and the
// report. Whatever a change does, these must hold:
//
//   - nothing runs that was not asked for: every value that looks like
//     shell (quotes, $(...), backticks, ";") would touch a canary file,
//     and none may exist after the runs;
//   - nothing reaches the terminal raw: no control character but newline
//     and tab, no escape sequence, no byte that is not UTF-8 in anything
//     lollypops prints (rawControl);
//   - no secret value or sudo password (poison values, made for the run)
//     is in any process's argv or environment, the output (--verbose),
//     the report, the run directory or a Nix store.
//
// Values the inventory refuses are refused with a message that shows them
// escaped; values it accepts arrive exactly. The receiver's and the sudo
// root session's shell code is checked with hostile values under bash,
// dash, busybox sh and mksh in their packages (internal/secrets,
// internal/sudopw).

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"mvdan.cc/sh/v3/syntax"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// canaries is a directory that stays empty unless a value ran as shell.
type canaries struct{ dir string }

func newCanaries(t *testing.T) *canaries {
	return &canaries{dir: t.TempDir()}
}

// payloads are hostile spellings of one field value, each touching its own
// canary if run by a shell; tag names the canary.
func (c *canaries) payloads(tag string) []string {
	p := filepath.Join(c.dir, tag)
	return []string{
		"it's \"q\" $(touch " + p + "-subst)",
		"`touch " + p + "-tick`",
		"x;touch " + p + "-semi",
		"a\nb$(touch " + p + "-nl)",
		"\x1b]0;pwned\x07\x1b[2K\rlollypops: " + tag + " ok",
		"-rf",
		"--help",
		"\xff\xfe" + tag,
		"a\u202eb",
	}
}

func (c *canaries) check(t *testing.T) {
	t.Helper()
	if ents, _ := os.ReadDir(c.dir); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("values ran as commands: %q", names)
	}
}

func printable(t *testing.T, what string, res result) {
	t.Helper()
	if bad := rawControl(res.output()); bad != "" {
		t.Errorf("%s printed a raw control character: %s\n%s", what, bad, res)
	}
}

// Every field the inventory checks refuses the values that cannot be what
// they name, with a message that names the field and shows the value
// escaped; nothing is run, listed or printed raw.
func TestHostileValuesRefused(t *testing.T) {
	requireHosts(t)
	c := newCanaries(t)
	fields := map[string]func(h *config.Host, v string){
		"deployment.ssh.host": func(h *config.Host, v string) { h.Deployment.SSH.Host = v },
		"deployment.ssh.user": func(h *config.Host, v string) { h.Deployment.SSH.User = &v },
		"deployment.tags":     func(h *config.Host, v string) { h.Deployment.Tags = []string{v} },
		"deployment.build-host.host": func(h *config.Host, v string) {
			h.Deployment.BuildHost = &config.BuildHost{Host: v, Opts: []string{}, HostKeyPolicy: config.HostKeyStrict}
		},
		"deployment.build-host.user": func(h *config.Host, v string) {
			h.Deployment.BuildHost = &config.BuildHost{Host: "builder", User: &v, Opts: []string{}, HostKeyPolicy: config.HostKeyStrict}
		},
		"secrets.files": func(h *config.Host, v string) {
			s := secret("s", "echo x", "/run/keys/s")
			s.Owner = v
			h.Secrets.Files = []config.Secret{s}
		},
		"group": func(h *config.Host, v string) {
			s := secret("s", "echo x", "/run/keys/s")
			s.Group = v
			h.Secrets.Files = []config.Secret{s}
		},
		"deployment.health-checks": func(h *config.Host, v string) {
			h.Deployment.HealthChecks = map[string]config.HealthCheck{v: {Cmd: ptr("true"), Timeout: 5}}
		},
	}
	for field, set := range fields {
		for _, v := range c.payloads(strings.ReplaceAll(field, ".", "-")) {
			h := plainHost("host1")
			set(h, v)
			r := newRunnerUnchecked(t, map[string]*config.Host{"host1": h})
			for _, args := range [][]string{{"--list-all"}, {"--dry", "host1"}, {"host1"}} {
				res := r.run(args...)
				printable(t, fmt.Sprintf("%s = %q: %q", field, v, args), res)
				if res.code == 0 {
					t.Errorf("%s = %q: %q accepted:\n%s", field, v, args, res)
				}
			}
		}
	}
	// Values only some fields refuse: control characters and bytes that
	// are not UTF-8 in paths, names, commands, options.
	for _, v := range []string{"a\nb", "\x1b]0;t\x07", "a\rb", "x\x00y"} {
		for field, set := range map[string]func(h *config.Host){
			"config-dir":  func(h *config.Host) { h.Deployment.ConfigDir = "/var/src/" + v },
			"secret path": func(h *config.Host) { h.Secrets.Files = []config.Secret{secret("s", "echo x", "/run/keys/"+v)} },
			"secret name": func(h *config.Host) { h.Secrets.Files = []config.Secret{secret(v, "echo x", "/run/keys/s")} },
			"ssh.opts":    func(h *config.Host) { h.Deployment.SSH.Opts = []string{"-o", "SetEnv=X=" + v} },
			"sudo.opts":   func(h *config.Host) { h.Deployment.Sudo.Opts = []string{v} },
			"build-host.opts": func(h *config.Host) {
				h.Deployment.BuildHost = &config.BuildHost{Host: "builder", Opts: []string{"-o", "SetEnv=X=" + v}, HostKeyPolicy: config.HostKeyStrict}
			},
			"ssh.command": func(h *config.Host) { h.Deployment.SSH.Command = "ssh" + v },
			"health check cmd": func(h *config.Host) {
				h.Deployment.HealthChecks = map[string]config.HealthCheck{"c": {Cmd: ptr("true " + v), Timeout: 5}}
			},
			"health check url": func(h *config.Host) {
				h.Deployment.HealthChecks = map[string]config.HealthCheck{"u": {URL: ptr("http://127.0.0.1/" + v), Status: 200, Timeout: 5}}
			},
		} {
			if field == "health check cmd" && strings.Contains(v, "\n") {
				continue // a multi-line script is a valid command
			}
			h := plainHost("host1")
			set(h)
			res := newRunnerUnchecked(t, map[string]*config.Host{"host1": h}).run("--dry", "host1")
			printable(t, fmt.Sprintf("%s with %q", field, v), res)
			if res.code == 0 {
				t.Errorf("%s with %q accepted:\n%s", field, v, res)
			}
		}
	}
	c.check(t)
}

// newRunnerUnchecked is newRunner for an inventory the runner must refuse.
func newRunnerUnchecked(t *testing.T, hs map[string]*config.Host) *runner {
	t.Helper()
	data, err := json.Marshal(config.Inventory{Version: config.Version, Hosts: hs})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.json")
	if err := os.WriteFile(inv, data, 0o600); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	os.Mkdir(work, 0o755)
	return &runner{t: t, inv: inv, dir: work}
}

// A flake's attribute names are anything Nix allows: they are left out,
// with a warning that quotes them, and never run, listed or deployed.
func TestHostileAttributeNames(t *testing.T) {
	requireHosts(t)
	c := newCanaries(t)
	var attrs []string
	for i, v := range append(c.payloads("attr"), "all", "host1:rebuild", "*", "@web") {
		j, _ := json.Marshal(v)
		attrs = append(attrs, fmt.Sprintf("${builtins.fromJSON %s} = { config = { lollypops.inventory-entry = { name, flake }: throw \"evaluated %d\"; }; };", nixStr(string(j)), i))
	}
	// Bytes that are not UTF-8, as a .nix file may hold them.
	attrs = append(attrs, "\"\xff\xfe-raw\" = { config = { lollypops.inventory-entry = { name, flake }: throw \"evaluated raw\"; }; };")
	dir := filepath.Join(t.TempDir(), "flake")
	if _, err := addFlake(dir, "{ self }: { nixosConfigurations = { "+strings.Join(attrs, "\n")+" }; }", nil); err != nil {
		t.Fatal(err)
	}
	r := &runner{t: t, dir: t.TempDir(), flake: dir}
	for _, args := range [][]string{{"--list-all"}, {"--dry", "all"}, {"all"}, {"--on", "*", "deploy-flake"}} {
		res := r.run(args...)
		printable(t, fmt.Sprintf("%q", args), res)
		if strings.Contains(res.output(), "evaluated ") {
			t.Errorf("%q evaluated a target whose name cannot be a task:\n%s", args, res)
		}
	}
	res := r.run("--list-all")
	if n := strings.Count(res.output(), "is left out"); n != len(attrs) {
		t.Errorf("%d names left out, want %d:\n%s", n, len(attrs), res)
	}
	c.check(t)
}

// Values the inventory accepts, hostile as they can be, on a real deploy
// through sudo with a password: a config-dir, secret names and paths, ssh
// options, a health check command that prints escape sequences and one
// whose URL looks like shell, secret commands that print escapes on
// their stderr. They arrive exactly, run nothing, print nothing raw, and
// the poison values (the secrets, the password) are found nowhere they
// must not be.
func TestHostileValuesDeployed(t *testing.T) {
	c := newCanaries(t)
	password := fmt.Sprintf("PW-%x it's \"sudo\" $(touch %s/pw)", rand.Uint64(), c.dir)
	poison := fmt.Sprintf("SECRET-%x", rand.Uint64())
	f := newFleet(t, fakehost.HostSpec{Name: "host1", NixDaemon: true,
		Users: []fakehost.UserSpec{{Name: "deploy", SudoPassword: password, Trusted: true}}})
	h := f.Host("host1")
	pass := newPassStore(t)
	pass.insert("hosts/sudo", []byte(password+"\n"))
	pass.insert("hosts/api", []byte(poison+"-api\x1b[2J\n"))
	pass.insert("hosts/other", []byte(poison+"-other"))

	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.RawPath+"|"+r.URL.Path+"|"+r.URL.RawQuery)
		mu.Unlock()
	}))
	defer srv.Close()

	hc := host(f, "host1")
	hc.Deployment.SSH.User = ptr("deploy")
	hc.Deployment.Sudo.Enable = true
	hc.Deployment.Rollback.Enable = true
	hc.Deployment.ConfigDir = "/var/src/it's \"cfg\" $(touch " + c.dir + "/cfg) `touch " + c.dir + "/cfg2`;x -rf"
	hc.Deployment.SSH.Opts = append(hc.Deployment.SSH.Opts, "-o", `SetEnv=LOLLYPOPS_X="it's $(touch `+c.dir+`/ssh) ;"`)
	weird := "/run/keys/it's \"p\" $(touch " + c.dir + "/path) `touch " + c.dir + "/path2`;x -rf"
	api := secret("it's \"api\" $(touch "+c.dir+"/name)", "printf '\\033]0;pwned\\007warning from the secret command\\n' >&2; pass show hosts/api", weird)
	dash := secret("-n", "pass show hosts/other", "/run/keys/-n")
	hc.Secrets.Files = []config.Secret{api, dash}
	hc.Deployment.HealthChecks = map[string]config.HealthCheck{
		"escapes": {Cmd: ptr(`printf '\033]0;hc\007\033[2K\rit'"'"'s fine $(echo ok)\n'`), Timeout: 10},
		"url":     {URL: ptr(srv.URL + "/it's/$(touch%20" + c.dir + "/url)/a;b?q=$(id)"), Status: 200, Timeout: 10},
	}
	r := newRunner(t, map[string]*config.Host{"host1": hc})
	r.env = pass.env

	for _, args := range [][]string{{"--list-all"}, {"--dry", "host1"}} {
		res := r.run(args...)
		printable(t, fmt.Sprintf("%q", args), res)
		if res.code != 0 {
			t.Errorf("%q: %s", args, res)
		}
	}

	report := filepath.Join(t.TempDir(), "report.json")
	w := watchLeaks(poison, "")
	wpw := watchLeaks(password, "")
	res := r.run("--verbose", "--sudo-password-command", "pass show hosts/sudo", "--report", report, "host1")
	found, scans := w.done()
	foundPW, _ := wpw.done()
	printable(t, "the deploy", res)
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	if len(found) > 0 || len(foundPW) > 0 || scans < 2 {
		t.Errorf("a poison value leaked (%d scans): %q %q", scans, found, foundPW)
	}
	for _, s := range []string{poison, password} {
		if strings.Contains(res.output(), s) {
			t.Errorf("the output holds a poison value")
		}
		data, _ := os.ReadFile(report)
		if strings.Contains(string(data), s) {
			t.Errorf("the report holds a poison value")
		}
		for _, store := range []string{"/nix/store", filepath.Join(h.Dir, "nix", "store")} {
			if where := grepTree(store, s); where != "" {
				t.Errorf("a poison value is in a Nix store: %s", where)
			}
		}
	}
	// The report is JSON; its strings are plain text too.
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("report: %v", err)
	}
	walkStrings(doc, func(s string) {
		if bad := rawControl(s); bad != "" {
			t.Errorf("the report holds a raw control character: %s", bad)
		}
	})

	// The values arrived exactly.
	q := func(s string) string {
		out, err := syntax.Quote(s, syntax.LangPOSIX)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := sh(t, h, "cat -- "+q(weird)+"; stat -c '%U %a' -- "+q(weird)); got != poison+"-api\x1b[2J\nroot 400\n" {
		t.Errorf("the secret at the hostile path: %q", got)
	}
	if got := sh(t, h, "cat /run/keys/-n"); got != poison+"-other" {
		t.Errorf("/run/keys/-n: %q", got)
	}
	if got := sh(t, h, "readlink -- "+q(hc.Deployment.ConfigDir+"/flake")); !strings.HasPrefix(got, "/nix/store/") {
		t.Errorf("the config-dir's flake link: %q", got)
	}
	if k := systemOf(t, h).kernel; k != deployedKernel {
		t.Errorf("host1 runs kernel %q, not the deployed system", k)
	}
	mu.Lock()
	if len(paths) == 0 || !strings.Contains(paths[0], "/it's/$(touch "+c.dir+"/url)/a;b|q=$(id)") {
		t.Errorf("the health check fetched %q", paths)
	}
	mu.Unlock()
	for _, want := range []string{`warning from the secret command`, `\x1b]0;pwned\x07`} {
		if !strings.Contains(res.output(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	c.check(t)
}

// walkStrings calls f with every string in a decoded JSON document.
func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case []any:
		for _, e := range v {
			walkStrings(e, f)
		}
	case map[string]any:
		for k, e := range v {
			f(k)
			walkStrings(e, f)
		}
	}
}
