package evalcache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"

	"github.com/lollypops/lollypops/go/internal/nixeval"
	"github.com/lollypops/lollypops/go/internal/version"
)

// Key is what decides a target's evaluation, but for the target itself.
type Key struct {
	// Flake is the flake's locked reference:
	// path:/nix/store/…-source?narHash=…[&dir=…].
	Flake string `json:"flake"`
	// Path is the flake's directory in the store, which each entry names.
	Path string `json:"path"`
	// Locks is the hash of the lock of the flake's inputs as Nix computed
	// it, when that is not the source's flake.lock (nixeval.Flake.Locks).
	Locks string `json:"locks,omitempty"`
	// Runner is lollypops' version, and what tells builds of one version
	// apart.
	Runner string `json:"runner"`
	// Expression is the hash of the Nix expression nixeval evaluates
	// each target with.
	Expression string `json:"expression"`
	// Nix is the nix program: its resolved path, size and time.
	Nix string `json:"nix"`
}

// ID names the key's directory: a hash of the key.
func (k Key) ID() string {
	data, _ := json.Marshal(struct {
		Format int `json:"format"`
		Key
	}{format, k})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

func isID(name string) bool {
	if len(name) != 32 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}

// KeyOf is the key of flake f, evaluated with the nix program nix by this
// runner.
func KeyOf(nix string, f *nixeval.Flake) Key {
	k := Key{Flake: f.Ref, Path: f.Path, Runner: runner(), Expression: expression(), Nix: program(nix)}
	if f.Locks != "" {
		k.Locks = hash(f.Locks)
	}
	return k
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// expression is the hash of nixeval's expression, with placeholders for
// what changes from run to run (the nonce) and from flake to flake.
func expression() string {
	return hash(nixeval.Expression("/nix/store/00000000000000000000000000000000-source", "nonce", []string{"name"}))
}

// runner is lollypops' version and the commit it was built from; for a
// build of no release or of a modified tree (which share a version), the
// executable's path, size and time too: every build is another runner.
func runner() string {
	id := "lollypops " + version.Version
	dev := version.Version == "dev"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				id += " " + s.Value
			case "vcs.modified":
				if s.Value == "true" {
					id += " modified"
					dev = true
				}
			}
		}
	}
	if dev {
		if exe, err := os.Executable(); err == nil {
			id += " " + file(exe)
		}
	}
	return id
}

// program identifies the nix program: the file it resolves to, which on
// NixOS is in the store, with the version in its name.
func program(nix string) string {
	p, err := exec.LookPath(nix)
	if err != nil {
		return nix
	}
	return file(p)
}

// file identifies a file by its resolved path, size and modification time.
func file(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	fi, err := os.Stat(path)
	if err != nil {
		return path
	}
	return fmt.Sprintf("%s %d %d", path, fi.Size(), fi.ModTime().UnixNano())
}
