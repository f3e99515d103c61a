package nixeval

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// A flake whose hosts stand in for NixOS configurations: the runner reads
// nothing of a host but config.lollypops.inventory-entry.
const testFlake = `{
  outputs = { self }: let
    host = name: extra: {
      config.lollypops.inventory-entry = { name, flake }:
        builtins.trace "warning: ${name} is a test host" ({ inherit flake; n = name; } // extra);
    };
  in {
    nixosConfigurations = {
      a = host "a" { };
      b = { config.lollypops.inventory-entry = { name, flake }: throw "b is broken"; };
      c = host "c" { big = builtins.genList (i: i) 100; };
      d = { config.services = { }; };
      e = { config.lollypops = { }; };
      "we ird\"\${name}" = host "weird" { };
      never = throw "never evaluated";
    };
  };
}`

func testEvaluator(t *testing.T, flake string) *Evaluator {
	t.Helper()
	nix, err := exec.LookPath("nix")
	if err != nil {
		t.Skip("nix is not installed")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Resolve(context.Background(), nix, dir)
	if err != nil {
		t.Fatal(err)
	}
	return &Evaluator{Nix: nix, Flake: f}
}

func TestEvaluate(t *testing.T) {
	for _, jobs := range []int{1, 2} {
		ev := testEvaluator(t, testFlake)
		ev.Jobs = jobs
		var warnings bytes.Buffer
		ev.Stderr = &warnings
		names := []string{"a", "b", "c", "d", "e", `we ird"${name}`}
		got := map[string]Result{}
		var order []string
		var mu sync.Mutex
		err := ev.Evaluate(context.Background(), names, func(r Result) {
			mu.Lock()
			defer mu.Unlock()
			if _, dup := got[r.Name]; dup {
				t.Errorf("jobs %d: %s reported twice", jobs, r.Name)
			}
			got[r.Name] = r
			order = append(order, r.Name)
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(names) {
			t.Fatalf("jobs %d: results for %v, want %v", jobs, order, names)
		}
		var a struct {
			Flake string `json:"flake"`
			N     string `json:"n"`
		}
		if err := json.Unmarshal(got["a"].Entry, &a); err != nil || a.Flake != ev.Flake.Path || a.N != "a" {
			t.Errorf("jobs %d: a = %s (%v), want flake %s", jobs, got["a"].Entry, err, ev.Flake.Path)
		}
		if e := got["b"].Err; e == nil || e.Error() != "b is broken" {
			t.Errorf("jobs %d: b: error %v, want Nix's message trimmed to \"b is broken\"", jobs, e)
		}
		if got["c"].Err != nil || !strings.Contains(string(got["c"].Entry), "99") {
			t.Errorf("jobs %d: c after the broken b: %+v", jobs, got["c"])
		}
		if !got["d"].NoModule || got["d"].Err != nil {
			t.Errorf("jobs %d: d has no lollypops module: %+v", jobs, got["d"])
		}
		if !got["e"].NoModule || got["e"].Err == nil || !strings.Contains(got["e"].Err.Error(), "another revision") {
			t.Errorf("jobs %d: e has an older module: %+v", jobs, got["e"])
		}
		if r := got[`we ird"${name}`]; r.Err != nil || len(r.Entry) == 0 {
			t.Errorf("jobs %d: a name that needs quoting: %+v", jobs, r)
		}
		for _, h := range []string{"a", "c"} {
			if !strings.Contains(warnings.String(), "warning: "+h+" is a test host") {
				t.Errorf("jobs %d: the configuration's own trace for %s was not passed on: %q", jobs, h, warnings.String())
			}
		}
		if strings.Contains(warnings.String(), "lollypops-eval") || strings.Contains(warnings.String(), "b is broken") {
			t.Errorf("jobs %d: entries or the host's error leaked into the passed-on output: %q", jobs, warnings.String())
		}
	}
}

func TestBrokenFlakeFailsEveryHostOnce(t *testing.T) {
	ev := testEvaluator(t, `{ outputs = { self }: { nixosConfigurations = throw "the flake is broken"; }; }`)
	ev.Jobs = 1
	var got []Result
	ev.Evaluate(context.Background(), []string{"a", "b", "c"}, func(r Result) { got = append(got, r) })
	if len(got) != 3 {
		t.Fatalf("got %d results, want 3", len(got))
	}
	for _, r := range got {
		if r.Err == nil || !strings.Contains(r.Err.Error(), "the flake is broken") {
			t.Errorf("%s: %v, want the flake's error", r.Name, r.Err)
		}
	}
}

func TestStoreRef(t *testing.T) {
	ref := StoreRef("/nix/store/abc-source", "sha256-x+y/z=", "sub/dir/")
	f, ok := parseStoreRef(ref)
	if !ok || f.Path != "/nix/store/abc-source/sub/dir" || f.Ref != ref {
		t.Fatalf("parseStoreRef(%q) = %+v, %v", ref, f, ok)
	}
	for _, bad := range []string{"path:/tmp/x?narHash=a", "path:/nix/store/abc-source", "github:a/b", "path:/nix/store/abc-source?narHash=a&rev=b"} {
		if _, ok := parseStoreRef(bad); ok {
			t.Errorf("parseStoreRef(%q) accepted", bad)
		}
	}
}

func TestTrim(t *testing.T) {
	newer := "error:\n       … while calling the 'throw' builtin\n         at /nix/store/x/flake.nix:3:5:\n\n       error: b is broken\n"
	if got := Trim(newer, nil); got != "b is broken" {
		t.Errorf("Trim(newer Nix) = %q", got)
	}
	old := "error: b is broken\n(use '--show-trace' to show detailed location information)\n"
	if got := Trim(old, nil); got != "b is broken" {
		t.Errorf("Trim(Nix 2.8) = %q", got)
	}
	assertions := "error: \nFailed assertions in nixosConfigurations.h:\n- one\n- two\n"
	if got := Trim(assertions, nil); got != "Failed assertions in nixosConfigurations.h:\n- one\n- two" {
		t.Errorf("Trim(assertions) = %q", got)
	}
	if got := Trim(strings.Repeat("error: x\n", 1)+strings.Repeat("line\n", 30), nil); strings.Count(got, "\n") > 13 {
		t.Errorf("Trim keeps %d lines", strings.Count(got, "\n"))
	}
}

// memCache is a Cache in memory that counts its calls.
type memCache struct {
	mu      sync.Mutex
	results map[string]Result
	printed map[string][]string
	lookups int
}

func newMemCache() *memCache {
	return &memCache{results: map[string]Result{}, printed: map[string][]string{}}
}

func (c *memCache) Lookup(name string, home bool) (Result, []string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lookups++
	r, ok := c.results[name]
	return r, c.printed[name], ok && r.Home == home
}

func (c *memCache) Store(r Result, printed []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.results[r.Name] = r
	c.printed[r.Name] = printed
}

func TestEvaluateWithCache(t *testing.T) {
	ev := testEvaluator(t, testFlake)
	cache := newMemCache()
	ev.Cache = cache
	names := []string{"a", "b", "c", "d", "e"}
	evaluate := func() (map[string]Result, string) {
		t.Helper()
		var warnings bytes.Buffer
		ev.Stderr = &warnings
		got := map[string]Result{}
		var mu sync.Mutex
		if err := ev.Evaluate(context.Background(), names, func(r Result) {
			mu.Lock()
			defer mu.Unlock()
			got[r.Name] = r
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(names) {
			t.Fatalf("results for %d hosts, want %d", len(got), len(names))
		}
		return got, warnings.String()
	}
	first, _ := evaluate()
	// What succeeded is stored: an entry, no module; failures are not:
	// b throws, e has a module of another revision.
	var stored []string
	for n := range cache.results {
		stored = append(stored, n)
	}
	slices.Sort(stored)
	if !slices.Equal(stored, []string{"a", "c", "d"}) {
		t.Errorf("stored %v, want a c d", stored)
	}
	if !slices.ContainsFunc(cache.printed["a"], func(l string) bool { return strings.Contains(l, "warning: a is a test host") }) {
		t.Errorf("a's trace was not stored with it: %q", cache.printed["a"])
	}

	// Served from the cache, with no nix at all; the failures are
	// evaluated again, and fail again.
	ev.Nix = filepath.Join(t.TempDir(), "no-nix")
	second, warnings := evaluate()
	for _, n := range []string{"a", "c", "d"} {
		if r := second[n]; r.Err != nil || string(r.Entry) != string(first[n].Entry) || r.NoModule != first[n].NoModule {
			t.Errorf("%s from the cache: %+v, want %+v", n, r, first[n])
		}
	}
	for _, n := range []string{"b", "e"} {
		if r := second[n]; r.Err == nil || !strings.Contains(r.Err.Error(), "no-nix") {
			t.Errorf("%s: %+v, want it evaluated again (and nix not found)", n, r)
		}
	}
	if !strings.Contains(warnings, "warning: a is a test host") {
		t.Errorf("a's trace was not printed again from the cache: %q", warnings)
	}
}

// Resolve's Locks is the inputs' lock Nix computed when the source's
// flake.lock is not it (an input it lacks is locked anew by every
// evaluation, so its content decides the hosts too), and empty once the
// flake is locked.
func TestResolveLocks(t *testing.T) {
	nix, err := exec.LookPath("nix")
	if err != nil {
		t.Skip("nix is not installed")
	}
	dir := t.TempDir()
	input, fleet := filepath.Join(dir, "input"), filepath.Join(dir, "fleet")
	os.Mkdir(input, 0o755)
	os.Mkdir(fleet, 0o755)
	os.WriteFile(filepath.Join(input, "flake.nix"), []byte(`{ outputs = _: { x = 1; }; }`), 0o644)
	os.WriteFile(filepath.Join(fleet, "flake.nix"), []byte(`{ inputs.input.url = "path:`+input+`"; outputs = { self, input }: { }; }`), 0o644)
	f, err := Resolve(context.Background(), nix, fleet)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.Locks, `"input"`) {
		t.Errorf("without flake.lock: Locks %q, want the input's lock", f.Locks)
	}
	lock := exec.Command(nix, "--extra-experimental-features", "nix-command flakes", "flake", "lock")
	lock.Dir = fleet
	if out, err := lock.CombinedOutput(); err != nil {
		t.Fatalf("nix flake lock: %v\n%s", err, out)
	}
	if f, err = Resolve(context.Background(), nix, fleet); err != nil || f.Locks != "" {
		t.Errorf("locked: Locks %q (%v), want none: the source's flake.lock is the lock", f.Locks, err)
	}
}
