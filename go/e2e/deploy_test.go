package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// The default deployment of three hosts: the flake reaches each host's
// store, is linked and GC-rooted; secrets from pass and from plain commands
// arrive byte for byte with their mode, owner and group; nixos-rebuild runs
// on the host with the deployed flake; each host authenticates once.
func TestDeployAll(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2", "host3")...)
	pass := newPassStore(t)
	hs := map[string]*config.Host{}
	want := map[string]map[string][]byte{} // host -> path -> content
	for _, h := range f.Hosts() {
		c := host(f, h.Name)
		value := []byte(fmt.Sprintf("password of %s\nwith two lines and a trailing newline\n", h.Name))
		pass.insert("hosts/"+h.Name+"/db", value)
		db := secret("db", "pass hosts/"+h.Name+"/db", "/run/keys/db")
		db.Group, db.Mode = "keys", "0440"
		dash := secret("dash", "printf -- -n", "/var/lib/app with space/dash-n")
		binary := secret("binary", `printf 'a\000b\377\n\n\n'`, "/run/keys/nested/dir/binary")
		binary.Mode = "0600"
		c.Secrets.Files = []config.Secret{db, dash, binary}
		hs[h.Name] = c
		want[h.Name] = map[string][]byte{
			"/run/keys/db":                   value,
			"/var/lib/app with space/dash-n": []byte("-n"),
			"/run/keys/nested/dir/binary":    []byte("a\x00b\xff\n\n\n"),
		}
	}
	r := newRunner(t, hs)
	r.env = pass.env
	res := r.run("all")
	if res.code != 0 {
		t.Fatalf("deploy failed:\n%s", res)
	}
	for _, h := range f.Hosts() {
		t.Run(h.Name, func(t *testing.T) {
			// The flake: in the host's store, linked, a GC root.
			if got := sh(t, h, "readlink /var/src/lollypops/flake"); strings.TrimSpace(got) != flake {
				t.Errorf("config-dir/flake -> %q, want %s", got, flake)
			}
			sh(t, h, "nix-store --check-validity "+flake)
			roots := sh(t, h, "for r in /nix/var/nix/gcroots/auto/*; do readlink $r; done")
			if !strings.Contains(roots, "/var/src/lollypops/flake") {
				t.Errorf("no GC root for the flake link: %q", roots)
			}
			// The secrets.
			for path, content := range want[h.Name] {
				got, err := h.Exec(t.Context(), "cat", path)
				if err != nil || string(got) != string(content) {
					t.Errorf("%s: %q (%v), want %q", path, got, err, content)
				}
			}
			stat := sh(t, h, `stat -c '%a %U %G %n' /run/keys/db '/var/lib/app with space/dash-n' /run/keys/nested/dir/binary /run/keys/nested /run/keys/nested/dir`)
			for _, line := range []string{
				"440 root keys /run/keys/db",
				"400 root root /var/lib/app with space/dash-n",
				"600 root root /run/keys/nested/dir/binary",
				"711 root root /run/keys/nested",
				"711 root root /run/keys/nested/dir",
			} {
				if !strings.Contains(stat, line+"\n") {
					t.Errorf("stat: want %q in\n%s", line, stat)
				}
			}
			if left := sh(t, h, "find /run/keys /var/lib -name '.lollypops-*'"); left != "" {
				t.Errorf("temporary files left: %s", left)
			}
			// The rebuild.
			calls, err := h.RebuildCalls()
			if err != nil || len(calls) != 1 {
				t.Fatalf("rebuild calls: %v %+v", err, calls)
			}
			c := calls[0]
			wantArgs := []string{"switch", "--flake", "path:" + flake + "#" + h.Name}
			if !slices.Equal(c.Args, wantArgs) || c.User != "root" || c.Hostname != h.Name {
				t.Errorf("nixos-rebuild %q as %s on %s, want %q", c.Args, c.User, c.Hostname, wantArgs)
			}
			if c.FlakeTarget != flake || !c.FlakeValid || c.Exit != 0 {
				t.Errorf("the rebuild's flake resolved to %q (valid %v), exit %d", c.FlakeTarget, c.FlakeValid, c.Exit)
			}
			// The flake's system is a new generation, the boot default and
			// the running system.
			s := systemOf(t, h)
			if len(s.gens) != 2 || !s.gens[1].Current || s.current != s.gens[1].Path || s.bootDefault != s.current ||
				s.kernel != deployedKernel {
				t.Errorf("after switch: %+v", s)
			}
			if acts := activations(t, h); !slices.Equal(acts, []string{"switch"}) {
				t.Errorf("activations: %q", acts)
			}
			if n := authCount(t, h); n != 1 {
				t.Errorf("%d ssh authentications, want 1", n)
			}
			if got := summaryLine(res, h.Name); !strings.HasPrefix(got, h.Name+" ok ") ||
				!strings.Contains(got, "deploy-secrets (3 secrets, 3 changed)") || !strings.Contains(got, "rebuild (switch)") {
				t.Errorf("summary line: %q", got)
			}
		})
	}
	for _, v := range []string{"password of", "a\x00b"} {
		if strings.Contains(res.stdout+res.stderr, v) {
			t.Errorf("a secret value is in the output: %q", v)
		}
	}
	if !strings.Contains(res.stderr, "summary: 3 of 3 hosts ok") {
		t.Errorf("no summary:\n%s", res)
	}
}

