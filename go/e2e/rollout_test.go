package e2e

import (
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
)

// --batch deploys batch after batch; a batch whose failures pass
// --max-failures stops the rollout: the other hosts are never touched and
// are listed as not started.
func TestBatchRolloutStopsAtItsThreshold(t *testing.T) {
	f := newFleet(t, hosts("bad", "good", "host1", "host2")...)
	inv := map[string]*config.Host{}
	for _, n := range []string{"bad", "good", "host1", "host2"} {
		c := host(f, n)
		c.Tasks = []string{config.TaskDeploySecrets}
		cmd := "echo ok"
		if n == "bad" {
			cmd = "false"
		}
		c.Secrets.Files = []config.Secret{secret("s", cmd, "/run/keys/s")}
		inv[n] = c
	}
	r := newRunner(t, inv)
	res := r.run("--batch", "2", "all")
	if res.code != 3 {
		t.Fatalf("want exit 3: %s", res)
	}
	if !strings.Contains(res.stderr, "lollypops: rollout stopped after batch 1 of 2: 1 hosts failed, more than --max-failures 0; not started: host1, host2") {
		t.Errorf("no stop line:\n%s", res)
	}
	if !strings.HasPrefix(summaryLine(res, "good"), "good ok") || !strings.HasPrefix(summaryLine(res, "bad"), "bad failed") {
		t.Errorf("first batch:\n%s", res)
	}
	for _, n := range []string{"host1", "host2"} {
		if s := summaryLine(res, n); !strings.HasPrefix(s, n+" not run") {
			t.Errorf("%s: %q\n%s", n, s, res)
		}
		if a := authCount(t, f.Host(n)); a != 0 {
			t.Errorf("%s was touched (%d logins)", n, a)
		}
	}

	// With a threshold the failure stays within, every batch runs.
	res = r.run("--batch", "50%", "--max-failures", "1", "all")
	if res.code != 3 || strings.Contains(res.stderr, "rollout stopped") {
		t.Fatalf("want every batch: %s", res)
	}
	for _, n := range []string{"good", "host1", "host2"} {
		if s := summaryLine(res, n); !strings.HasPrefix(s, n+" ok") {
			t.Errorf("%s: %q\n%s", n, s, res)
		}
	}
}
