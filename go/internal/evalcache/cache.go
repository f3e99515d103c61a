// Package evalcache keeps the runner's evaluations of a flake's targets
// across runs, so that a run whose flake has not changed starts no
// `nix eval` for the targets it evaluated before (docs/eval-cache.md).
//
// It holds, per target, what nixeval reports of an evaluation that
// succeeded — the inventory entry as JSON, or the fact that the target
// does not import lollypops' module — with the lines Nix printed while
// evaluating it (its warnings, the configuration's traces), which a cached
// target prints again; and the lists of the flake's target names. Never a
// failure: a target that did not evaluate is evaluated again by every run.
//
// An entry is found under a key of everything that decides it: the
// flake's locked reference (its store path, narHash and dir), and the lock
// of its inputs as Nix computed it when the source's flake.lock lacks an
// input; the runner (lollypops' version, the
// commit it was built from, and for a development build the executable
// itself); the hash of the Nix expression nixeval evaluates; and the nix
// program (its resolved path, size and time). Any change to one of them
// is another key, whose cache starts empty: nothing is ever invalidated
// in place.
//
// The cache holds no secret value: an inventory entry names a secret, its
// path and owner and the command that prints it, never the secret itself
// (package config: the runner runs the command on each deploy).
//
// Layout, under os.UserCacheDir() (XDG_CACHE_HOME, or ~/.cache):
//
//	lollypops/eval/               0700
//	  <key id>/                   0700, one per key; its time is its last use
//	    key.json                  the key, spelled out, for people
//	    targets-<output>.json     the names of nixosConfigurations / homeConfigurations
//	    host-<name hash>.json     a host's evaluation (home-<…> for a home)
//
// Files are 0600, written to a temporary file in the same directory and
// renamed over the entry, so a reader sees an old entry or a new one,
// never half of one. Reading is bounded (maxFile). A file that is missing,
// unreadable, too large, corrupt or of another key is a miss: the cache
// never fails a run. Each Open removes the caches of other keys unused for
// keepFor, and all but the keepKeys most recently used.
package evalcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/lollypops/lollypops/go/internal/nixeval"
)

const (
	// format is the version of the files' layout and meaning; another is
	// another key.
	format = 1
	// keepFor is how long the cache of a key nobody uses stays.
	keepFor = 30 * 24 * time.Hour
	// keepKeys is how many keys' caches stay, the most recently used.
	keepKeys = 16
	// maxFile bounds what one file may hold (an entry with its printed
	// lines, a list of names); a larger one is neither written nor read.
	maxFile = 16 << 20
)

// Cache is the cache of one key: one flake, as this runner and this Nix
// evaluate it. A nil *Cache holds nothing and stores nothing. Its methods
// may be called from several goroutines at once.
type Cache struct {
	dir string
}

var _ nixeval.Cache = (*Cache)(nil)

// Root is the directory that holds every key's cache:
// lollypops/eval under the user's cache directory.
func Root() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "lollypops", "eval"), nil
}

// Open returns the cache of flake f evaluated with the nix program nix,
// under Root. It is nil when there is no cache directory this user alone
// can write: the run then evaluates everything, as with --no-eval-cache.
func Open(nix string, f *nixeval.Flake) *Cache {
	root, err := Root()
	if err != nil {
		return nil
	}
	c, err := OpenIn(root, KeyOf(nix, f))
	if err != nil {
		return nil
	}
	return c
}

// OpenIn returns the cache of key k under root, made if need be, and
// removes the caches of other keys that have not been used for long.
func OpenIn(root string, k Key) (*Cache, error) {
	if err := privateDir(root); err != nil {
		return nil, err
	}
	id := k.ID()
	dir := filepath.Join(root, id)
	if err := privateDir(dir); err != nil {
		return nil, err
	}
	now := time.Now()
	os.Chtimes(dir, now, now) // its last use, for prune
	c := &Cache{dir: dir}
	if _, err := os.Lstat(filepath.Join(dir, "key.json")); err != nil {
		if data, err := json.MarshalIndent(k, "", "  "); err == nil {
			c.write("key.json", append(data, '\n'))
		}
	}
	prune(root, id, now)
	return c, nil
}