// Many secrets, still one authentication and one session.
func TestOneAuthenticationForManySecrets(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	c := host(f, "host1")
	for i := range 40 {
		c.Secrets.Files = append(c.Secrets.Files,
			secret(fmt.Sprintf("s%02d", i), fmt.Sprintf("echo value-%02d", i), fmt.Sprintf("/run/keys/s%02d", i)))
	}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	if res := r.run("host1"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	h := f.Host("host1")
	if got := sh(t, h, "cat /run/keys/s07 /run/keys/s39"); got != "value-07\nvalue-39\n" {
		t.Errorf("secrets: %q", got)
	}
	if n := authCount(t, h); n != 1 {
		t.Errorf("%d ssh authentications for 40 secrets, want 1", n)
	}
}

// deploy-method "archive" copies the flake's inputs too; "copy" does not.
func TestDeployMethods(t *testing.T) {
	requireHosts(t)
	dir := t.TempDir()
	input, err := addFlake(filepath.Join(dir, "dep"), "_: { }", nil)
	if err != nil {
		t.Fatal(err)
	}
	withInput, err := addFlake(filepath.Join(dir, "main", "source"), "_: { }", map[string]string{"dep": input})
	if err != nil {
		t.Fatal(err)
	}
	// The input reaches the store as its own "-source" path: ask nix which.
	out, err := exec.Command("nix", "--extra-experimental-features", "nix-command flakes", "--offline",
		"flake", "archive", "--dry-run", "--json", withInput).Output()
	if err != nil {
		t.Fatal(err)
	}
	var archive struct {
		Inputs map[string]struct{ Path string }
	}
	if err := json.Unmarshal(out, &archive); err != nil || archive.Inputs["dep"].Path == "" {
		t.Fatalf("nix flake archive --dry-run: %s %v", out, err)
	}
	input = archive.Inputs["dep"].Path
	f := newFleet(t, hosts("archived", "copied")...)
	a, c := host(f, "archived"), host(f, "copied")
	a.Flake, c.Flake = withInput, withInput
	a.Deployment.DeployMethod = config.MethodArchive
	r := newRunner(t, map[string]*config.Host{"archived": a, "copied": c})
	res := r.run("-p", "archived:deploy-flake", "copied:deploy-flake")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	valid := func(h *fakehost.Host, p string) bool {
		_, err := h.Exec(t.Context(), "nix-store", "--check-validity", p)
		return err == nil
	}
	if !valid(f.Host("archived"), withInput) || !valid(f.Host("archived"), input) {
		t.Error("archive: the flake or its input is missing on the host")
	}
	if !valid(f.Host("copied"), withInput) || valid(f.Host("copied"), input) {
		t.Error("copy: want the flake's source only, without its input")
	}
	for _, name := range []string{"archived", "copied"} {
		if got := strings.TrimSpace(sh(t, f.Host(name), "readlink /var/src/lollypops/flake")); got != withInput {
			t.Errorf("%s: flake link -> %q", name, got)
		}
	}
}

// With local evaluation, the system is built on the deployer, copied over
// the run's connection and activated under the guard, through sudo.
func TestLocalEvaluation(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "host1",
		Users: []fakehost.UserSpec{{Name: "deploy", Sudo: true, Trusted: true}}, NixDaemon: true})
	c := host(f, "host1")
	c.Deployment.LocalEvaluation = true
	c.Deployment.SSH.User = ptr("deploy")
	c.Deployment.Sudo.Enable = true
	c.Deployment.Sudo.Opts = []string{"-n"} // any sudo options: no nixos-rebuild --use-remote-sudo here
	c.Deployment.Rollback.Enable = true
	// A secret after the activation: the run's connection must survive it.
	post := secret("post", "echo after", "/run/keys/post")
	post.UploadAt = config.PostActivation
	c.Secrets.Files = []config.Secret{post}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("host1", "REBUILD_ACTION=test")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	if got := sh(t, f.Host("host1"), "cat /run/keys/post"); got != "after\n" {
		t.Errorf("post-activation secret: %q", got)
	}
	h := f.Host("host1")
	acts, err := h.Activations()
	if err != nil || len(acts) != 1 || acts[0].User != "root" || !slices.Equal(acts[0].Args, []string{"test"}) || acts[0].Exit != 0 {
		t.Errorf("activation on the host: %v %+v", err, acts)
	}
	// Built here, copied, activated there; test leaves the profile alone.
	if s := systemOf(t, h); s.kernel != deployedKernel || len(s.gens) != 1 || s.bootDefault != s.gens[0].Path {
		t.Errorf("host runs %+v", s)
	}
	if !strings.Contains(res.output(), "building the system of host1 here") {
		t.Errorf("not built here:\n%s", res)
	}
	if calls, _ := h.RebuildCalls(); len(calls) != 0 {
		t.Errorf("nixos-rebuild ran on the host: %+v", calls)
	}
	// One connection, and the new one that proves the host can still be
	// reached after the activation.
	if n := authCount(t, h); n != 2 {
		t.Errorf("%d ssh authentications, want 2", n)
	}
}

