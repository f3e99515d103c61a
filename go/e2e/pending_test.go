//go:build linux

package e2e

import (
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// A secret whose group the activation would create, in its owner's home:
// alice's primary group is users, as on NixOS, where every normal user is
// in it. Written before the activation, and the rebuild then fails, the
// file stays as it was written: readable by alice alone, not by users.
// The deployer says exactly how it was written.
func TestPendingSecretReadableByItsOwnerOnly(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "host1", Users: []fakehost.UserSpec{{Name: "alice"}}})
	h := f.Host("host1")
	sh(t, h, "getent group users >/dev/null || groupadd users; usermod -g users alice")
	c := host(f, "host1")
	s := secret("app", "echo alice-app-key", "/home/alice/app.key")
	s.Owner, s.Group, s.Mode = "alice", "appgroup", "0440"
	c.Secrets.Files = []config.Secret{s}
	h.SetRebuildExit(1)
	res := newRunner(t, map[string]*config.Host{"host1": c}).run("host1")
	if res.code != 3 {
		t.Fatalf("want the rebuild to fail: %s", res)
	}
	if got := sh(t, h, "stat -c '%a %U:%G' /home/alice/app.key"); got != "400 alice:users\n" {
		t.Errorf("the pending file is %q, want 400 alice:users: the users group must not read it", strings.TrimSpace(got))
	}
	if want := "/home/alice/app.key: group appgroup does not exist yet; written as alice:users 400"; !strings.Contains(res.output(), want) {
		t.Errorf("output lacks %q:\n%s", want, res)
	}
	if strings.Contains(res.output(), "written owned by root") {
		t.Errorf("the deployer says the file is root's:\n%s", res)
	}
}
