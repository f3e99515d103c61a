package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// Defects that hosts behaving like NixOS expose: each test here failed on
// the runner before they were fixed.

// With bash as sh (as on NixOS), a session that fails after staging files
// leaves nothing behind, and removes nothing but its own staging.
func TestFailedSecretSessionUnderBash(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	if got := sh(t, h, `echo "${BASH_VERSION:-not bash}"`); strings.Contains(got, "not bash") {
		t.Fatalf("/bin/sh on the fake host is not bash: %q", got)
	}
	// Decoys named like the receiver's error messages, old and new: a trap
	// that ran rm -rf -- "$@" removed the message's words.
	decoys := []string{"/var/lib/d/bad: user or group does not exist: ghost:root", "/var/lib/d/bad: user ghost does not exist"}
	sh(t, h, "mkdir -p /var/lib/d && cd /root && touch lollypops: user ghost does not exist && touch -- '"+decoys[0]+"' '"+decoys[1]+"'")
	c := host(f, "host1")
	good := secret("good", "echo good", "/run/keys/good")
	bad := secret("bad", "echo bad", "/var/lib/d/bad")
	bad.Owner = "ghost"
	other := secret("other", "echo other", "/var/lib/other/x")
	c.Secrets.Files = []config.Secret{good, other, bad}
	res := newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets")
	if res.code != 3 {
		t.Fatalf("%s", res)
	}
	if !strings.Contains(res.output(), "/var/lib/d/bad: user ghost does not exist") {
		t.Errorf("the error does not name the secret and its owner:\n%s", res)
	}
	if left := sh(t, h, "find /run /var /root /home -name '.lollypops-*'"); left != "" {
		t.Errorf("staging left on the host:\n%s", left)
	}
	if got := sh(t, h, "ls /run/keys; ls /var/lib/other 2>/dev/null || true; ls /var/lib/d | grep -v ': ' || true"); got != "" {
		t.Errorf("files written although the session failed: %q", got)
	}
	for _, w := range []string{"lollypops:", "user", "ghost", "does", "not", "exist"} {
		sh(t, h, "test -e /root/"+w)
	}
	for _, d := range decoys {
		sh(t, h, "test -e '"+d+"'")
	}
}

// Secrets land with exactly their mode: execute, set-id and sticky bits,
// three- and four-digit forms.
func TestExactModes(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	c := host(f, "host1")
	modes := []string{"0700", "0755", "755", "0640", "640", "4750", "2755", "1744", "0111"}
	for _, m := range modes {
		c.Secrets.Files = append(c.Secrets.Files, config.Secret{Name: "m" + m, Cmd: "echo " + m,
			Path: "/run/keys/m" + m, Owner: "root", Group: "keys", Mode: m, UploadAt: config.PreActivation,
			RestartUnits: []string{}, ReloadUnits: []string{}})
	}
	res := newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	for _, m := range modes {
		want := strings.TrimLeft(m, "0")
		if got := strings.TrimSpace(sh(t, h, "stat -c %a /run/keys/m"+m)); got != want {
			t.Errorf("mode %s landed as %s", m, got)
		}
	}
}

// A user who owns the directory of their home-manager secrets cannot make
// root write or chown anywhere: the write is theirs.
func TestHomeSecretsAgainstTheirOwner(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "host1", Users: []fakehost.UserSpec{{Name: "alice"}}})
	h := f.Host("host1")
	sh(t, h, "install -d -m 0700 /root/victim && echo canary > /root/victim/canary && chmod 0600 /root/victim/canary")
	token := secret("token", "echo alice-token", "/home/alice/lollypops-secrets/token")
	token.Owner, token.Group, token.Mode = "alice", "alice", "0400"
	c := host(f, "host1")
	c.Secrets.Files = []config.Secret{token}

	// A plain deploy: alice's file, in a directory alice owns.
	res := newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	if got := sh(t, h, "stat -c '%U %G %a' /home/alice/lollypops-secrets /home/alice/lollypops-secrets/token; cat /home/alice/lollypops-secrets/token"); got != "alice alice 711\nalice alice 400\nalice-token\n" {
		t.Errorf("home secret: %q", got)
	}

	// alice points the directory at one of root's.
	sh(t, h, "rm -rf /home/alice/lollypops-secrets && su -s /bin/sh alice -c 'ln -s /root/victim /home/alice/lollypops-secrets'")
	res = newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets")
	if res.code != 3 {
		t.Errorf("the deploy through alice's symlink succeeded:\n%s", res)
	}
	if got := sh(t, h, "ls -A /root/victim; stat -c '%U %a' /root/victim /root/victim/canary"); got != "canary\nroot 700\nroot 600\n" {
		t.Errorf("root's directory was written or chowned: %q", got)
	}

	// A secret of root's in alice's directory is refused, naming it.
	sh(t, h, "rm -f /home/alice/lollypops-secrets")
	rootsecret := secret("rootsecret", "echo r", "/home/alice/rootsecret")
	c.Secrets.Files = []config.Secret{rootsecret}
	res = newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets")
	if res.code != 3 || !strings.Contains(res.output(), "/home/alice: owned by uid") {
		t.Errorf("root's secret in alice's home: %s", res)
	}
	sh(t, h, "test ! -e /home/alice/rootsecret")
}

