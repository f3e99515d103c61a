package closure

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/nixbase32"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sp is a store path with a made-up but valid hash, derived from build
// and name: the same build and name give the same path.
func sp(build, name string) string {
	sum := sha256.Sum256([]byte(build + "/" + name))
	return "/nix/store/" + nixbase32.EncodeToString(sum[:20]) + "-" + name
}

// closureOf builds the Paths of a System: name → size, all of one build
// unless the name is "build:name".
func closureOf(build string, sizes map[string]uint64) []PathInfo {
	var out []PathInfo
	for name, size := range sizes {
		b := build
		if i := strings.IndexByte(name, ':'); i >= 0 {
			b, name = name[:i], name[i+1:]
		}
		out = append(out, PathInfo{Path: sp(b, name), NarSize: size})
	}
	return out
}

const (
	KiB = 1024
	MiB = 1024 * KiB
)

// before and after are a typical NixOS update: a kernel bump, a package
// added and one removed, version changes (one name with two versions),
// rebuilds with the same versions, and paths that stay.
func before() System {
	return System{
		Toplevel: sp("old", "nixos-system-host1-24.05.20240601.abcdef"),
		Kernel:   sp("old", "linux-6.6.30") + "/bzImage",
		Initrd:   sp("old", "initrd-linux-6.6.30") + "/initrd",
		Paths: closureOf("old", map[string]uint64{
			"nixos-system-host1-24.05.20240601.abcdef": 12 * KiB,
			"linux-6.6.30":                 11 * MiB,
			"linux-6.6.30-modules":         98 * MiB,
			"initrd-linux-6.6.30":          14 * MiB,
			"hello-2.12.1":                 240 * KiB,
			"hello-2.12.1-man":             12 * KiB,
			"python3.11-requests-2.31.0":   600 * KiB,
			"openssl-3.0.13":               6 * MiB,
			"openssl-3.0.13-bin":           900 * KiB,
			"openssl-1.1.1w":               5 * MiB,
			"glibc-2.39-52":                30 * MiB,
			"glibc-2.39-52-bin":            3 * MiB,
			"perl-5.38.2":                  60 * MiB,
			"etc":                          300 * KiB,
			"unit-sshd.service":            2 * KiB,
			"same:X-Restart-Triggers-sshd": 1 * KiB,
			"same:source":                  40 * MiB,
			"source":                       2 * MiB,
			"same:bash-5.2p26":             1 * MiB,
			"same:unit-getty-.service":     1 * KiB,
			"nixos-system-host1-24.05.drv": 3 * KiB,
		}),
	}
}

func after() System {
	return System{
		Toplevel: sp("new", "nixos-system-host1-24.05.20240608.123456"),
		Kernel:   sp("new", "linux-6.6.31") + "/bzImage",
		Initrd:   sp("new", "initrd-linux-6.6.31") + "/initrd",
		Paths: closureOf("new", map[string]uint64{
			"nixos-system-host1-24.05.20240608.123456": 12 * KiB,
			"linux-6.6.31":                 11*MiB + 200*KiB,
			"linux-6.6.31-modules":         99 * MiB,
			"initrd-linux-6.6.31":          14 * MiB,
			"htop-3.3.0":                   420 * KiB,
			"python3.11-requests-2.32.3":   610 * KiB,
			"openssl-3.0.14":               6*MiB + 4*KiB,
			"openssl-3.0.14-bin":           900 * KiB,
			"openssl-1.1.1w":               5 * MiB,
			"glibc-2.39-52":                30*MiB + 64*KiB,
			"glibc-2.39-52-bin":            3 * MiB,
			"old:perl-5.38.2":              60 * MiB,
			"perl-5.40.0":                  62 * MiB,
			"etc":                          302 * KiB,
			"unit-sshd.service":            2 * KiB,
			"same:X-Restart-Triggers-sshd": 1 * KiB,
			"same:source":                  40 * MiB,
			"source":                       2*MiB + 1*KiB,
			"same:bash-5.2p26":             1 * MiB,
			"same:unit-getty-.service":     1 * KiB,
		}),
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/closure -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs; run go test ./internal/closure -update and review the diff\n got:\n%s", name, got)
	}
}

