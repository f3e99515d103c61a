package evalcache

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/internal/nixeval"
)

func testKey() Key {
	return Key{Flake: "path:/nix/store/aaaa-source?narHash=sha256-A", Path: "/nix/store/aaaa-source",
		Runner: "lollypops test", Expression: "e", Nix: "/usr/bin/nix 1 2"}
}

func open(t *testing.T, root string, k Key) *Cache {
	t.Helper()
	c, err := OpenIn(root, k)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var hostEntry = json.RawMessage(`{"flake":"/nix/store/aaaa-source","deployment":{"ssh":{"host":"h1"}}}`)

func TestStoreAndLookup(t *testing.T) {
	root := filepath.Join(t.TempDir(), "eval")
	c := open(t, root, testKey())
	c.Store(nixeval.Result{Name: "h1", Entry: hostEntry}, []string{"warning: h1 says hello"})
	c.Store(nixeval.Result{Name: "plain", NoModule: true}, nil)
	c.Store(nixeval.Result{Name: "u@h", Home: true, Entry: json.RawMessage(`{"home":1}`)}, nil)

	// Another run, the same key.
	c = open(t, root, testKey())
	r, printed, ok := c.Lookup("h1", false)
	if !ok || r.Name != "h1" || string(r.Entry) != string(hostEntry) || r.NoModule || r.Home || r.Err != nil {
		t.Errorf("h1: %+v %v", r, ok)
	}
	if !slices.Equal(printed, []string{"warning: h1 says hello"}) {
		t.Errorf("h1's printed lines: %q", printed)
	}
	if r, _, ok := c.Lookup("plain", false); !ok || !r.NoModule || r.Entry != nil {
		t.Errorf("plain: %+v %v", r, ok)
	}
	if r, _, ok := c.Lookup("u@h", true); !ok || !r.Home || string(r.Entry) != `{"home":1}` {
		t.Errorf("u@h: %+v %v", r, ok)
	}
	if _, _, ok := c.Lookup("h2", false); ok {
		t.Error("h2 was never stored")
	}
}

func TestFailuresAreNotStored(t *testing.T) {
	root := t.TempDir()
	c := open(t, root, testKey())
	c.Store(nixeval.Result{Name: "b", Err: errors.New("b is broken")}, nil)
	// A module of another revision: no module, and an error.
	c.Store(nixeval.Result{Name: "e", NoModule: true, Err: errors.New("another revision")}, nil)
	// Neither an entry nor no module: not a result.
	c.Store(nixeval.Result{Name: "x"}, nil)
	for _, n := range []string{"b", "e", "x"} {
		if r, _, ok := c.Lookup(n, false); ok {
			t.Errorf("%s was cached: %+v", n, r)
		}
	}
	files, _ := filepath.Glob(filepath.Join(c.dir, "host-*"))
	if len(files) != 0 {
		t.Errorf("files for failures: %v", files)
	}
}

func TestKeySeparation(t *testing.T) {
	root := t.TempDir()
	c := open(t, root, testKey())
	c.Store(nixeval.Result{Name: "h1", Entry: hostEntry}, nil)
	others := map[string]func(*Key){
		"another narHash":    func(k *Key) { k.Flake = "path:/nix/store/aaaa-source?narHash=sha256-B" },
		"another dir":        func(k *Key) { k.Flake += "&dir=sub" },
		"another lock":       func(k *Key) { k.Locks = "l" },
		"another version":    func(k *Key) { k.Runner = "lollypops 2" },
		"another expression": func(k *Key) { k.Expression = "f" },
		"another nix":        func(k *Key) { k.Nix = "/usr/bin/nix 1 3" },
	}
	for what, change := range others {
		k := testKey()
		change(&k)
		if r, _, ok := open(t, root, k).Lookup("h1", false); ok {
			t.Errorf("%s: hit %+v", what, r)
		}
	}
	// A host is not a home of the same name.
	if r, _, ok := open(t, root, testKey()).Lookup("h1", true); ok {
		t.Errorf("home h1: hit %+v", r)
	}
	if _, _, ok := open(t, root, testKey()).Lookup("h1", false); !ok {
		t.Error("the same key: miss")
	}
}

func TestPermissions(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "lollypops", "eval")
	c := open(t, root, testKey())
	c.Store(nixeval.Result{Name: "h1", Entry: hostEntry}, nil)
	c.targets("nixosConfigurations", func() ([]string, error) { return []string{"h1"}, nil })
	filepath.Walk(filepath.Join(base, "lollypops"), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		if strings.HasPrefix(fi.Name(), ".tmp-") {
			t.Errorf("a temporary file was left: %s", p)
		}
		return nil
	})
	// A directory others can read is made private again.
	os.Chmod(root, 0o755)
	open(t, root, testKey())
	if fi, _ := os.Stat(root); fi.Mode().Perm() != 0o700 {
		t.Errorf("root: mode %v after Open", fi.Mode().Perm())
	}
}

func TestNotThisUsersDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give the directory away")
	}
	root := t.TempDir()
	os.Chown(root, 65534, 65534)
	if _, err := OpenIn(root, testKey()); err == nil {
		t.Error("a directory of another user was used")
	}
}

func TestCorruptEntryIsAMiss(t *testing.T) {
	root := t.TempDir()
	c := open(t, root, testKey())
	c.Store(nixeval.Result{Name: "h1", Entry: hostEntry}, nil)
	c.Store(nixeval.Result{Name: "h2", Entry: hostEntry}, nil)
	c.Store(nixeval.Result{Name: "h3", Entry: hostEntry}, nil)
	c.Store(nixeval.Result{Name: "h4", Entry: hostEntry}, nil)
	file := func(n string) string { return filepath.Join(c.dir, entryFile(n, false)) }
	data, _ := os.ReadFile(file("h1"))
	os.WriteFile(file("h1"), data[:len(data)/2], 0o600)                                   // cut short
	os.WriteFile(file("h2"), []byte(strings.Replace(string(data), "h1", "h9", 1)), 0o600) // another host's
	os.Chmod(file("h3"), 0)                                                               // unreadable (but to root)
	os.Remove(file("h4"))
	os.Mkdir(file("h4"), 0o700) // not a file
	for _, n := range []string{"h1", "h2", "h4"} {
		if r, _, ok := c.Lookup(n, false); ok {
			t.Errorf("%s: hit %+v", n, r)
		}
	}
	if os.Geteuid() != 0 {
		if _, _, ok := c.Lookup("h3", false); ok {
			t.Error("h3: an unreadable file was read")
		}
	}
	// A corrupt entry is replaced by the next evaluation's.
	c.Store(nixeval.Result{Name: "h1", Entry: hostEntry}, nil)
	if _, _, ok := c.Lookup("h1", false); !ok {
		t.Error("h1: the entry stored over the corrupt one is a miss")
	}
}

