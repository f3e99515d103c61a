package planfile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/internal/closure"
)

func example(t *testing.T) *File {
	t.Helper()
	salt, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Sum(salt, "web-1", "db", "/run/keys/db", []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	return &File{Version: Version, Created: time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC), Salt: salt, Action: "switch",
		Hosts: map[string]*Host{"web-1": {
			Flake: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-source", System: "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-nixos-system-web-1",
			Current:      "/nix/store/cccccccccccccccccccccccccccccccc-nixos-system-web-1",
			Diff:         &closure.Diff{Version: 1, Added: []closure.Package{{Name: "htop", After: []string{"3.3.0"}}}},
			Secrets:      []Secret{{Name: "db", Path: "/run/keys/db", UploadAt: "pre-activation", Checksum: sum, Changes: true}},
			RestartUnits: []string{"postgresql.service"}, ReloadUnits: []string{},
		}}}
}

// A plan written is read back as it was, from a file only its owner
// reads, without a temporary file left beside it.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plan.json")
	f := example(t)
	if err := Write(file, f); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left beside the plan: %v", entries)
	}
	got, err := Read(file)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Errorf("read back:\n%+v\nwant\n%+v", got, f)
	}
	data, _ := os.ReadFile(file)
	if strings.Contains(string(data), "hunter2") {
		t.Error("the plan holds the value")
	}
	// Writing again replaces it.
	f.Action = "boot"
	if err := Write(file, f); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(file); err != nil || got.Action != "boot" {
		t.Errorf("rewritten: %v %v", got, err)
	}
}

// A file that is no plan of this version is one line naming the file,
// with a hint.
func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	good, _ := os.ReadFile(func() string {
		p := filepath.Join(dir, "good.json")
		if err := Write(p, example(t)); err != nil {
			t.Fatal(err)
		}
		return p
	}())
	for _, c := range []struct{ name, text, want string }{
		{"missing", "", "no such file or directory"},
		{"garbage", "{not json", "not a plan: invalid character"},
		{"noversion", `{"hosts": {}}`, "not a plan: no version"},
		{"future", `{"version": 2}`, "version 2, this lollypops reads version 1"},
		{"unknown", strings.Replace(string(good), `"action"`, `"extra": 1, "action"`, 1), `unknown field "extra"`},
		{"nohosts", `{"version": 1, "salt": "` + strings.Repeat("ab", 32) + `", "action": "switch", "hosts": {}}`, "no host"},
		{"badsystem", strings.Replace(string(good), `"system": "/nix/store/`, `"system": "/tmp/`, 1), `system "/tmp/`},
		{"badsalt", strings.Replace(string(good), `"salt": "`, `"salt": "zz`, 1), "salt"},
	} {
		file := filepath.Join(dir, c.name+".json")
		if c.name != "missing" {
			os.WriteFile(file, []byte(c.text), 0o600)
		}
		_, err := Read(file)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "plan "+file+": ") || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s: %q, want one line naming the file with %q", c.name, msg, c.want)
		}
		if h, ok := err.(interface{ Hint() string }); !ok || h.Hint() == "" {
			t.Errorf("%s: no hint", c.name)
		}
	}
}

// The checksum is keyed: another salt, host, name or path gives another
// one; it is not the value's plain SHA-256.
func TestSum(t *testing.T) {
	s1, _ := NewSalt()
	s2, _ := NewSalt()
	base, _ := Sum(s1, "h", "n", "/p", []byte("v"))
	for _, other := range [][]string{{s2, "h", "n", "/p"}, {s1, "h2", "n", "/p"}, {s1, "h", "n2", "/p"}, {s1, "h", "n", "/p2"}} {
		if sum, _ := Sum(other[0], other[1], other[2], other[3], []byte("v")); sum == base {
			t.Errorf("%v: same checksum", other[1:])
		}
	}
	if again, _ := Sum(s1, "h", "n", "/p", []byte("v")); again != base || !strings.HasPrefix(base, "hmac-sha256:") {
		t.Errorf("%q, %q", base, again)
	}
	if _, err := Sum("abcd", "h", "n", "/p", nil); err == nil {
		t.Error("a short salt was accepted")
	}
}

// The rendering names each host's change, its secrets that change and
// their units; a host without a change or secrets says so; text from the
// flake cannot reach the terminal raw.
func TestRender(t *testing.T) {
	f := example(t)
	same := "/nix/store/dddddddddddddddddddddddddddddddd-nixos-system-web-2"
	f.Hosts["web-2\x1b[2J"] = &Host{System: same, Current: same, Secrets: []Secret{}, RestartUnits: []string{}, ReloadUnits: []string{}}
	f.Hosts["web-10"] = &Host{System: same, Current: "", Reboot: true,
		Secrets: []Secret{{Name: "a", Path: "/run/keys/a", Checksum: "hmac-sha256:00"}}, RestartUnits: []string{}, ReloadUnits: []string{}}
	var b strings.Builder
	if err := Render(&b, f); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"web-1: switch, new system\n  running  /nix/store/cccccccccccccccccccccccccccccccc-nixos-system-web-1\n",
		"  + htop: 3.3.0\n",
		`  secrets: 1, 1 change: "db" (/run/keys/db)` + "\n  restarts (if running): postgresql.service\n",
		"web-2\\x1b[2J: switch, no system change\n",
		"  secrets: none\n",
		"web-10: switch, new system, new kernel or initrd (in use after a reboot)\n  running  (none)\n",
		"  secrets: 1, none changes\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rendering lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "web-1:") > strings.Index(got, "web-10:") || strings.Contains(got, "\x1b") {
		t.Errorf("order or escapes:\n%s", got)
	}
}