// A non-root ssh user with sudo: the flake goes through the host's
// nix-daemon, secrets and the rebuild through sudo.
func TestSudoUser(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "host1", Groups: []string{"app"},
		Users: []fakehost.UserSpec{{Name: "deploy", Sudo: true, Trusted: true}}, NixDaemon: true})
	c := host(f, "host1")
	c.Deployment.SSH.User = ptr("deploy")
	c.Deployment.Sudo.Enable = true
	c.Deployment.Sudo.Opts = []string{"-n"}
	s := secret("api", "echo api-key", "/run/keys/api")
	s.Group, s.Mode = "app", "0440"
	c.Secrets.Files = []config.Secret{s}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	if res := r.run("host1"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	h := f.Host("host1")
	if got := sh(t, h, "stat -c '%a %U %G' /run/keys/api; cat /run/keys/api"); got != "440 root app\napi-key\n" {
		t.Errorf("secret: %q", got)
	}
	calls, _ := h.RebuildCalls()
	if len(calls) != 1 || calls[0].User != "root" {
		t.Errorf("rebuild: %+v", calls)
	}
	if got := strings.TrimSpace(sh(t, h, "readlink /var/src/lollypops/flake")); got != flake {
		t.Errorf("flake link -> %q", got)
	}
}

// REBUILD_ACTION picks the activation, from the command line or the
// environment.
func TestRebuildActions(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	first := systemOf(t, h)
	r := newRunner(t, map[string]*config.Host{"host1": host(f, "host1")})
	if res := r.run("host1:deploy-flake"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	if res := r.run("host1:rebuild", "REBUILD_ACTION=boot"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	// boot: a new generation that boots next; the running system stays.
	booted := systemOf(t, h)
	if len(booted.gens) != 2 || booted.current != first.current || booted.bootDefault != booted.gens[1].Path {
		t.Errorf("after boot: %+v", booted)
	}
	r.env = []string{"REBUILD_ACTION=dry-activate"}
	r.run("host1") // deploys the flake, then dry-activates
	r.env = []string{"REBUILD_ACTION=dry-activate"}
	if res := r.run("host1:rebuild", "REBUILD_ACTION=test"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	calls, _ := f.Host("host1").RebuildCalls()
	var actions []string
	for _, c := range calls {
		actions = append(actions, c.Args[0])
	}
	if !slices.Equal(actions, []string{"boot", "dry-activate", "test"}) {
		t.Errorf("actions %q", actions)
	}
	if acts := activations(t, h); !slices.Equal(acts, []string{"boot", "dry-activate", "test"}) {
		t.Errorf("switch-to-configuration %q", acts)
	}
	// test runs the deployed system, without a generation or boot entry.
	if s := systemOf(t, h); len(s.gens) != 2 || s.kernel != deployedKernel || s.bootDefault != booted.bootDefault {
		t.Errorf("after test: %+v", s)
	}
	r.env = nil
	res := r.run("host1", "REBUILD_ACTION=reboot")
	if res.code != 2 || !strings.Contains(res.stderr, `REBUILD_ACTION "reboot" is not one of`) {
		t.Errorf("invalid action: %s", res)
	}
	if calls, _ := f.Host("host1").RebuildCalls(); len(calls) != 3 {
		t.Errorf("an invalid action touched the host: %d calls", len(calls))
	}
}

// -p runs hosts at the same time, and a host that fails does not stop
// another host's activation in flight.
func TestParallelAndPartialFailure(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2", "host3")...)
	hs := map[string]*config.Host{}
	for _, h := range f.Hosts() {
		hs[h.Name] = host(f, h.Name)
	}
	r := newRunner(t, hs)
	for _, h := range f.Hosts() {
		h.SetRebuildSleep(700 * time.Millisecond)
	}
	if res := r.run("-p", "host1", "host2"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	gens2 := len(systemOf(t, f.Host("host2")).gens)
	c1, _ := f.Host("host1").RebuildCalls()
	c2, _ := f.Host("host2").RebuildCalls()
	if len(c1) != 1 || len(c2) != 1 {
		t.Fatalf("calls: %+v %+v", c1, c2)
	}
	if !(c1[0].Start.Before(c2[0].End) && c2[0].Start.Before(c1[0].End)) {
		t.Errorf("the rebuilds did not overlap: host1 %v-%v, host2 %v-%v", c1[0].Start, c1[0].End, c2[0].Start, c2[0].End)
	}
	if calls, _ := f.Host("host3").RebuildCalls(); len(calls) != 0 {
		t.Error("host3 was deployed without being asked")
	}

	// host2's rebuild fails at once, while host1's and host3's still run.
	f.Host("host1").SetRebuildSleep(1500 * time.Millisecond)
	f.Host("host3").SetRebuildSleep(1500 * time.Millisecond)
	f.Host("host2").SetRebuildSleep(0)
	f.Host("host2").SetRebuildExit(1)
	res := r.run("all")
	if res.code != 3 {
		t.Errorf("exit %d, want 3\n%s", res.code, res)
	}
	for _, name := range []string{"host1", "host3"} {
		calls, _ := f.Host(name).RebuildCalls()
		last := calls[len(calls)-1]
		if last.End.IsZero() || last.Exit != 0 {
			t.Errorf("%s's activation was cut short: %+v", name, last)
		}
		if got := summaryLine(res, name); !strings.HasPrefix(got, name+" ok") {
			t.Errorf("summary: %q", got)
		}
	}
	if got := summaryLine(res, "host2"); !strings.HasPrefix(got, "host2 failed") || !strings.Contains(got, "rebuild: nixos-rebuild switch") {
		t.Errorf("summary: %q\n%s", got, res)
	}
	// The failed rebuild added no generation; the others switched again.
	if n := len(systemOf(t, f.Host("host2")).gens); n != gens2 {
		t.Errorf("host2 has %d generations after a failed rebuild, had %d", n, gens2)
	}
	if s := systemOf(t, f.Host("host3")); len(s.gens) != 2 || !s.gens[1].Current || s.kernel != deployedKernel {
		t.Errorf("host3: %+v", s)
	}
	if !strings.Contains(res.output(), "[host2:rebuild] lollypops: nixos-rebuild switch: ssh: exit status 1") {
		t.Errorf("no prefixed error for host2:\n%s", res)
	}
	// -x passes the failing command's exit code through.
	if res := r.run("-x", "host2:rebuild"); res.code != 1 {
		t.Errorf("-x: exit %d, want 1", res.code)
	}
}

// An unreachable host fails alone; the others are deployed.
func TestUnreachableHost(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2", "down")...)
	hs := map[string]*config.Host{}
	for _, h := range f.Hosts() {
		hs[h.Name] = host(f, h.Name)
	}
	if err := f.Host("down").Stop(); err != nil {
		t.Fatal(err)
	}
	res := newRunner(t, hs).run("all")
	if res.code != 3 {
		t.Errorf("exit %d, want 3\n%s", res.code, res)
	}
	for _, name := range []string{"host1", "host2"} {
		if calls, _ := f.Host(name).RebuildCalls(); len(calls) != 1 {
			t.Errorf("%s not deployed", name)
		}
		if got := summaryLine(res, name); !strings.HasPrefix(got, name+" ok") {
			t.Errorf("summary: %q", got)
		}
	}
	got := summaryLine(res, "down")
	if !strings.HasPrefix(got, "down failed") || !strings.Contains(got, "cannot connect to root@down") {
		t.Errorf("summary: %q\n%s", got, res)
	}
	if !strings.Contains(res.stderr, "summary: 2 of 3 hosts ok") {
		t.Errorf("summary header:\n%s", res.stderr)
	}
}

// Extra tasks: user commands with the host's variables, in the user's
// working directory, replacing a built-in and depending on another task.
func TestExtraTasks(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	c := host(f, "host1")
	c.Tasks = []string{"deploy-secrets", "example", "rebuild"}
	c.ExtraTasks = map[string]config.ExtraTask{
		"example": {Desc: "An example task", Dir: ".", Deps: []string{},
			Cmds: []string{"echo '{{.HOSTNAME}} {{.REMOTE_HOST}} {{.REMOTE_USER}} {{.REMOTE_CONFIG_DIR}} {{.REBUILD_ACTION}}' > example.out"}},
		"rebuild": {Desc: "Rebuild over the user's own ssh", Dir: ".", Deps: []string{"example"},
			Cmds: []string{"{{.REMOTE_COMMAND}} {{.REMOTE_SSH_OPTS}} {{.REMOTE_TARGET}} touch /var/custom-rebuild"}},
	}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("host1", "REBUILD_ACTION=boot")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	out, err := os.ReadFile(filepath.Join(r.dir, "example.out"))
	if err != nil || string(out) != "host1 host1 root /var/src/lollypops boot\n" {
		t.Errorf("example.out: %q %v", out, err)
	}
	h := f.Host("host1")
	sh(t, h, "test -e /var/custom-rebuild")
	if calls, _ := h.RebuildCalls(); len(calls) != 0 {
		t.Error("the built-in rebuild ran although it was replaced")
	}
	if got := summaryLine(res, "host1"); !strings.Contains(got, "example") || !strings.HasPrefix(got, "host1 ok") {
		t.Errorf("summary: %q", got)
	}
	// A failing extra task fails its host and is named in the summary.
	c.ExtraTasks["example"] = config.ExtraTask{Desc: "fails", Dir: ".", Deps: []string{}, Cmds: []string{"exit 7"}}
	res = newRunner(t, map[string]*config.Host{"host1": c}).run("host1")
	if res.code != 3 || !strings.Contains(summaryLine(res, "host1"), "example: exit status 7") {
		t.Errorf("failing extra task: %s", res)
	}
}

// --dry prints the commands and touches no host; --verbose shows every
// command a step runs, but no secret value.
func TestDryAndVerbose(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	c := host(f, "host1")
	c.Secrets.Files = []config.Secret{secret("token", "echo TOPSECRET-VALUE", "/run/keys/token")}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("--dry", "host1")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	for _, want := range []string{"\n[host1:deploy-flake] ssh -l root -F " + f.SSHConfig + " host1  # the run's one connection to host1",
		"\n[host1:deploy-flake] nix copy --to ssh://root@host1 --substitute-on-destination " + flake,
		"\n[host1:deploy-secrets] echo TOPSECRET-VALUE  # secret",
		"\n[host1:rebuild] on host1: sh -c '<lollypops rebuild: nixos-rebuild switch"} {
		if !strings.Contains("\n"+res.stderr, want) {
			t.Errorf("--dry lacks %q:\n%s", want, res)
		}
	}
	h := f.Host("host1")
	if n := authCount(t, h); n != 0 {
		t.Errorf("--dry connected to the host (%d authentications)", n)
	}
	res = r.run("--verbose", "host1")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	for _, want := range []string{"[host1:deploy-flake] $ nix ", "[host1:deploy-secrets] $ echo TOPSECRET-VALUE", "[host1:rebuild] $ ssh "} {
		if !strings.Contains(res.output(), want) {
			t.Errorf("--verbose lacks %q:\n%s", want, res)
		}
	}
	if strings.Count(res.stdout+res.stderr, "TOPSECRET-VALUE") != strings.Count(res.stdout+res.stderr, "echo TOPSECRET-VALUE") {
		t.Errorf("the secret's value is in the output:\n%s", res)
	}
	// The guarded activation's commands are shown with each script by its
	// name, never its text: the lock's holder, the guard, the watch.
	c = host(f, "host1")
	c.Deployment.Rollback.Enable = true
	r = newRunner(t, map[string]*config.Host{"host1": c})
	res = r.run("--verbose", "host1")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	for _, want := range []string{"<lollypops-lock script>", "<lollypops-prepare+build script>", "<lollypops-guard script>", "<lollypops-systemd-run+watch script>", "<lollypops-signal+watch+reboot+rm script>"} {
		if !strings.Contains(res.output(), want) {
			t.Errorf("--verbose lacks %q:\n%s", want, res)
		}
	}
	for _, text := range []string{"umask 077", "flock -w 60 8", "lollypops-watch 2", "wait_confirmation", "lollypops_after_rc"} {
		if strings.Contains(res.output(), text) {
			t.Errorf("--verbose shows a script's text (%q):\n%s", text, res)
		}
	}
}
