package closure

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nix-community/go-nix/pkg/storepath"
)

// PathInfo is what the diff needs of one store path: the path and the
// size of its NAR serialisation (what `nix path-info` calls narSize; the
// closure size is the sum over the closure).
type PathInfo struct {
	Path    string `json:"path"`
	NarSize uint64 `json:"narSize"`
}

// entry is the part of one store object info that the diff reads; other
// fields (narHash, references, signatures, …) are ignored.
type entry struct {
	Path    string  `json:"path"`
	NarSize *uint64 `json:"narSize"`
	Valid   *bool   `json:"valid"`
}

// DecodePathInfo reads the output of `nix path-info --json [--recursive]`
// in each shape Nix has printed:
//
//   - Nix ≤ 2.18 and Lix: an array, [{"path": "/nix/store/…", "narSize": N, …}];
//     an invalid path is {"path": …, "valid": false}.
//   - Nix 2.19 to 2.32, and --json-format 1 of later Nix: an object keyed
//     by the absolute path, {"/nix/store/…": {"narSize": N, …}}; an invalid
//     path maps to null. A top-level "storeDir" or "version" key is skipped.
//   - --json-format 2 (Nix 2.33 and later): {"version": 2, "storeDir":
//     "/nix/store", "info": {"<hash>-<name>": {"narSize": N, …}}}; the
//     same wrapper with version 1 and full paths is read too.
//
// An invalid path, a missing narSize, or a path outside /nix/store is an
// error naming the path. The result is in no particular order.
func DecodePathInfo(data []byte) ([]PathInfo, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("nix path-info printed nothing")
	}
	switch data[0] {
	case '[':
		var list []entry
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, fmt.Errorf("nix path-info --json: %v", err)
		}
		out := make([]PathInfo, 0, len(list))
		for _, e := range list {
			p, err := e.info(e.Path)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(data, &obj); err != nil {
			return nil, fmt.Errorf("nix path-info --json: %v", err)
		}
		if raw, ok := obj["info"]; ok {
			return decodeV2(obj, raw)
		}
		return decodeKeyed(obj, "")
	}
	return nil, fmt.Errorf("nix path-info --json: want a JSON array or object, got %q", abbrev(data))
}

// decodeV2 reads --json-format 2: base names under "info" (full paths
// are taken as they are, in case a format 1 is ever wrapped the same way).
func decodeV2(obj map[string]json.RawMessage, info json.RawMessage) ([]PathInfo, error) {
	var version int
	if err := json.Unmarshal(obj["version"], &version); err != nil || (version != 1 && version != 2) {
		return nil, fmt.Errorf("nix path-info --json: an \"info\" object with version %s, want 1 or 2", abbrev(obj["version"]))
	}
	storeDir := storepath.StoreDir
	if raw, ok := obj["storeDir"]; ok {
		if err := json.Unmarshal(raw, &storeDir); err != nil {
			return nil, fmt.Errorf("nix path-info --json: storeDir: %v", err)
		}
	}
	if storeDir != storepath.StoreDir {
		return nil, fmt.Errorf("nix path-info --json: store directory %q, want %s", storeDir, storepath.StoreDir)
	}
	var byName map[string]json.RawMessage
	if err := json.Unmarshal(info, &byName); err != nil {
		return nil, fmt.Errorf("nix path-info --json: info: %v", err)
	}
	return decodeKeyed(byName, storeDir+"/")
}

// decodeKeyed reads an object keyed by prefix+key.
func decodeKeyed(obj map[string]json.RawMessage, prefix string) ([]PathInfo, error) {
	out := make([]PathInfo, 0, len(obj))
	for k, raw := range obj {
		if prefix == "" && !strings.HasPrefix(k, "/") && (k == "storeDir" || k == "version") {
			continue
		}
		path := k
		if !strings.HasPrefix(k, "/") {
			path = prefix + k
		}
		if string(bytes.TrimSpace(raw)) == "null" {
			return nil, fmt.Errorf("%s: not valid in the store (nix path-info)", path)
		}
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("nix path-info --json: %s: %v", path, err)
		}
		p, err := e.info(path)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (e entry) info(path string) (PathInfo, error) {
	if _, err := storepath.FromAbsolutePath(path); err != nil {
		return PathInfo{}, fmt.Errorf("nix path-info --json: %q is not a store path", path)
	}
	if e.Valid != nil && !*e.Valid {
		return PathInfo{}, fmt.Errorf("%s: not valid in the store (nix path-info)", path)
	}
	if e.NarSize == nil {
		return PathInfo{}, fmt.Errorf("nix path-info --json: %s has no narSize", path)
	}
	return PathInfo{Path: path, NarSize: *e.NarSize}, nil
}

// abbrev shortens b for an error message.
func abbrev(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}
