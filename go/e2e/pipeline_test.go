package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/report"
)

// Every run that deploys goes through one pipeline (package deploy), also
// when a flake's hosts arrive one by one as their evaluations end: the
// schedule's flags (-C, --batch/--max-failures, --failfast) and the
// overrides work there as they do with an inventory file.
func TestFlakePipeline(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2", "host3")...)
	systems, configs := tokenHosts(t, f)
	// host2's secret command fails.
	c := host(f, "host2")
	c.Secrets.Files = []config.Secret{secret("token", "echo no such entry >&2; exit 3", "/run/keys/token")}
	configs["host2"] = entryConfig(t, c)
	r := flakeRunner(t, systems, configs)
	reportOf := func(path string) *report.Run {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var run report.Run
		if err := json.Unmarshal(data, &run); err != nil {
			t.Fatal(err)
		}
		return &run
	}
	status := func(run *report.Run) map[string]string {
		out := map[string]string{}
		for _, h := range run.Hosts {
			out[h.Name] = h.Status
		}
		return out
	}
	clear := func() {
		for _, h := range f.Hosts() {
			sh(t, h, "rm -f /run/keys/token")
		}
	}

	// --batch 1 --max-failures 0: host1's batch passes, host2's fails,
	// host3's never starts.
	clear()
	rep := filepath.Join(t.TempDir(), "batch.json")
	res := r.run("--report", rep, "--batch", "1", "--on", "host*", "deploy-secrets")
	if res.code != 3 || !strings.Contains(res.stderr, "rollout stopped after batch 2 of 3: 1 hosts failed, more than --max-failures 0; not started: host3") {
		t.Fatalf("--batch 1 on a flake:\n%s", res)
	}
	if got := status(reportOf(rep)); got["host1"] != report.HostOK || got["host2"] != report.HostFailed || got["host3"] != report.HostNotRun {
		t.Errorf("--batch 1: %v", got)
	}
	if out, _ := f.Host("host3").Exec(t.Context(), "cat", "/run/keys/token"); len(out) != 0 {
		t.Errorf("host3 got its secret although its batch never started: %q", out)
	}

	// --failfast, one host at a time: nothing starts after host2 failed.
	clear()
	res = r.run("--failfast", "-C", "1", "--on", "host*", "deploy-secrets")
	if res.code != 3 || !strings.Contains(summaryLine(res, "host3"), "not run") || !strings.Contains(summaryLine(res, "host1"), "ok") {
		t.Fatalf("--failfast -C 1 on a flake:\n%s", res)
	}

	// -C 1: the hosts' steps never overlap; without it, they run at once.
	clear()
	for _, args := range [][]string{{"-C", "1"}, {}} {
		rep := filepath.Join(t.TempDir(), "c.json")
		res = r.run(append(append([]string{"--report", rep}, args...), "host1:deploy-secrets", "host3:deploy-secrets", "-p")...)
		if res.code != 0 {
			t.Fatalf("%q:\n%s", args, res)
		}
		type span struct{ start, end time.Time }
		var spans []span
		for _, h := range reportOf(rep).Hosts {
			if h.Start == nil || h.DurationMS == nil {
				t.Fatalf("%q: %s has no times", args, h.Name)
			}
			spans = append(spans, span{*h.Start, h.Start.Add(time.Duration(*h.DurationMS) * time.Millisecond)})
		}
		if len(spans) != 2 {
			t.Fatalf("%q: %d hosts", args, len(spans))
		}
		overlap := spans[0].start.Before(spans[1].end) && spans[1].start.Before(spans[0].end)
		if len(args) > 0 && overlap {
			t.Errorf("-C 1: the two hosts ran at once: %v", spans)
		}
	}

	// Overrides, checked against the run's hosts before anything starts,
	// and applied to each host as it arrives.
	res = r.run("--ssh-host", "127.0.0.9", "all")
	if res.code != 2 || !strings.Contains(res.stderr, `--ssh-host "127.0.0.9": the run touches 3 hosts; say which one`) {
		t.Errorf("--ssh-host without a host on a flake:\n%s", res)
	}
	res = r.run("--ssh-opts", "-o ConnectTimeout=5 -p 1", "host1:deploy-secrets")
	if res.code != 3 || !strings.Contains(res.output(), "port 1: Connection refused") {
		t.Errorf("--ssh-opts on a flake's host did not apply:\n%s", res)
	}
}