func TestGolden(t *testing.T) {
	rebuiltKernel := after()
	rebuiltKernel.Kernel = sp("rebuilt", "linux-6.6.30") + "/bzImage"
	rebuiltKernel.Initrd = before().Initrd
	noKernel := before()
	noKernel.Kernel, noKernel.Initrd = "", ""
	for _, c := range []struct {
		name          string
		before, after System
	}{
		{"update", before(), after()},
		{"same", before(), before()},
		{"first", System{}, after()},
		{"kernel-rebuilt", before(), rebuiltKernel},
		{"downgrade", after(), before()},
		{"no-kernel", noKernel, noKernel},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := Compare(c.before, c.after)
			if err != nil {
				t.Fatal(err)
			}
			var text, js bytes.Buffer
			if err := d.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if err := d.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name+".txt", text.Bytes())
			golden(t, c.name+".json", js.Bytes())
		})
	}
}

// TestCompareUpdate checks the update case field by field, so that a
// golden file rewritten with -update cannot hide a wrong classification.
func TestCompareUpdate(t *testing.T) {
	d, err := Compare(before(), after())
	if err != nil {
		t.Fatal(err)
	}
	names := func(ps []Package) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.Name+":"+strings.Join(p.Before, ",")+">"+strings.Join(p.After, ","))
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct{ what, got, want string }{
		{"added", names(d.Added), "htop:>3.3.0"},
		{"removed", names(d.Removed), "hello:2.12.1>"},
		{"changed", names(d.Changed), "initrd-linux:6.6.30>6.6.31 linux:6.6.30>6.6.31 nixos-system-host1:24.05.20240601.abcdef>24.05.20240608.123456 " +
			"openssl:3.0.13>3.0.14 perl:>5.40.0 python3.11-requests:2.31.0>2.32.3"},
		{"rebuilt", names(d.Rebuilt), "etc:> glibc:2.39-52>2.39-52 source:> unit-sshd.service:>"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s\nwant %s", c.what, c.got, c.want)
		}
	}
	if !d.Kernel.Changed || !d.Initrd.Changed {
		t.Errorf("kernel/initrd changed: %v %v", d.Kernel.Changed, d.Initrd.Changed)
	}
	// The .drv is not counted; the sizes are the sums.
	if d.Before.Paths != 20 || d.After.Paths != 20 {
		t.Errorf("paths %d → %d, want 20 → 20", d.Before.Paths, d.After.Paths)
	}
	var sum uint64
	for _, p := range before().Paths {
		if !strings.HasSuffix(p.Path, ".drv") {
			sum += p.NarSize
		}
	}
	if d.Before.Size != sum || d.SizeDelta != int64(d.After.Size)-int64(sum) {
		t.Errorf("sizes %d → %d (%d), want before %d", d.Before.Size, d.After.Size, d.SizeDelta, sum)
	}
	if d.Rebuilt[1].SizeDelta != 64*KiB {
		t.Errorf("glibc size delta %d", d.Rebuilt[1].SizeDelta)
	}
}

func TestCompareRejects(t *testing.T) {
	bad := before()
	bad.Paths = append(bad.Paths, PathInfo{Path: "/usr/lib/libc.so"})
	if _, err := Compare(bad, after()); err == nil || !strings.Contains(err.Error(), "current system") || !strings.Contains(err.Error(), "/usr/lib/libc.so") {
		t.Errorf("got %v", err)
	}
	bad = after()
	bad.Toplevel = "/run/current-system"
	if _, err := Compare(before(), bad); err == nil || !strings.Contains(err.Error(), "new system") {
		t.Errorf("got %v", err)
	}
}

// TestJSONShape pins the JSON field names and that lists are never null.
func TestJSONShape(t *testing.T) {
	d, err := Compare(before(), before())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := d.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "before", "after", "sizeDelta", "kernel", "initrd", "added", "removed", "changed", "rebuilt"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, buf.String())
		}
	}
	if m["version"] != float64(FormatVersion) {
		t.Errorf("version %v", m["version"])
	}
	for _, k := range []string{"added", "removed", "changed", "rebuilt"} {
		if _, ok := m[k].([]any); !ok {
			t.Errorf("%s is %v, want a list", k, m[k])
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		5 * MiB: "5.0 MiB", 3 << 30: "3.0 GiB", 5 << 40: "5.0 TiB", 5000 << 40: "5000.0 TiB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
	if got := showDelta(8*KiB - 1); got != "" {
		t.Errorf("showDelta below 8 KiB: %q", got)
	}
	if got := showDelta(-8 * KiB); got != ", -8.0 KiB" {
		t.Errorf("showDelta(-8 KiB) = %q", got)
	}
}
