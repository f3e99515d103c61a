package e2e

import (
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// Run-time overrides reach a host the inventory describes wrongly, for one
// run, without editing Nix: the address, the user, sudo, ssh options, and
// the original's LP_* variables.
func TestRunTimeOverrides(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "host1", Users: []fakehost.UserSpec{{Name: "deploy", Sudo: true, Trusted: true}}, NixDaemon: true},
		fakehost.HostSpec{Name: "host2"})
	c := host(f, "host1")
	c.Deployment.SSH.Host = "host2" // the wrong address
	c.Deployment.SSH.User = ptr("deploy")
	c.Deployment.Sudo.Enable = false // deploy cannot activate without it
	c.Secrets.Files = []config.Secret{secret("token", "echo s3cret", "/run/keys/token")}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	h1, h2 := f.Host("host1"), f.Host("host2")

	// As configured, deploy reaches host2's sshd and cannot write /run/keys.
	// The overrides fix both for this run.
	res := r.run("host1", "--ssh-host", "host1", "--sudo", "--ssh-opts", "-o ConnectionAttempts=2")
	if res.code != 0 {
		t.Fatalf("with overrides: %s", res)
	}
	if n := authCount(t, h2); n != 0 {
		t.Errorf("the overridden address was not used: host2 saw %d logins", n)
	}
	if got := sh(t, h1, "cat /run/keys/token"); got != "s3cret\n" {
		t.Errorf("secret on host1: %q", got)
	}
	calls, _ := h1.RebuildCalls()
	if len(calls) != 1 || calls[0].User != "root" {
		t.Errorf("rebuild through --sudo: %+v", calls)
	}

	// The original's variables: LP_REMOTE_HOST from the environment and
	// LP_REMOTE_USER on the command line, with a line naming the new flag.
	r.env = []string{"LP_REMOTE_HOST=host1"}
	res = r.run("host1:deploy-secrets", "LP_REMOTE_USER=root")
	if res.code != 0 {
		t.Fatalf("LP_* overrides: %s", res)
	}
	for _, want := range []string{"LP_REMOTE_HOST (from the environment) is the original lollypops' override; use --ssh-host",
		"LP_REMOTE_USER (on the command line) is the original lollypops' override; use --ssh-user"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("lacks %q:\n%s", want, res)
		}
	}
	if n := authCount(t, h2); n != 0 {
		t.Errorf("LP_REMOTE_HOST was not used: host2 saw %d logins", n)
	}
	r.env = nil

	// Without the overrides, the inventory's values hold: the run goes to
	// host2, as deploy, who has no account there.
	res = r.run("host1:deploy-secrets")
	if res.code != 3 || !strings.Contains(summaryLine(res, "host1"), "cannot connect to deploy@host2") {
		t.Errorf("without overrides the inventory's address should be used: %s", res)
	}
}
