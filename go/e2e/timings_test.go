package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/report"
)

// --timings and the report show where a run's time went: each step's
// stages, from the connection to the confirmation.
func TestTimings(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	c := guardedHost(f, "host1", 30)
	c.Secrets.Files = []config.Secret{secret("token", "echo token", "/run/keys/token")}
	c.Deployment.HealthChecks = map[string]config.HealthCheck{"up": {Cmd: ptr("true"), Status: 200, Timeout: 5, Interval: 1}}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	path := filepath.Join(t.TempDir(), "run.json")
	res := r.run("--timings", "--report", path, "host1")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var run report.Run
	if err := json.Unmarshal(data, &run); err != nil || run.Version != report.Version || len(run.Hosts) != 1 {
		t.Fatalf("report: %v\n%s", err, data)
	}
	stages := map[string][]string{}
	for _, s := range run.Hosts[0].Steps {
		for _, st := range s.Stages {
			if st.Start.Before(*s.Start) || st.DurationMS < 0 || st.DurationMS > *s.DurationMS+1 {
				t.Errorf("%s: stage %s outside its step: %+v", s.Name, st.Name, st)
			}
			stages[s.Name] = append(stages[s.Name], st.Name)
		}
	}
	for step, want := range map[string][]string{
		"deploy-flake":   {"connect", "flake copy"}, // the lock is taken during the copy
		"deploy-secrets": {"secret token", "connect", "lock", "secret session"},
		"rebuild":        {"connect", "lock", "build", "activation", "reconnect", "health checks", "confirm"},
	} {
		// In this order; more may come between (--report asks the host
		// what it runs after the rebuild, over a connection of its own).
		got := stages[step]
		for _, w := range want {
			i := slices.Index(got, w)
			if i < 0 {
				t.Errorf("%s: stages %q, want %q in this order", step, stages[step], want)
				break
			}
			got = got[i+1:]
		}
	}
	if !slices.Contains(stages["deploy-flake"], "lock") {
		t.Errorf("deploy-flake took no lock: %q", stages["deploy-flake"])
	}
	_, table, ok := strings.Cut(res.stderr, "lollypops: timings (seconds since the run started):\n")
	if !ok {
		t.Fatalf("no timings table:\n%s", res)
	}
	t.Logf("the table:\n%s", table)
	for _, want := range []string{"host1  deploy-flake", "host1    flake copy", "host1    secret session", "host1    activation", "host1    confirm"} {
		found := false
		for _, l := range strings.Split(table, "\n") {
			if strings.Contains(strings.Join(strings.Fields(l), " "), strings.Join(strings.Fields(want), " ")) {
				found = true
			}
		}
		if !found {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
}
