package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
)

// A switch to a system without sshd cuts the host off: the deployer cannot
// reach it again, so it never confirms, and the host returns to its
// previous system by itself — sshd with it.
func TestRollbackWhenTheHostCannotBeReachedAgain(t *testing.T) {
	f := newFleet(t, hosts("nosshd")...)
	h := f.Host("nosshd")
	before := systemOf(t, h)
	c := host(f, "nosshd")
	c.Deployment.Rollback = config.Rollback{Enable: true, ConfirmTimeout: 6}
	r := newRunner(t, map[string]*config.Host{"nosshd": c})
	res := r.run("nosshd")
	if res.code != 3 {
		t.Fatalf("want exit 3: %s", res)
	}
	line := summaryLine(res, "nosshd")
	if !strings.Contains(line, "rebuild: rolled back to the previous system: no confirmation from the deployer within 6s (the deployer could not reach it again in time") {
		t.Errorf("summary: %q\n%s", line, res)
	}
	after := systemOf(t, h)
	if after.current != before.current || after.bootDefault != before.bootDefault {
		t.Errorf("not rolled back: %+v -> %+v", before, after)
	}
	// The unconfirmed system never became a generation, nor the boot
	// default: only the running system was tested and returned.
	if !slices.Equal(after.gens, before.gens) {
		t.Errorf("generations: %+v -> %+v", before.gens, after.gens)
	}
	if acts := activations(t, h); !slices.Equal(acts, []string{"test", "test"}) {
		t.Errorf("activations: %q", acts)
	}
	// sshd is back: the host can be deployed to again.
	if res := r.run("nosshd:deploy-secrets"); res.code != 0 {
		t.Errorf("after the rollback: %s", res)
	}
}

// An activation that fails rolls back at once; with rollback disabled the
// host stays on the failed system, as nixos-rebuild leaves it.
func TestRollbackWhenTheActivationFails(t *testing.T) {
	f := newFleet(t, hosts("broken")...)
	h := f.Host("broken")
	before := systemOf(t, h)
	c := host(f, "broken")
	c.Deployment.Rollback.Enable = true
	r := newRunner(t, map[string]*config.Host{"broken": c})
	res := r.run("broken")
	if res.code != 3 || !strings.Contains(summaryLine(res, "broken"), "rolled back to the previous system: switch-to-configuration test failed (exit 2)") {
		t.Fatalf("%s", res)
	}
	if !strings.Contains(res.output(), "Activation script snippet 'fakehost-fail' failed") {
		t.Errorf("the activation's output is not shown:\n%s", res)
	}
	if after := systemOf(t, h); after.current != before.current {
		t.Errorf("not rolled back: %s -> %s", before.current, after.current)
	}

	c.Deployment.Rollback.Enable = false
	r = newRunner(t, map[string]*config.Host{"broken": c})
	res = r.run("broken")
	if res.code != 3 || strings.Contains(res.output(), "rolled back") {
		t.Fatalf("%s", res)
	}
	if after := systemOf(t, h); after.current == before.current {
		t.Error("without rollback the host should stay on the new system, as nixos-rebuild leaves it")
	}
}

// Health checks run after the activation: a command on the host and an
// HTTP GET from the deployer, with retries; one that fails rolls the host
// back and says which check failed and why.
func TestHealthChecks(t *testing.T) {
	f := newFleet(t, hosts("checked")...)
	h := f.Host("checked")
	var healthy atomic.Bool
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		if !healthy.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	c := host(f, "checked")
	c.Deployment.Rollback.Enable = true
	c.Deployment.HealthChecks = map[string]config.HealthCheck{
		"kernel": {Cmd: ptr("grep -q " + deployedKernel + " /run/current-system/kernel"), Status: 200, Timeout: 10, Retries: 0, Interval: 1},
		"web":    {URL: ptr(srv.URL + "/health"), Status: 200, Timeout: 5, Retries: 2, Interval: 1},
	}
	r := newRunner(t, map[string]*config.Host{"checked": c})
	before := systemOf(t, h)

	res := r.run("checked")
	if res.code != 3 {
		t.Fatalf("want a failed check: %s", res)
	}
	want := fmt.Sprintf(`rolled back to the previous system: health check "web" failed (3 attempts): GET %s/health: 503 Service Unavailable, want 200`, srv.URL)
	if !strings.Contains(summaryLine(res, "checked"), want) || hits.Load() != 3 {
		t.Errorf("summary lacks %q (%d requests):\n%s", want, hits.Load(), res)
	}
	if !strings.Contains(res.output(), `health check "kernel" passed`) {
		t.Errorf("the command check did not pass on the new system:\n%s", res)
	}
	if after := systemOf(t, h); after.current != before.current {
		t.Errorf("not rolled back: %s -> %s", before.current, after.current)
	}

	healthy.Store(true)
	res = r.run("checked")
	if res.code != 0 || !strings.Contains(res.output(), "confirmed: checked runs ") {
		t.Fatalf("%s", res)
	}
	if after := systemOf(t, h); after.kernel != deployedKernel {
		t.Errorf("kernel %q", after.kernel)
	}
}