// Output of the login's start-up files does not break the report, and the
// summary says what is on the host when only the manifest update failed.
func TestSecretReportsTellTheTruth(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	sh(t, h, "mkdir -p /root/.ssh && echo 'echo Welcome to host1, have a nice day' > /root/.ssh/rc")
	c := host(f, "host1")
	c.Secrets.Files = []config.Secret{secret("a", "echo a", "/run/keys/a")}
	res := newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets")
	if res.code != 0 || !strings.Contains(res.output(), "Welcome to host1") {
		t.Fatalf("start-up output broke the deploy:\n%s", res)
	}
	// The manifest cannot be replaced: the files are written all the same,
	// and the error says so.
	sh(t, h, "rm -f /var/src/lollypops/secrets.manifest && mkdir -p /var/src/lollypops/secrets.manifest/x")
	c.Secrets.Files = []config.Secret{secret("a", "echo a2", "/run/keys/a")}
	res = newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets")
	if res.code != 3 || strings.Contains(res.output(), "no file of this session was written") ||
		!strings.Contains(res.output(), "the secrets are written on host1, but updating the list of deployed secrets failed") {
		t.Errorf("manifest failure:\n%s", res)
	}
	if got := sh(t, h, "cat /run/keys/a"); got != "a2\n" {
		t.Errorf("a: %q", got)
	}
}

// Programs that tasks start get the default SIGPIPE disposition: yes | head
// ends, seq | head prints no write errors.
func TestTasksGetDefaultSIGPIPE(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	c := host(f, "host1")
	c.Tasks = []string{"pipes"}
	c.ExtraTasks = map[string]config.ExtraTask{"pipes": {Desc: "pipes", Dir: ".", Deps: []string{},
		Cmds: []string{"set +o pipefail; yes | head -n 1; seq 1000000 | head -n 1"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := newRunner(t, map[string]*config.Host{"host1": c}).runCtx(ctx, nil, "host1")
	if ctx.Err() != nil {
		t.Fatalf("yes | head -n 1 did not end:\n%s", res)
	}
	if res.code != 0 || strings.Contains(res.output(), "write error") || strings.Contains(res.output(), "Broken pipe") ||
		!strings.Contains(res.stdout, "[host1:pipes] y\n") || !strings.Contains(res.stdout, "[host1:pipes] 1\n") {
		t.Errorf("%s", res)
	}
}

// check-vars reads a secret command as the secret step runs it: builtins
// are no programs, the programs after them are looked for.
func TestCheckVarsReadsShellCommands(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	c := host(f, "host1")
	c.Secrets.Files = []config.Secret{
		secret("a", "umask 077; printf a", "/run/keys/a"),
		secret("b", "unset LOLLYPOPS_X; cat /etc/hostname", "/run/keys/b"),
		secret("c", "source /dev/null && printf c", "/run/keys/c"),
	}
	res := newRunner(t, map[string]*config.Host{"host1": c}).run("host1:check-vars")
	if res.code != 0 {
		t.Fatalf("valid commands rejected:\n%s", res)
	}
	c.Secrets.Files = append(c.Secrets.Files, secret("d", "umask 077; lollypops-no-such-tool get d", "/run/keys/d"))
	res = newRunner(t, map[string]*config.Host{"host1": c}).run("host1:check-vars")
	if res.code != 3 || !strings.Contains(res.output(), `lollypops-no-such-tool (for secret "d")`) {
		t.Errorf("missing program after a builtin: %s", res)
	}
}

// A runner killed with SIGKILL leaves no authenticated connection behind:
// the master ends by itself once idle (ControlPersist, here shortened
// through ssh.opts).
func TestKilledRunnerLeavesNoConnection(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	h.SetRebuildSleep(3 * time.Second)
	c := host(f, "host1")
	c.Deployment.SSH.Opts = append(c.Deployment.SSH.Opts, "-o", "ControlPersist=2")
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.runCtx(context.Background(), func(cmd *exec.Cmd) {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if calls, _ := h.RebuildCalls(); len(calls) > 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if masters(f) == nil {
			t.Error("no shared connection while the rebuild runs")
		}
		// Everything of the runner's dies at once, as with kill -9.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}, "host1")
	if res.code != -1 && res.code != 137 {
		t.Logf("runner: %s", res)
	}
	// The rebuild's own session ends after 3 s, then the master idles 2 s.
	deadline := time.Now().Add(30 * time.Second)
	for masters(f) != nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := masters(f); left != nil {
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Errorf("the shared connection outlived the killed runner by 30 s (pids %v)", left)
	}
}

// masters returns the pids of ssh masters that reach the fleet.
func masters(f *fakehost.Fleet) []int { return sshClients(f, "ControlMaster=yes") }

// sshClients returns the pids of the live ssh clients that reach the fleet
// and whose command line contains marker.
func sshClients(f *fakehost.Fleet, marker string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "ssh" || !strings.Contains(string(b), marker) ||
			!strings.Contains(string(b), f.SSHConfig) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}
