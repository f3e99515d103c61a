package closure

import (
	"slices"
	"strings"
	"testing"
)

const (
	pHello = "/nix/store/bd68cm2jxnd5c4hbz7hvwpraswa20zy7-hello-2.12.1"
	pLinux = "/nix/store/59pgq61gdh53hkqyba0wvg3xkgixxhd7-linux-6.6.30"
)

func sortedInfos(ps []PathInfo) []PathInfo {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b PathInfo) int { return strings.Compare(a.Path, b.Path) })
	return ps
}

func TestDecodePathInfo(t *testing.T) {
	want := []PathInfo{{pLinux, 288}, {pHello, 1048576}}
	for _, c := range []struct{ name, json string }{
		// Nix 2.8 (and ≤ 2.18, Lix): an array, as printed on this machine.
		{"array", `[{"path":"` + pLinux + `","narHash":"sha256-2PpswuJfGqukg+CZJKCo5llrqNx0FboTfuG1KDj/qNU=","narSize":288,"references":[],` +
			`"deriver":"/nix/store/svv3yl34zh89qhwg8xz23yjyq8j3rzm1-linux-6.6.30.drv","registrationTime":1796181531,"ultimate":true},` +
			`{"path":"` + pHello + `","narHash":"sha256-Sfyf/fDLLxnDHOZKRwvGn9cy0v7VJ6Nu+UIwH7z7vLU=","narSize":1048576,"references":["` + pLinux + `"],` +
			`"signatures":["cache.nixos.org-1:abc="],"ca":null}]`},
		// Nix 2.19 to 2.32: an object keyed by path, pretty-printed on a terminal.
		{"object", "{\n  \"" + pLinux + "\": {\n    \"ca\": null,\n    \"deriver\": null,\n    \"narHash\": \"sha256-2Pps=\",\n    \"narSize\": 288,\n" +
			"    \"references\": [],\n    \"registrationTime\": 1796181531,\n    \"signatures\": [],\n    \"ultimate\": true\n  },\n" +
			"  \"" + pHello + "\": {\"narSize\": 1048576, \"references\": [\"" + pLinux + "\"]}\n}\n"},
		// --json-format 1 of Nix 2.33 and later: the same, with version and storeDir.
		{"format-1", `{"` + pLinux + `":{"version":1,"storeDir":"/nix/store","narSize":288,"narHash":"sha256:x"},` +
			`"` + pHello + `":{"version":1,"storeDir":"/nix/store","narSize":1048576}}`},
		{"format-1-top-level-store-dir", `{"storeDir":"/nix/store","version":1,"` + pLinux + `":{"narSize":288},"` + pHello + `":{"narSize":1048576}}`},
		// --json-format 2: base names under "info".
		{"wrapped-format-1", `{"version":1,"storeDir":"/nix/store","info":{"` + pLinux + `":{"narSize":288},"` + pHello + `":{"narSize":1048576}}}`},
		{"format-2", `{"version":2,"storeDir":"/nix/store","info":{"` + strings.TrimPrefix(pLinux, "/nix/store/") +
			`":{"version":2,"narSize":288,"narHash":{"algorithm":"sha256","format":"base16","hash":"15e3"},"references":[],"ca":null},"` +
			strings.TrimPrefix(pHello, "/nix/store/") + `":{"version":2,"narSize":1048576,"references":["` +
			strings.TrimPrefix(pLinux, "/nix/store/") + `"]}}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodePathInfo([]byte(c.json))
			if err != nil {
				t.Fatal(err)
			}
			if got := sortedInfos(got); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestDecodePathInfoErrors(t *testing.T) {
	for _, c := range []struct{ name, json, want string }{
		{"empty", "  \n", "printed nothing"},
		{"not json", "error: something", "want a JSON array or object"},
		{"broken", `[{"path":`, "nix path-info --json"},
		{"invalid array", `[{"path":"` + pHello + `","valid":false}]`, pHello + ": not valid"},
		{"invalid object", `{"` + pHello + `":null}`, pHello + ": not valid"},
		{"no narSize", `[{"path":"` + pHello + `"}]`, "has no narSize"},
		{"not a store path", `[{"path":"/tmp/x","narSize":1}]`, `"/tmp/x" is not a store path`},
		{"not a store path key", `{"hello":{"narSize":1}}`, `"hello" is not a store path`},
		{"other store dir", `{"version":2,"storeDir":"/gnu/store","info":{}}`, `store directory "/gnu/store"`},
		{"format 3", `{"version":3,"storeDir":"/nix/store","info":{}}`, "want 1 or 2"},
		{"base name without info", `{"bd68cm2jxnd5c4hbz7hvwpraswa20zy7-hello-2.12.1":{"narSize":1}}`, "is not a store path"},
		{"negative size", `[{"path":"` + pHello + `","narSize":-1}]`, "nix path-info --json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodePathInfo([]byte(c.json))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}
