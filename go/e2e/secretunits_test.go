package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/secrets"
)

// waitingSystem is the system of host "waiting", which it also boots
// first: app.service is ordered after (after, wants) the unit of the
// secret db-pass, as the NixOS module lets a service be; the secret
// "old" has a unit and no service.
var waitingSystem = fakehost.System{SecretWaiters: []fakehost.SecretWaiter{
	{Secret: "db-pass", Path: "/run/keys/db-pass", Service: "app"},
	{Secret: "old", Path: "/run/keys/old"},
}}

// A service ordered after its secret's unit starts only once the secret
// is there: not before the first deploy, at once after it (having seen
// the file), and after a power cut, which empties /run/keys, only after
// the next deploy. A secret that a later deploy removes (no longer
// configured, remove-stale) takes its unit down.
func TestSecretUnits(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "waiting", System: waitingSystem})
	h := f.Host("waiting")
	dbUnit, _ := secrets.UnitName("db-pass")
	oldUnit, _ := secrets.UnitName("old")
	state := func(unit string) string {
		return strings.TrimSpace(sh(t, h, "/run/current-system/sw/bin/systemctl is-active '"+unit+"' || true"))
	}
	// eventually polls, with a generous deadline: no timing is asserted.
	eventually := func(unit, want, when string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for state(unit) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s is %s, want %s", when, unit, state(unit), want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	saw := func() string {
		return strings.TrimSpace(sh(t, h, "cat /run/fakehost/units/app.service/saw 2>/dev/null || true"))
	}
	// waits checks that app is not running and its secret's unit waits,
	// for a while (no timing asserted: nothing may start it meanwhile).
	waits := func(when string) {
		t.Helper()
		eventually(dbUnit, "activating", when)
		for range 5 {
			if got := state("app.service"); got != "inactive" {
				t.Fatalf("%s: app.service is %s before its secret is there (it saw: %s)", when, got, saw())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	waits("booted, never deployed")

	const value = "DB-PASS-VALUE"
	c := host(f, "waiting")
	c.Secrets.Files = []config.Secret{secret("db-pass", "printf "+value, "/run/keys/db-pass"), secret("old", "echo old", "/run/keys/old")}
	res := newRunner(t, map[string]*config.Host{"waiting": c}).run("waiting")
	if res.code != 0 {
		t.Fatalf("first deploy: %s", res)
	}
	eventually("app.service", "active", "after the first deploy")
	want := fmt.Sprintf("/run/keys/db-pass present, %d bytes", len(value))
	if got := saw(); got != want {
		t.Errorf("app saw %q at its start, want %q", got, want)
	}
	eventually(dbUnit, "active", "after the first deploy")
	eventually(oldUnit, "active", "after the first deploy")
	if logs := sh(t, h, "cat /var/log/fakehost/units/*.log"); strings.Contains(logs, value) || strings.Contains(res.output(), value) {
		t.Error("a unit's log or the output holds the secret's value")
	}

	// A power cut empties /run: app waits again, until the next deploy.
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	if got := saw(); got != "" {
		t.Fatalf("after the power cut app already saw %q", got)
	}
	waits("after a power cut")
	res = newRunner(t, map[string]*config.Host{"waiting": c}).run("waiting")
	if res.code != 0 {
		t.Fatalf("deploy after the power cut: %s", res)
	}
	eventually("app.service", "active", "after the deploy that followed the power cut")
	if got := saw(); got != want {
		t.Errorf("app saw %q at its start after the reboot, want %q", got, want)
	}
	eventually(oldUnit, "active", "after the second deploy")

	// "old" is no longer configured: the deploy removes its file, and its
	// unit goes down; db-pass's unit and app stay.
	c.Secrets.Files, c.Secrets.RemoveStale = c.Secrets.Files[:1], true
	res = newRunner(t, map[string]*config.Host{"waiting": c}).run("waiting:deploy-secrets")
	if res.code != 0 || !strings.Contains(res.output(), "removed stale secret /run/keys/old") {
		t.Fatalf("stale removal: %s", res)
	}
	eventually(oldUnit, "inactive", "after its secret was removed")
	if a, d := state("app.service"), state(dbUnit); a != "active" || d != "active" {
		t.Errorf("after another secret was removed: app.service %s, %s %s", a, dbUnit, d)
	}
}
