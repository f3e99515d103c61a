package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func code(c int) *int { return &c }

// records of a run over three hosts: one fine, one whose rebuild failed,
// one whose steps never started.
func sample() ([]string, map[string][]string, map[string]map[string]Record) {
	planned := map[string][]string{
		"web-1": {"deploy-flake", "deploy-secrets", "rebuild", "notify"},
		"web-2": {"deploy-flake", "deploy-secrets", "rebuild", "notify"},
		"web-3": {"deploy-flake", "rebuild"},
	}
	flake := "/nix/store/aaaa-source"
	records := map[string]map[string]Record{
		"web-1": {
			"deploy-flake": {Host: "web-1", Step: "deploy-flake", Status: OK, Start: at(0), End: at(100), ExitCode: code(0), Note: "copy", StorePath: flake},
			"deploy-secrets": {Host: "web-1", Step: "deploy-secrets", Status: OK, Start: at(100), End: at(150), ExitCode: code(0), Note: "2 secrets, 1 changed, restarted nginx.service",
				Secrets:        []Secret{{"db", "/run/keys/db"}, {"alice/token", "/home/alice/.token"}},
				ChangedSecrets: []string{"db"}, RestartedUnits: []string{"nginx.service"}},
			"rebuild": {Host: "web-1", Step: "rebuild", Status: OK, Start: at(150), End: at(900), ExitCode: code(0), Note: "switch, 1 secret after activation",
				StorePath: flake, System: "/nix/store/bbbb-nixos-system", Secrets: []Secret{{"late", "/run/keys/late"}},
				ChangedSecrets: []string{"late"}, RestartedUnits: []string{"nginx.service"}, ReloadedUnits: []string{"sshd.service"}},
			"notify": {Host: "web-1", Step: "notify", Status: OK, Start: at(900), End: at(1000), ExitCode: code(0)},
		},
		"web-2": {
			"deploy-flake":   {Host: "web-2", Step: "deploy-flake", Status: OK, Start: at(0), End: at(80), ExitCode: code(0), Note: "copy", StorePath: flake},
			"deploy-secrets": {Host: "web-2", Step: "deploy-secrets", Status: OK, Start: at(80), End: at(120), ExitCode: code(0), Note: "1 secret", Secrets: []Secret{{"db", "/run/keys/db"}}},
			"rebuild": {Host: "web-2", Step: "rebuild", Status: Failed, Start: at(120), End: at(300), ExitCode: code(1),
				Error: "nixos-rebuild switch: ssh: exit status 1", Hint: "the output of nixos-rebuild is above",
				FailedCommand: &Command{Name: "ssh", ExitCode: 1}},
		},
	}
	return []string{"web-1", "web-2", "web-3"}, planned, records
}

func TestBuild(t *testing.T) {
	hosts := Build(sample())
	if len(hosts) != 3 {
		t.Fatalf("%d hosts", len(hosts))
	}
	ok, failed, notRun := hosts[0], hosts[1], hosts[2]

	if ok.Status != HostOK || ok.Duration != time.Second || *ok.DurationMS != 1000 || !ok.Start.Equal(t0) {
		t.Errorf("web-1: %+v", ok)
	}
	if ok.StorePath != "/nix/store/aaaa-source" || ok.System != "/nix/store/bbbb-nixos-system" {
		t.Errorf("web-1 store paths: %q %q", ok.StorePath, ok.System)
	}
	wantSecrets := []Secret{{"db", "/run/keys/db"}, {"alice/token", "/home/alice/.token"}, {"late", "/run/keys/late"}}
	if !reflect.DeepEqual(ok.Secrets, wantSecrets) {
		t.Errorf("web-1 secrets: %+v", ok.Secrets)
	}
	if !slices.Equal(ok.ChangedSecrets, []string{"db", "late"}) || !slices.Equal(ok.RestartedUnits, []string{"nginx.service"}) ||
		!slices.Equal(ok.ReloadedUnits, []string{"sshd.service"}) || !slices.Equal(ok.Steps[1].ChangedSecrets, []string{"db"}) {
		t.Errorf("web-1 rotation: %q %q %q", ok.ChangedSecrets, ok.RestartedUnits, ok.ReloadedUnits)
	}
	if hosts[2].ChangedSecrets == nil || hosts[2].RestartedUnits == nil || hosts[2].ReloadedUnits == nil {
		t.Error("the host's lists are not [] when empty")
	}
	if s := ok.Steps[3]; s.Name != "notify" || s.Task != "web-1:notify" || s.Status != StepOK || *s.DurationMS != 100 || *s.ExitCode != 0 {
		t.Errorf("web-1 notify: %+v", s)
	}

	if failed.Status != HostFailed || *failed.DurationMS != 300 {
		t.Errorf("web-2: %+v", failed)
	}
	rb := failed.Steps[2]
	if rb.Status != StepFailed || *rb.ExitCode != 1 || rb.Error == "" || rb.Hint == "" || rb.FailedCommand.Name != "ssh" {
		t.Errorf("web-2 rebuild: %+v", rb)
	}
	if n := failed.Steps[3]; n.Status != StepNotRun || n.Start != nil || n.ExitCode != nil {
		t.Errorf("web-2 notify: %+v", n)
	}
	if failed.System != "" {
		t.Errorf("web-2 system after a failed rebuild: %q", failed.System)
	}

	if notRun.Status != HostNotRun || notRun.Start != nil || notRun.DurationMS != nil || len(notRun.Steps) != 2 {
		t.Errorf("web-3: %+v", notRun)
	}
	if notRun.Secrets == nil || notRun.Steps[0].Status != StepNotRun {
		t.Errorf("web-3: secrets must be [], not null: %+v", notRun)
	}
}

