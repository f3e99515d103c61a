package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// rotationReport is the part of the run report about rotated secrets
// (docs/report.md).
type rotationReport struct {
	Hosts []struct {
		Name           string         `json:"name"`
		ChangedSecrets []string       `json:"changed_secrets"`
		RestartedUnits []string       `json:"restarted_units"`
		ReloadedUnits  []string       `json:"reloaded_units"`
		Steps          []rotationStep `json:"steps"`
	} `json:"hosts"`
}

type rotationStep struct {
	Name           string   `json:"name"`
	Note           string   `json:"note"`
	ChangedSecrets []string `json:"changed_secrets"`
	RestartedUnits []string `json:"restarted_units"`
}

// A secret whose value changes restarts and reloads exactly its units,
// once they run; one whose value stays restarts nothing. The output, the
// summary and the report name the secrets and the units, never a value.
func TestSecretRotation(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "rotated", HTTP: true})
	h := f.Host("rotated")
	dir := t.TempDir()
	value := func(name, v string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := host(f, "rotated")
	web := secret("web", "cat "+filepath.Join(dir, "web"), "/run/keys/web")
	web.RestartUnits, web.ReloadUnits = []string{"httpd.service"}, []string{"sshd.service"}
	app := secret("app", "cat "+filepath.Join(dir, "app"), "/run/keys/app")
	app.RestartUnits = []string{"app.service"}
	late := secret("late", "cat "+filepath.Join(dir, "late"), "/run/keys/late")
	late.UploadAt, late.RestartUnits = config.PostActivation, []string{"worker.service", "app.service"}
	plain := secret("plain", "echo plain", "/run/keys/plain")
	// Its owner is created by the activation: written for now without
	// it, its unit is restarted once it has it, after the activation.
	owned := secret("owned", "echo owned", "/run/keys/owned")
	owned.Owner, owned.Group, owned.RestartUnits = "svc", "svc", []string{"cache.service"}
	h.SetActivationHook("id svc >/dev/null 2>&1 || useradd -r -U svc")
	c.Secrets.Files = []config.Secret{app, late, owned, plain, web}
	value("web", "WEB-VALUE-1")
	value("app", "APP-VALUE")
	value("late", "LATE-VALUE")
	r := newRunner(t, map[string]*config.Host{"rotated": c})
	pid := func() string { return strings.TrimSpace(sh(t, h, "cat /run/fakehost/httpd.main-pid")) }
	count := func(unit, what string) int {
		return strings.Count(sh(t, h, "cat /run/fakehost/units/"+unit+"/"+what+" 2>/dev/null || true"), "x")
	}
	noValues := func(res result, values ...string) {
		t.Helper()
		for _, v := range values {
			sum := fmt.Sprintf("%x", sha256.Sum256([]byte(v)))
			if strings.Contains(res.output(), v) || strings.Contains(res.output(), sum) {
				t.Errorf("the output holds the value %q or its checksum", v)
			}
		}
	}

	// The first deploy writes every secret for the first time: all
	// changed, but only running units are touched. Before the activation
	// httpd and app.service do not exist yet (the activation starts them,
	// with the new secrets), sshd runs: reloaded. After it, late's units
	// run: restarted.
	res := r.run("rotated")
	if res.code != 0 {
		t.Fatalf("first deploy: %s", res)
	}
	for _, want := range []string{
		"[rotated:deploy-secrets] reloaded sshd.service: secret \"web\" changed",
		"[rotated:deploy-secrets] not restarted or reloaded, as they do not run: app.service, httpd.service",
		"[rotated:rebuild] restarted worker.service, app.service, cache.service: secrets \"late\", \"owned\" changed",
	} {
		if !strings.Contains(res.output(), want) {
			t.Errorf("output lacks %q\n%s", want, res)
		}
	}
	if got := summaryLine(res, "rotated"); !strings.Contains(got, "deploy-secrets (4 secrets, 1 after activation, 3 changed, reloaded sshd.service)") ||
		!strings.Contains(got, "rebuild (switch, 1 secret after activation, 1 owner set after activation, 2 changed, restarted worker.service, app.service, cache.service)") {
		t.Errorf("summary: %q", got)
	}
	if count("sshd.service", "reloads") != 1 || count("worker.service", "restarts") != 1 || count("app.service", "restarts") != 1 ||
		count("cache.service", "restarts") != 1 {
		t.Errorf("after the first deploy: sshd reloaded %d times, worker restarted %d, app %d",
			count("sshd.service", "reloads"), count("worker.service", "restarts"), count("app.service", "restarts"))
	}
	noValues(res, "WEB-VALUE-1", "APP-VALUE", "LATE-VALUE")

	// web rotates: httpd restarts (a new main PID), sshd reloads; the
	// others are unchanged and touch nothing.
	before := pid()
	value("web", "WEB-VALUE-2")
	report := filepath.Join(t.TempDir(), "run.json")
	res = r.run("--report", report, "rotated:deploy-secrets")
	if res.code != 0 {
		t.Fatalf("rotation: %s", res)
	}
	if got := sh(t, h, "cat /run/keys/web"); got != "WEB-VALUE-2" {
		t.Errorf("web: %q", got)
	}
	if after := pid(); after == before || after == "" {
		t.Errorf("httpd was not restarted: main PID %s, %s before", after, before)
	}
	if n, w, a := count("sshd.service", "reloads"), count("worker.service", "restarts"), count("app.service", "restarts"); n != 2 || w != 1 || a != 1 {
		t.Errorf("sshd reloaded %d times (want 2), worker restarted %d (1), app %d (1)", n, w, a)
	}
	if got := summaryLine(res, "rotated"); !strings.HasSuffix(got, "deploy-secrets (5 secrets, 1 changed, restarted httpd.service, reloaded sshd.service)") {
		t.Errorf("summary: %q", got)
	}
	if !strings.Contains(res.output(), `[rotated:deploy-secrets] restarted httpd.service: secret "web" changed`) {
		t.Errorf("output:\n%s", res)
	}
	noValues(res, "WEB-VALUE-1", "WEB-VALUE-2", "APP-VALUE", "LATE-VALUE")
	var rep rotationReport
	data, _ := os.ReadFile(report)
	if err := json.Unmarshal(data, &rep); err != nil || len(rep.Hosts) != 1 {
		t.Fatalf("report: %v\n%s", err, data)
	}
	rh := rep.Hosts[0]
	i := slices.IndexFunc(rh.Steps, func(s rotationStep) bool { return s.Name == "deploy-secrets" })
	if !slices.Equal(rh.ChangedSecrets, []string{"web"}) || !slices.Equal(rh.RestartedUnits, []string{"httpd.service"}) ||
		!slices.Equal(rh.ReloadedUnits, []string{"sshd.service"}) || i < 0 || !slices.Equal(rh.Steps[i].ChangedSecrets, []string{"web"}) ||
		!slices.Equal(rh.Steps[i].RestartedUnits, []string{"httpd.service"}) {
		t.Errorf("report: %s", data)
	}
	if strings.Contains(string(data), "WEB-VALUE") {
		t.Error("the report holds a value")
	}

	// Nothing changes: nothing restarts.
	before = pid()
	res = r.run("--report", report, "rotated:deploy-secrets")
	if res.code != 0 || pid() != before || count("sshd.service", "reloads") != 2 || count("app.service", "restarts") != 1 ||
		count("worker.service", "restarts") != 1 || count("cache.service", "restarts") != 1 {
		t.Errorf("unchanged secrets restarted something: %s", res)
	}
	if got := summaryLine(res, "rotated"); !strings.HasSuffix(got, "deploy-secrets (5 secrets)") {
		t.Errorf("summary: %q", got)
	}
	data, _ = os.ReadFile(report)
	if err := json.Unmarshal(data, &rep); err != nil || len(rep.Hosts[0].ChangedSecrets) != 0 || rep.Hosts[0].RestartedUnits == nil {
		t.Errorf("report: %v %s", err, data)
	}

	// A restart that fails fails the host's step, naming the unit and the
	// secret; the secret is written all the same.
	if err := h.SetFailingUnits("app.service"); err != nil {
		t.Fatal(err)
	}
	value("app", "APP-VALUE-2")
	res = r.run("rotated:deploy-secrets")
	if res.code != 3 || !strings.Contains(res.output(),
		`lollypops: restarting app.service failed (secret "app" changed); the new secrets are written on rotated`) ||
		!strings.Contains(res.output(), "Job for app.service failed") {
		t.Errorf("failed restart: %s", res)
	}
	if got := sh(t, h, "cat /run/keys/app"); got != "APP-VALUE-2" {
		t.Errorf("app: %q", got)
	}
	noValues(res, "APP-VALUE-2")
}
