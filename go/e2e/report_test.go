package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
)

// runReport is the run report as docs/report.md documents it (version 1),
// written out here rather than taken from internal/report, so that a
// renamed field fails the tests.
type runReport struct {
	Version     int       `json:"version"`
	Lollypops   string    `json:"lollypops"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	DurationMS  *int64    `json:"duration_ms"`
	ExitCode    *int      `json:"exit_code"`
	Interrupted *bool     `json:"interrupted"`
	Action      string    `json:"action"`
	Tasks       []string  `json:"tasks"`
	Error       string    `json:"error"`
	Hint        string    `json:"hint"`
	Hosts       []struct {
		Name       string         `json:"name"`
		Status     string         `json:"status"`
		Start      *time.Time     `json:"start"`
		DurationMS *int64         `json:"duration_ms"`
		StorePath  string         `json:"store_path"`
		System     string         `json:"system"`
		Secrets    []reportSecret `json:"secrets"`
		Steps      []reportStep   `json:"steps"`
	} `json:"hosts"`
}

type reportSecret struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

type reportStep struct {
	Name          string     `json:"name"`
	Task          string     `json:"task"`
	Status        string     `json:"status"`
	Start         *time.Time `json:"start"`
	DurationMS    *int64     `json:"duration_ms"`
	ExitCode      *int       `json:"exit_code"`
	Error         string     `json:"error"`
	Hint          string     `json:"hint"`
	Note          string     `json:"note"`
	FailedCommand *struct {
		Name     string `json:"name"`
		ExitCode int    `json:"exit_code"`
	} `json:"failed_command"`
	StorePath string         `json:"store_path"`
	System    string         `json:"system"`
	Secrets   []reportSecret `json:"secrets"`
}

func readReport(t *testing.T, path string) (*runReport, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	var r runReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, data)
	}
	if r.Version != 2 || r.Lollypops == "" || r.ExitCode == nil || r.Interrupted == nil || r.DurationMS == nil ||
		r.Started.IsZero() || r.Finished.Before(r.Started) || r.Tasks == nil || r.Hosts == nil {
		t.Errorf("report header: %s", data)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("report mode: %v %v", st.Mode(), err)
	}
	return &r, data
}

func stepNames(steps []reportStep) []string {
	var names []string
	for _, s := range steps {
		names = append(names, s.Name)
	}
	return names
}

// Two hosts with secrets, one of which fails its rebuild: the report tells
// each step's status, exit code, error and hint, what was deployed where,
// and the secrets written by name and path, never their values. The
// summary says the same.
func TestRunReport(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2")...)
	pass := newPassStore(t)
	poison := fmt.Sprintf("POISON-%x", rand.Uint64())
	pass.insert("poison", []byte(poison+"-from-pass\n"))
	file := filepath.Join(t.TempDir(), "value")
	os.WriteFile(file, []byte(poison+"-from-file"), 0o600)

	hs := map[string]*config.Host{}
	for _, name := range []string{"host1", "host2"} {
		c := host(f, name)
		c.Tasks = append(c.Tasks, "notify")
		c.ExtraTasks = map[string]config.ExtraTask{
			"notify": {Desc: "Say it is done", Dir: ".", Deps: []string{}, Cmds: []string{"echo deployed {{.HOSTNAME}}"}},
		}
		hs[name] = c
	}
	late := secret("late", "cat "+file, "/run/keys/late")
	late.UploadAt = config.PostActivation
	hs["host1"].Secrets.Files = []config.Secret{
		secret("a", "pass poison", "/run/keys/a"),
		secret("b", "cat "+file, "/run/keys/b"),
		late,
	}
	hs["host2"].Secrets.Files = []config.Secret{secret("c", "cat "+file, "/run/keys/c")}
	if err := f.Host("host2").SetRebuildExit(5); err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, hs)
	r.env = append(pass.env, "REBUILD_ACTION=test")
	path := filepath.Join(t.TempDir(), "run.json")
	res := r.run("--report", path, "all")
	if res.code != 3 {
		t.Fatalf("exit %d, want 3\n%s", res.code, res)
	}
	rep, data := readReport(t, path)
	t.Logf("the report (go test -v shows it):\n%s", data)

	// The values were deployed: the report could have held them.
	if got := sh(t, f.Host("host1"), "cat /run/keys/a /run/keys/late"); got != poison+"-from-pass\n"+poison+"-from-file" {
		t.Fatalf("host1's secrets: %q", got)
	}
	if strings.Contains(string(data), poison) {
		t.Errorf("a secret value is in the report:\n%s", data)
	}

	if *rep.ExitCode != 3 || *rep.Interrupted || rep.Action != "test" || !reflect.DeepEqual(rep.Tasks, []string{"all"}) || rep.Error != "" {
		t.Errorf("report: %s", data)
	}
	if len(rep.Hosts) != 2 || rep.Hosts[0].Name != "host1" || rep.Hosts[1].Name != "host2" {
		t.Fatalf("hosts: %s", data)
	}
	want := []string{"check-vars", "deploy-flake", "deploy-secrets", "rebuild", "notify"}
	h1, h2 := rep.Hosts[0], rep.Hosts[1]

	current, err := f.Host("host1").CurrentSystem(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h1.Status != "ok" || h1.Start == nil || h1.DurationMS == nil || h1.StorePath != flake || h1.System != current || !strings.HasPrefix(current, "/nix/store/") {
		t.Errorf("host1: %s, %s, store path %q (want %q), system %q (want %q)", h1.Name, h1.Status, h1.StorePath, flake, h1.System, current)
	}
	if want := []reportSecret{{"a", "/run/keys/a"}, {"b", "/run/keys/b"}, {"late", "/run/keys/late"}}; !reflect.DeepEqual(h1.Secrets, want) {
		t.Errorf("host1's secrets: %+v, want %+v", h1.Secrets, want)
	}
	if !reflect.DeepEqual(stepNames(h1.Steps), want) {
		t.Errorf("host1's steps: %q", stepNames(h1.Steps))
	}
	for _, s := range h1.Steps {
		if s.Status != "ok" || s.Task != "host1:"+s.Name || s.Start == nil || s.DurationMS == nil || s.ExitCode == nil || *s.ExitCode != 0 || s.Error != "" {
			t.Errorf("host1 %s: %+v", s.Name, s)
		}
	}
	if s := h1.Steps[3]; s.Note != "test, 1 secret after activation, 1 changed" || s.System != current || !reflect.DeepEqual(s.Secrets, []reportSecret{{"late", "/run/keys/late"}}) {
		t.Errorf("host1 rebuild: %+v", s)
	}

	if h2.Status != "failed" || h2.StorePath != flake || h2.System != "" || !reflect.DeepEqual(h2.Secrets, []reportSecret{{"c", "/run/keys/c"}}) {
		t.Errorf("host2: %+v", h2)
	}
	if !reflect.DeepEqual(stepNames(h2.Steps), want) {
		t.Fatalf("host2's steps: %q", stepNames(h2.Steps))
	}
	rb := h2.Steps[3]
	if rb.Status != "failed" || rb.ExitCode == nil || *rb.ExitCode != 1 || rb.Error != "nixos-rebuild test: ssh: exit status 5" ||
		!strings.HasPrefix(rb.Hint, "the output of nixos-rebuild is above") || rb.Start == nil || rb.DurationMS == nil ||
		rb.FailedCommand == nil || rb.FailedCommand.Name != "ssh" || rb.FailedCommand.ExitCode != 5 {
		t.Errorf("host2 rebuild: %+v", rb)
	}
	if n := h2.Steps[4]; n.Status != "not run" || n.Start != nil || n.ExitCode != nil || n.Error != "" {
		t.Errorf("host2 notify: %+v", n)
	}

	// The summary is made from the same data.
	if got := summaryLine(res, "host2"); got != "host2 failed "+durationWord(got)+" rebuild: "+rb.Error+"; not run: notify" {
		t.Errorf("summary: %q", got)
	}
	if got := summaryLine(res, "host1"); !strings.HasPrefix(got, "host1 ok") || !strings.HasSuffix(got, "rebuild (test, 1 secret after activation, 1 changed), notify") {
		t.Errorf("summary: %q", got)
	}
	if !strings.Contains(res.stderr, "lollypops: summary: 1 of 2 hosts ok") {
		t.Errorf("%s", res)
	}

	// An extra task that fails: its own exit code, its start and duration.
	hs["host1"].ExtraTasks["notify"] = config.ExtraTask{Desc: "fails", Dir: ".", Deps: []string{}, Cmds: []string{"true", "exit 7"}}
	r = newRunner(t, map[string]*config.Host{"host1": hs["host1"]})
	r.env = pass.env
	if res := r.run("--report", path, "host1:notify"); res.code != 3 {
		t.Fatalf("exit %d\n%s", res.code, res)
	}
	rep, data = readReport(t, path)
	if len(rep.Hosts) != 1 || rep.Action != "switch" || !reflect.DeepEqual(stepNames(rep.Hosts[0].Steps), []string{"notify"}) {
		t.Fatalf("%s", data)
	}
	if n := rep.Hosts[0].Steps[0]; n.Status != "failed" || *n.ExitCode != 7 || n.Error != "exit status 7" || n.Start == nil || n.DurationMS == nil {
		t.Errorf("failed extra task: %+v", n)
	}
}

// durationWord is the duration column of a summary line.
func durationWord(line string) string {
	if f := strings.Fields(line); len(f) > 2 {
		return f[2]
	}
	return ""
}

// A report path that cannot be written is refused before any host is
// touched, with one line that names it.
func TestRunReportUnwritable(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	r := newRunner(t, map[string]*config.Host{"host1": host(f, "host1")})
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o600)
	for _, path := range []string{filepath.Join(t.TempDir(), "missing", "run.json"), filepath.Join(notDir, "run.json")} {
		res := r.run("--report", path, "host1")
		if res.code != 2 || !strings.HasPrefix(res.stderr, "lollypops: --report "+path+": ") ||
			!strings.Contains(res.stderr, "lollypops: hint: give --report a file in an existing directory you can write to; nothing was run") {
			t.Errorf("%s", res)
		}
	}
	if n := authCount(t, f.Host("host1")); n != 0 {
		t.Errorf("the host was contacted %d times", n)
	}
	if calls, _ := f.Host("host1").RebuildCalls(); len(calls) != 0 {
		t.Errorf("the host was rebuilt")
	}
}

// An interrupted run writes its report before it exits: what ran, what
// failed, what never started.
func TestRunReportInterrupted(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	c := host(f, "host1")
	started := filepath.Join(t.TempDir(), "started")
	c.Secrets.Files = []config.Secret{secret("slow", "touch "+started+"; sleep 60; echo v", "/run/keys/slow")}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	path := filepath.Join(t.TempDir(), "run.json")
	res := r.runCtx(context.Background(), func(cmd *exec.Cmd) {
		waitFor(t, func() bool { _, err := os.Stat(started); return err == nil })
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	}, "--report", path, "host1")
	if res.code != 130 {
		t.Fatalf("exit %d, want 130\n%s", res.code, res)
	}
	rep, data := readReport(t, path)
	if *rep.ExitCode != 130 || !*rep.Interrupted || len(rep.Hosts) != 1 || rep.Hosts[0].Status != "failed" {
		t.Fatalf("%s", data)
	}
	steps := rep.Hosts[0].Steps
	if !reflect.DeepEqual(stepNames(steps), []string{"check-vars", "deploy-flake", "deploy-secrets", "rebuild"}) {
		t.Fatalf("steps: %s", data)
	}
	if s := steps[2]; s.Status != "failed" || s.Error == "" || *s.ExitCode != 1 || len(s.Secrets) != 0 {
		t.Errorf("deploy-secrets: %+v", s)
	}
	if s := steps[3]; s.Status != "not run" {
		t.Errorf("rebuild: %+v", s)
	}
	if got := summaryLine(res, "host1"); !strings.HasPrefix(got, "host1 failed") || !strings.Contains(got, "deploy-secrets: "+steps[2].Error) {
		t.Errorf("summary: %q", got)
	}
	sh(t, f.Host("host1"), "! test -e /run/keys/slow")
}