func TestHostStates(t *testing.T) {
	planned := map[string][]string{"h": {"a", "b"}}
	for _, c := range []struct {
		name    string
		records map[string]Record
		status  string
		detail  string
	}{
		{"all ok", map[string]Record{"a": {Status: OK, Note: "n"}, "b": {Status: OK}}, HostOK, "a (n), b"},
		{"none", nil, HostNotRun, ""},
		{"half", map[string]Record{"a": {Status: OK}}, HostIncomplete, "done: a; not run: b"},
		{"failed", map[string]Record{"a": {Status: Failed, Error: "boom"}}, HostFailed, "a: boom; not run: b"},
		{"killed", map[string]Record{"a": {Status: OK}, "b": {Status: Running, Start: t0}}, HostFailed, "b: interrupted"},
	} {
		hosts := Build([]string{"h"}, planned, map[string]map[string]Record{"h": c.records})
		if h := hosts[0]; h.Status != c.status || h.Detail() != c.detail {
			t.Errorf("%s: %q %q, want %q %q", c.name, h.Status, h.Detail(), c.status, c.detail)
		}
	}
	hosts := Build([]string{"h"}, planned, map[string]map[string]Record{"h": {"b": {Status: Running, Start: t0}}})
	if s := hosts[0].Steps[1]; s.Status != StepInterrupted || s.DurationMS != nil {
		t.Errorf("a killed step: %+v", s)
	}
}

// The summary is rendered from the same hosts as the report.
func TestRender(t *testing.T) {
	var b bytes.Buffer
	Render(&b, Build(sample()), "lollypops: ")
	want := `lollypops: summary: 1 of 3 hosts ok
lollypops:   web-1  ok       1s     deploy-flake (copy), deploy-secrets (2 secrets, 1 changed, restarted nginx.service), rebuild (switch, 1 secret after activation), notify
lollypops:   web-2  failed   300ms  rebuild: nixos-rebuild switch: ssh: exit status 1; not run: notify
lollypops:   web-3  not run  -      
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	_, _, records := sample()
	for _, steps := range records {
		for _, r := range steps {
			if err := Write(dir, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := ReadAll(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, records) {
		t.Errorf("read back:\n%+v\nwant:\n%+v", got, records)
	}
	r, ok, err := Read(dir, "web-2", "rebuild")
	if err != nil || !ok || r.FailedCommand.ExitCode != 1 {
		t.Errorf("Read: %+v %v %v", r, ok, err)
	}
	if _, ok, err := Read(dir, "web-3", "rebuild"); ok || err != nil {
		t.Errorf("Read of a step without a record: %v %v", ok, err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.json")
	os.WriteFile(path, []byte("old"), 0o644)
	run := &Run{Version: Version, Lollypops: "dev", Started: t0, Finished: at(1000), DurationMS: 1000,
		ExitCode: 3, Action: "switch", Tasks: []string{"all"}, Hosts: Build(sample())}
	if err := CheckPath(path); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, run); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != FileMode {
		t.Errorf("mode %v %v", st.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".lollypops-report-*")); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
	data, _ := os.ReadFile(path)
	var back Run
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if back.Version != Version || back.ExitCode != 3 || len(back.Hosts) != 3 || back.Hosts[1].Steps[2].Hint == "" {
		t.Errorf("read back: %+v", back)
	}
	// The field names are the schema's (docs/report.md).
	for _, key := range []string{`"version": 2`, `"duration_ms": 1000`, `"exit_code": 3`, `"interrupted": false`,
		`"store_path": "/nix/store/aaaa-source"`, `"system": "/nix/store/bbbb-nixos-system"`, `"failed_command": {`,
		`"status": "not run"`, `"task": "web-2:rebuild"`, `"secrets": []`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("no %s in\n%s", key, data)
		}
	}
}

func TestCheckPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	for path, want := range map[string]string{
		filepath.Join(dir, "missing", "r.json"): "directory " + filepath.Join(dir, "missing") + " does not exist",
		dir:                                     dir + " is a directory",
		filepath.Join(file, "r.json"):           file + " is not a directory",
		"":                                      "empty path",
	} {
		if err := CheckPath(path); err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %q", path, err, want)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".lollypops-report-*")); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}

// A record's stages reach the report as start and duration, and the
// timings table.
func TestStages(t *testing.T) {
	start := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	rec := Record{Host: "web-1", Step: "deploy-flake", Status: OK, Start: start, End: start.Add(time.Second),
		Stages: []Stage{{Name: "connect", Start: start, End: start.Add(250 * time.Millisecond)},
			{Name: "flake copy", Start: start.Add(300 * time.Millisecond), End: start.Add(900 * time.Millisecond)}}}
	hosts := Build([]string{"web-1"}, map[string][]string{"web-1": {"deploy-flake"}},
		map[string]map[string]Record{"web-1": {"deploy-flake": rec}})
	st := hosts[0].Steps[0].Stages
	if len(st) != 2 || st[1].Name != "flake copy" || st[1].DurationMS != 600 || !st[1].Start.Equal(start.Add(300*time.Millisecond)) {
		t.Fatalf("stages: %+v", st)
	}
	var b strings.Builder
	RenderTimings(&b, hosts, start, "lollypops: ")
	want := `lollypops: timings (seconds since the run started):
lollypops:   host   step / stage  start  duration
lollypops:   web-1  deploy-flake   0.00      1.00
lollypops:   web-1    connect      0.00      0.25
lollypops:   web-1    flake copy   0.30      0.60
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