func TestTooLargeIsNeitherWrittenNorRead(t *testing.T) {
	root := t.TempDir()
	c := open(t, root, testKey())
	big := json.RawMessage(`"` + strings.Repeat("x", maxFile) + `"`)
	c.Store(nixeval.Result{Name: "big", Entry: big}, nil)
	if _, err := os.Stat(filepath.Join(c.dir, entryFile("big", false))); err == nil {
		t.Error("an entry over maxFile was written")
	}
	c.Store(nixeval.Result{Name: "h1", Entry: hostEntry}, nil)
	f, _ := os.OpenFile(filepath.Join(c.dir, entryFile("h1", false)), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(make([]byte, maxFile))
	f.Close()
	if _, _, ok := c.Lookup("h1", false); ok {
		t.Error("an entry over maxFile was read")
	}
}

// Every write replaces the file by a rename: a reader that opened the old
// file reads it whole.
func TestWriteIsAtomic(t *testing.T) {
	c := open(t, t.TempDir(), testKey())
	c.Store(nixeval.Result{Name: "h1", Entry: hostEntry}, nil)
	old, err := os.Open(filepath.Join(c.dir, entryFile("h1", false)))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	c.Store(nixeval.Result{Name: "h1", Entry: json.RawMessage(`{"new":true}`)}, nil)
	var e entry
	if err := json.NewDecoder(old).Decode(&e); err != nil || string(e.Entry) != string(hostEntry) {
		t.Errorf("the file open before the write: %+v, %v", e, err)
	}
	if r, _, _ := c.Lookup("h1", false); string(r.Entry) != `{"new":true}` {
		t.Errorf("after the write: %s", r.Entry)
	}
	tmps, _ := filepath.Glob(filepath.Join(c.dir, ".tmp-*"))
	if len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

func TestNames(t *testing.T) {
	c := open(t, t.TempDir(), testKey())
	calls := 0
	list := func(names []string, err error) func() ([]string, error) {
		return func() ([]string, error) { calls++; return names, err }
	}
	if _, err := c.targets("nixosConfigurations", list(nil, errors.New("no"))); err == nil {
		t.Fatal("the failure was not returned")
	}
	got, err := c.targets("nixosConfigurations", list([]string{"a", "b"}, nil))
	if err != nil || !slices.Equal(got, []string{"a", "b"}) || calls != 2 {
		t.Fatalf("after a failure, listed again: %v %v (%d calls)", got, err, calls)
	}
	got, _ = c.targets("nixosConfigurations", list([]string{"z"}, nil))
	if !slices.Equal(got, []string{"a", "b"}) || calls != 2 {
		t.Errorf("cached: %v (%d calls)", got, calls)
	}
	// An output the flake lacks lists nothing, which is kept too.
	c.targets("homeConfigurations", list(nil, nil))
	got, _ = c.targets("homeConfigurations", list([]string{"z"}, nil))
	if len(got) != 0 || calls != 3 {
		t.Errorf("no homes: %v (%d calls)", got, calls)
	}
	// A nil cache lists every time.
	var none *Cache
	none.targets("nixosConfigurations", list(nil, nil))
	none.targets("nixosConfigurations", list(nil, nil))
	if calls != 5 {
		t.Errorf("a nil cache: %d calls, want 5", calls)
	}
	if _, _, ok := none.Lookup("a", false); ok {
		t.Error("a nil cache hit")
	}
	none.Store(nixeval.Result{Name: "a", Entry: hostEntry}, nil)
}

func TestPrune(t *testing.T) {
	root := t.TempDir()
	now := time.Now()
	var ids []string
	// keepKeys+3 keys, used one hour apart, the first most recently; the
	// last one also more than keepFor ago.
	for i := range keepKeys + 3 {
		k := testKey()
		k.Flake += string(rune('a' + i))
		c := open(t, root, k)
		used := now.Add(-time.Duration(i) * time.Hour)
		if i == keepKeys+2 {
			used = now.Add(-keepFor - time.Hour)
		}
		os.Chtimes(c.dir, used, used)
		ids = append(ids, k.ID())
	}
	old := testKey()
	old.Flake += "old"
	oldDir := filepath.Join(root, old.ID())
	os.Mkdir(oldDir, 0o700)
	longAgo := now.Add(-keepFor - time.Hour)
	os.Chtimes(oldDir, longAgo, longAgo)
	os.WriteFile(filepath.Join(root, "not-a-key"), nil, 0o600)

	// Opening the oldest of them again: it is kept, and the keepKeys-1
	// most recently used others.
	k := testKey()
	k.Flake += string(rune('a' + keepKeys + 2))
	open(t, root, k)
	var left []string
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	want := append(slices.Clone(ids[:keepKeys-1]), ids[keepKeys+2], "not-a-key")
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("left %v\nwant %v", left, want)
	}
}