// privateDir makes dir (0700) unless it exists, and checks that it is a
// directory of this user that no one else can write to or read: what the
// cache holds decides where a deploy goes.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case !ok || int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s is not this user's", dir)
	case fi.Mode().Perm()&0o077 != 0:
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// Lookup returns a target's cached evaluation (nixeval.Cache).
func (c *Cache) Lookup(name string, home bool) (nixeval.Result, []string, bool) {
	if c == nil {
		return nixeval.Result{}, nil, false
	}
	data, ok := c.read(entryFile(name, home))
	if !ok {
		return nixeval.Result{}, nil, false
	}
	var e entry
	if err := json.Unmarshal(data, &e); err != nil || e.Format != format || e.Name != name || e.Home != home ||
		e.NoModule == (len(e.Entry) != 0) {
		return nixeval.Result{}, nil, false
	}
	return nixeval.Result{Name: name, Home: home, NoModule: e.NoModule, Entry: e.Entry}, e.Printed, true
}

// Store keeps a target's evaluation (nixeval.Cache); a failure is not
// kept.
func (c *Cache) Store(r nixeval.Result, printed []string) {
	if c == nil || r.Err != nil || r.Name == "" || r.NoModule == (len(r.Entry) != 0) {
		return
	}
	data, err := json.Marshal(entry{Format: format, Name: r.Name, Home: r.Home, NoModule: r.NoModule,
		Entry: r.Entry, Printed: printed})
	if err != nil {
		return
	}
	c.write(entryFile(r.Name, r.Home), data)
}

// entry is one target's file.
type entry struct {
	Format   int             `json:"format"`
	Name     string          `json:"name"`
	Home     bool            `json:"home"`
	NoModule bool            `json:"no-module,omitempty"`
	Entry    json.RawMessage `json:"entry,omitempty"`
	// Printed is what Nix printed while evaluating the target.
	Printed []string `json:"printed,omitempty"`
}

func entryFile(name string, home bool) string {
	kind := "host"
	if home {
		kind = "home"
	}
	sum := sha256.Sum256([]byte(name))
	return kind + "-" + hex.EncodeToString(sum[:16]) + ".json"
}

// Names lists the flake's nixosConfigurations (nixeval.Names), from the
// cache when it has them.
func (c *Cache) Names(ctx context.Context, nix string, f *nixeval.Flake) ([]string, error) {
	return c.targets("nixosConfigurations", func() ([]string, error) { return nixeval.Names(ctx, nix, f) })
}

// HomeNames lists the flake's homeConfigurations (nixeval.HomeNames),
// from the cache when it has them.
func (c *Cache) HomeNames(ctx context.Context, nix string, f *nixeval.Flake) ([]string, error) {
	return c.targets("homeConfigurations", func() ([]string, error) { return nixeval.HomeNames(ctx, nix, f) })
}

// targetList is a targets-<output>.json file.
type targetList struct {
	Format int      `json:"format"`
	Output string   `json:"output"`
	Names  []string `json:"names"`
}

func (c *Cache) targets(output string, list func() ([]string, error)) ([]string, error) {
	if c == nil {
		return list()
	}
	file := "targets-" + output + ".json"
	if data, ok := c.read(file); ok {
		var t targetList
		if err := json.Unmarshal(data, &t); err == nil && t.Format == format && t.Output == output && t.Names != nil {
			return t.Names, nil
		}
	}
	names, err := list()
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(targetList{Format: format, Output: output, Names: append([]string{}, names...)})
	if err == nil {
		c.write(file, data)
	}
	return names, nil
}

// read returns a file of the cache, if it is a regular file of at most
// maxFile bytes.
func (c *Cache) read(name string) ([]byte, bool) {
	f, err := os.Open(filepath.Join(c.dir, name))
	if err != nil {
		return nil, false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() > maxFile {
		return nil, false
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil || len(data) > maxFile {
		return nil, false
	}
	return data, true
}

// write replaces a file of the cache atomically: a temporary file (0600)
// in the same directory, renamed over it. It reports nothing: a file not
// written is a miss of a later run.
func (c *Cache) write(name string, data []byte) {
	if len(data) <= maxFile {
		c.writeFile(name, data)
	}
}

func (c *Cache) writeFile(name string, data []byte) error {
	tmp, err := os.CreateTemp(c.dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(c.dir, name))
}

// prune removes the caches of keys other than keep that were last used
// before keepFor, and all but the keepKeys most recently used (keep is
// one of them).
func prune(root, keep string, now time.Time) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	type dir struct {
		name string
		used time.Time
	}
	var dirs []dir
	for _, e := range ents {
		if e.Name() == keep || !e.IsDir() || !isID(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		dirs = append(dirs, dir{e.Name(), fi.ModTime()})
	}
	slices.SortFunc(dirs, func(a, b dir) int { return b.used.Compare(a.used) })
	for i, d := range dirs {
		if i >= keepKeys-1 || now.Sub(d.used) > keepFor {
			os.RemoveAll(filepath.Join(root, d.name))
		}
	}
}
