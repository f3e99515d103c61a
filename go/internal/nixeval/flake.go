// Package nixeval evaluates a flake's hosts for the runner: each host's
// inventory entry (nix/entry.nix, offered by the NixOS module as
// config.lollypops.inventory-entry), in pure `nix eval` processes that run
// in parallel, each over a chunk of hosts, streaming every host's entry as
// soon as it is evaluated. A host whose evaluation throws fails alone: the
// others of its chunk are evaluated again in a new process.
package nixeval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
)

// Flake is the flake the hosts come from.
type Flake struct {
	// Ref is the locked reference every evaluation uses:
	// path:/nix/store/…-source?narHash=…[&dir=…], so that each one sees
	// the same files and the same flake.lock, with no network.
	Ref string
	// Path is the flake's directory in the store, which deploy-flake
	// copies to the hosts: the source's root, or its ?dir= below it.
	Path string
	// Locks is the lock of the flake's inputs as Nix computed it, as
	// JSON (nix flake metadata's "locks"), when it is not the source's
	// flake.lock: when that lacks an input, which Nix then locks anew on
	// every evaluation. Empty when the source's flake.lock is the lock,
	// and for a store reference taken as is.
	Locks string
}

const storeDir = "/nix/store/"

// Resolve turns what --flake names into a locked flake. A reference the
// app wrote (path: of a store path, with its narHash) is taken as is;
// anything else (".", a directory, git+file:…) is locked by
// `nix flake metadata`, which copies it to the store.
func Resolve(ctx context.Context, nix, ref string) (*Flake, error) {
	if f, ok := parseStoreRef(ref); ok {
		return f, nil
	}
	cmd := exec.CommandContext(ctx, nix, nixArgs("flake", "metadata", "--json", "--no-write-lock-file", ref)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("--flake %s: nix flake metadata failed: %s", ref, Trim(stderr.String(), err))}
	}
	var md struct {
		Path   string `json:"path"`
		Locked struct {
			NarHash string `json:"narHash"`
			Dir     string `json:"dir"`
		} `json:"locked"`
		Original struct {
			Dir string `json:"dir"`
		} `json:"original"`
		Locks json.RawMessage `json:"locks"`
	}
	if err := json.Unmarshal(out, &md); err != nil || !strings.HasPrefix(md.Path, storeDir) || md.Locked.NarHash == "" {
		return nil, &Error{Msg: fmt.Sprintf("--flake %s: unexpected output of nix flake metadata: %.200s", ref, out)}
	}
	dir := md.Locked.Dir
	if dir == "" {
		dir = md.Original.Dir
	}
	f := storeFlake(md.Path, md.Locked.NarHash, dir)
	if len(md.Locks) > 0 {
		lock, _ := os.ReadFile(filepath.Join(f.Path, "flake.lock"))
		if !sameJSON(md.Locks, lock) {
			f.Locks = string(md.Locks)
		}
	}
	return f, nil
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// StoreRef is the reference the app passes for a flake whose source is at
// store path root (with its narHash) and whose flake.nix is in dir below
// it ("" for the root).
func StoreRef(root, narHash, dir string) string {
	return storeFlake(root, narHash, dir).Ref
}

func storeFlake(root, narHash, dir string) *Flake {
	q := url.Values{}
	q.Set("narHash", narHash)
	path := root
	dir = strings.Trim(dir, "/")
	if dir != "" {
		q.Set("dir", dir)
		path = root + "/" + dir
	}
	return &Flake{Ref: "path:" + root + "?" + q.Encode(), Path: path}
}

// parseStoreRef reads path:/nix/store/…?narHash=…[&dir=…].
func parseStoreRef(ref string) (*Flake, bool) {
	rest, ok := strings.CutPrefix(ref, "path:"+storeDir)
	if !ok {
		return nil, false
	}
	p, query, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(query)
	if err != nil || q.Get("narHash") == "" || p == "" || strings.Contains(p, "/") {
		return nil, false
	}
	for k := range q {
		if k != "narHash" && k != "dir" {
			return nil, false
		}
	}
	return storeFlake(storeDir+p, q.Get("narHash"), q.Get("dir")), true
}

// Names lists the flake's nixosConfigurations, without evaluating any.
func Names(ctx context.Context, nix string, f *Flake) ([]string, error) {
	return names(ctx, nix, f, "nixosConfigurations")
}

// HomeNames lists the flake's homeConfigurations, none when it has none.
func HomeNames(ctx context.Context, nix string, f *Flake) ([]string, error) {
	return names(ctx, nix, f, "homeConfigurations")
}

func names(ctx context.Context, nix string, f *Flake, output string) ([]string, error) {
	cmd := exec.CommandContext(ctx, nix, nixArgs("eval", "--json", "--no-write-lock-file",
		f.Ref+"#"+output, "--apply", "builtins.attrNames")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && strings.Contains(stderr.String(), "does not provide attribute") {
		return nil, nil // an output the flake lacks lists nothing
	}
	if err != nil {
		return nil, &Error{Msg: "listing the flake's " + output + ": " + Trim(stderr.String(), err)}
	}
	var names []string
	if err := json.Unmarshal(out, &names); err != nil {
		return nil, &Error{Msg: fmt.Sprintf("listing the flake's %s: unexpected output %.200s", output, out)}
	}
	return names, nil
}

// Error is a failure to read the flake itself (not one host's).
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// nixArgs turns on the features every command here needs: the user may
// have enabled them for their own `nix run` only, on its command line.
func nixArgs(args ...string) []string {
	return append([]string{"--extra-experimental-features", "nix-command flakes"}, args...)
}
