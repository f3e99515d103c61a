package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeExamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			inv, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Hosts) == 0 {
				t.Fatal("no hosts")
			}
			for name, h := range inv.Hosts {
				if h.Name != name {
					t.Errorf("host %q has Name %q", name, h.Name)
				}
			}
		})
	}
}

func TestDecodeFull(t *testing.T) {
	inv, err := Load("testdata/full.json")
	if err != nil {
		t.Fatal(err)
	}
	a := inv.Hosts["ahorn"]
	if got := a.Deployment.SSH.Target(); got != "deploy@ahorn.example.org" {
		t.Errorf("target = %q", got)
	}
	if got := inv.Hosts["birne"].Deployment.SSH.Target(); got != "10.0.0.2" {
		t.Errorf("target without user = %q", got)
	}
	if got := a.Secrets.Files[2].Label(); got != "pinpox/usertest" {
		t.Errorf("label = %q", got)
	}
	if a.IsBuiltin("rebuild") || !a.IsBuiltin("deploy-flake") || a.IsBuiltin("example") {
		t.Error("IsBuiltin does not account for replaced built-ins")
	}

	if inv.Hosts["ahorn"].Home != nil {
		t.Error("a NixOS host has Home set")
	}
}

func TestDecodeHome(t *testing.T) {
	inv, err := Load("testdata/homes.json")
	if err != nil {
		t.Fatal(err)
	}
	// The home-manager target is a target of the run like the hosts.
	h := inv.Hosts["alice@birne"]
	if h == nil || h.Home == nil {
		t.Fatalf("the home-manager target: %+v", h)
	}
	if h.Name != "alice@birne" || h.Home.Directory != "/home/alice" || h.Deployment.SSH.Target() != "alice@10.0.0.2" ||
		h.Home.ActivationPackage != "/nix/store/8cpd4nj5gb1jc3vqrb4g1w3g3xc0lqmd-home-manager-generation.drv" {
		t.Errorf("home target = %+v, home %+v", h, h.Home)
	}
	if h.IsBuiltin("deploy-flake") || h.IsBuiltin("diff") || !h.IsBuiltin("rebuild") || !h.HasTask("hello") {
		t.Error("a home target's built-ins are check-vars, deploy-secrets and rebuild")
	}
}

// TestMarshalRoundTrip: an inventory written by MarshalJSON decodes to the
// same targets, each kind in its own map of the document.
func TestMarshalRoundTrip(t *testing.T) {
	inv, err := Decode(bytes.NewReader(mutate(t, func(d map[string]any) { alice(d) })))
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Hosts map[string]json.RawMessage `json:"hosts"`
		Homes map[string]json.RawMessage `json:"homes"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.Homes["alice@birne"]; !ok || len(doc.Homes) != 1 || len(doc.Hosts) != len(inv.Hosts)-1 {
		t.Fatalf("hosts %d, homes %d: %s", len(doc.Hosts), len(doc.Homes), data)
	}
	again, err := Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range inv.Hosts {
		a, _ := json.Marshal(Inventory{Version: 1, Hosts: map[string]*Host{name: h}})
		b, _ := json.Marshal(Inventory{Version: 1, Hosts: map[string]*Host{name: again.Hosts[name]}})
		if !bytes.Equal(a, b) {
			t.Errorf("%s changed:\n%s\n%s", name, a, b)
		}
	}
}

// mutate loads testdata/full.json as generic JSON, applies f and returns the
// re-encoded document.
func mutate(t *testing.T, f func(doc map[string]any)) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/full.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	f(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// at walks a path of object keys and list indexes (ints).
func at(doc map[string]any, path ...any) map[string]any {
	var cur any = doc
	for _, p := range path {
		switch k := p.(type) {
		case string:
			cur = cur.(map[string]any)[k]
		case int:
			cur = cur.([]any)[k]
		}
	}
	return cur.(map[string]any)
}

func ahorn(doc map[string]any, path ...any) map[string]any {
	return at(doc, append([]any{"hosts", "ahorn"}, path...)...)
}

// alice returns the home-manager target of testdata/homes.json, which it
// first adds to doc (testdata/full.json has none).
func alice(doc map[string]any, path ...any) map[string]any {
	homes := doc["homes"].(map[string]any)
	if homes["alice@birne"] == nil {
		data, err := os.ReadFile("testdata/homes.json")
		if err != nil {
			panic(err)
		}
		var h map[string]any
		if err := json.Unmarshal(data, &h); err != nil {
			panic(err)
		}
		homes["alice@birne"] = at(h, "homes", "alice@birne")
	}
	return at(doc, append([]any{"homes", "alice@birne"}, path...)...)
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(map[string]any)
		want string // the whole first line of the error
	}{
		{"wrong version", func(d map[string]any) { d["version"] = 2 },
			"inventory: version: inventory version 2, but this runner reads version 1"},
		{"missing version", func(d map[string]any) { delete(d, "version") },
			"inventory: version: missing"},
		{"unknown top-level field", func(d map[string]any) { d["groups"] = map[string]any{} },
			"inventory: groups: unknown field"},
		{"unknown host field", func(d map[string]any) { ahorn(d, "deployment", "ssh")["port"] = 22 },
			`inventory: host "ahorn": deployment.ssh.port: unknown field`},
		{"missing host field", func(d map[string]any) { delete(ahorn(d, "deployment", "sudo"), "opts") },
			`inventory: host "ahorn": deployment.sudo.opts: missing`},
		{"missing secret field", func(d map[string]any) { delete(ahorn(d, "secrets", "files", 1), "mode") },
			`inventory: host "ahorn": secrets.files[1].mode: missing`},
		{"null string", func(d map[string]any) { ahorn(d, "deployment")["config-dir"] = nil },
			`inventory: host "ahorn": deployment.config-dir: must not be null`},
		{"wrong type", func(d map[string]any) { ahorn(d, "deployment")["local-evaluation"] = "yes" },
			`inventory: host "ahorn": deployment.local-evaluation: must be true or false, got "yes"`},
		{"build host without its fields", func(d map[string]any) { ahorn(d, "deployment")["build-host"] = map[string]any{"host": "b"} },
			`inventory: host "ahorn": deployment.build-host.user: missing`},
		{"bad build host", func(d map[string]any) {
			ahorn(d, "deployment")["build-host"] = map[string]any{"host": "-oProxyCommand=x", "user": nil, "opts": []any{}, "host-key": nil, "host-key-policy": "strict"}
		}, `inventory: host "ahorn": deployment.build-host.host: "-oProxyCommand=x" is not a host name, alias or address`},
		{"build host pinned without a key", func(d map[string]any) {
			ahorn(d, "deployment")["build-host"] = map[string]any{"host": "b", "user": "nix", "opts": []any{}, "host-key": nil, "host-key-policy": "pinned"}
		}, `inventory: host "ahorn": deployment.build-host.host-key: host-key-policy is "pinned" but no host-key is set`},
		{"bad tag", func(d map[string]any) { ahorn(d, "deployment")["tags"] = []any{"web", "@web"} },
			`inventory: host "ahorn": deployment.tags: "@web" is not a tag: letters, digits, '_', '.' and '-', not starting with '.' or '-'`},
		{"fraction for an integer", func(d map[string]any) { ahorn(d, "deployment", "rollback")["confirm-timeout"] = 1.5 },
			`inventory: host "ahorn": deployment.rollback.confirm-timeout: must be an integer, got 1.5`},
		{"string for an integer", func(d map[string]any) { ahorn(d, "deployment", "rollback")["confirm-timeout"] = "30" },
			`inventory: host "ahorn": deployment.rollback.confirm-timeout: must be an integer, got "30"`},
		{"list for an object", func(d map[string]any) { ahorn(d, "deployment")["rollback"] = []any{"<&>"} },
			`inventory: host "ahorn": deployment.rollback: must be an object, got ["<&>"]`},
		{"object for a list", func(d map[string]any) { ahorn(d, "deployment")["tags"] = map[string]any{} },
			`inventory: host "ahorn": deployment.tags: must be a list, got {}`},
		{"null tags", func(d map[string]any) { ahorn(d, "deployment")["tags"] = nil },
			`inventory: host "ahorn": deployment.tags: must not be null`},
		{"relative config-dir", func(d map[string]any) { ahorn(d, "deployment")["config-dir"] = "var/src" },
			`inventory: host "ahorn": deployment.config-dir: "var/src" is not an absolute path`},
		{"unclean path", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["path"] = "/run/keys/../etc/shadow" },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".path: "/run/keys/../etc/shadow" is not a clean path (no '..', '.', '//' or trailing '/'); write "/run/etc/shadow"`},
		{"newline in path", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["path"] = "/run/keys/a\nb" },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".path: "/run/keys/a\nb" contains a control character`},
		{"format character in path", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["path"] = "/run/keys/a\u0601" },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".path: "/run/keys/a\u0601" contains the non-printing character U+0601`},
		{"no-break space in config-dir", func(d map[string]any) { ahorn(d, "deployment")["config-dir"] = "/var/src/a\u00a0b" },
			`inventory: host "ahorn": deployment.config-dir: "/var/src/a\u00a0b" contains the non-printing character U+00A0`},
		{"secret in store", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["path"] = "/nix/store/x" },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".path: "/nix/store/x" is in the Nix store, which every user of the host can read`},
		{"bad mode", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["mode"] = "0999" },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".mode: "0999" is not an octal mode such as "0400"`},
		{"symbolic mode", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["mode"] = "u=r" },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".mode: "u=r" is not an octal mode such as "0400"`},
		{"owner injection", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["owner"] = "root; rm -rf /" },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".owner: "root; rm -rf /" is not a user name or id`},
		{"group with dash", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["group"] = "-g" },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".group: "-g" is not a group name or id`},
		{"duplicate path", func(d map[string]any) { ahorn(d, "secrets", "files", 1)["path"] = "/var/lib/backupconfig/password" },
			`inventory: host "ahorn": secrets.files."secret1".path: "/var/lib/backupconfig/password" is also the path of secret "nixos-secrets/ahorn/backup-key"; each secret needs its own file`},
		{"empty cmd", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["cmd"] = " " },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".cmd: must not be empty`},
		{"bad upload-at", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["upload-at"] = "later" },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".upload-at: "later" is not one of "pre-activation", "post-activation"`},
		{"unit option injection", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["restartUnits"] = []any{"--force"} },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".restartUnits[0]: "--force" is not a systemd unit name with its type, such as "nginx.service"`},
		{"unit without type", func(d map[string]any) {
			ahorn(d, "secrets", "files", 0)["reloadUnits"] = []any{"nginx.service", "nginx"}
		},
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".reloadUnits[1]: "nginx" is not a systemd unit name with its type, such as "nginx.service"`},
		{"unit template", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["restartUnits"] = []any{"getty@.service"} },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".restartUnits[0]: "getty@.service" is not a systemd unit name with its type, such as "nginx.service"`},
		{"unit with space", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["restartUnits"] = []any{"a b.service"} },
			`inventory: host "ahorn": secrets.files."nixos-secrets/ahorn/backup-key".restartUnits[0]: "a b.service" is not a systemd unit name with its type, such as "nginx.service"`},
		{"null units", func(d map[string]any) { ahorn(d, "secrets", "files", 0)["restartUnits"] = nil },
			`inventory: host "ahorn": secrets.files[0].restartUnits: must not be null`},
		{"home-manager secret with units", func(d map[string]any) { ahorn(d, "secrets", "files", 2)["restartUnits"] = []any{"x.service"} },
			`inventory: host "ahorn": secrets.files."pinpox/usertest".restartUnits: a home-manager user's secret cannot restart or reload units`},
		{"bad deploy method", func(d map[string]any) { ahorn(d, "deployment")["deploy-method"] = "rsync" },
			`inventory: host "ahorn": deployment.deploy-method: "rsync" is not one of "copy", "archive"`},
		{"ssh host option", func(d map[string]any) { ahorn(d, "deployment", "ssh")["host"] = "-oProxyCommand=id" },
			`inventory: host "ahorn": deployment.ssh.host: "-oProxyCommand=id" is not a host name, alias or address`},
		{"ssh host with space", func(d map[string]any) { ahorn(d, "deployment", "ssh")["host"] = "a b" },
			`inventory: host "ahorn": deployment.ssh.host: "a b" is not a host name, alias or address`},
		{"ssh user subst", func(d map[string]any) { ahorn(d, "deployment", "ssh")["user"] = "$(id)" },
			`inventory: host "ahorn": deployment.ssh.user: "$(id)" is not a user name`},
		{"ssh command words", func(d map[string]any) { ahorn(d, "deployment", "ssh")["command"] = "ssh -v" },
			`inventory: host "ahorn": deployment.ssh.command: "ssh -v" is more than one word`},
		{"ssh opt newline", func(d map[string]any) { ahorn(d, "deployment", "ssh")["opts"] = []any{"-o", "A=b\nc"} },
			`inventory: host "ahorn": deployment.ssh.opts[1]: "A=b\nc" contains a control character`},
		{"pinned without key", func(d map[string]any) { ahorn(d, "deployment", "ssh")["host-key"] = nil },
			`inventory: host "ahorn": deployment.ssh.host-key: host-key-policy is "pinned" but no host-key is set`},
		{"key without pinned", func(d map[string]any) { ahorn(d, "deployment", "ssh")["host-key-policy"] = "strict" },
			`inventory: host "ahorn": deployment.ssh.host-key: is set, but host-key-policy is "strict"`},
		{"bad host key", func(d map[string]any) { ahorn(d, "deployment", "ssh")["host-key"] = "AAAA" },
			`inventory: host "ahorn": deployment.ssh.host-key: "AAAA" is not an OpenSSH public key line`},
		{"bad policy", func(d map[string]any) { ahorn(d, "deployment", "ssh")["host-key-policy"] = "no" },
			`inventory: host "ahorn": deployment.ssh.host-key-policy: "no" is not one of "strict", "accept-new", "pinned"`},
		{"confirm timeout", func(d map[string]any) { ahorn(d, "deployment", "rollback")["confirm-timeout"] = 0 },
			`inventory: host "ahorn": deployment.rollback.confirm-timeout: 0 is not between 5 and 3600`},
		{"check with cmd and url", func(d map[string]any) {
			ahorn(d, "deployment")["health-checks"] = map[string]any{"web": map[string]any{"cmd": "true", "url": "http://x/",
				"status": 200, "timeout": 5, "retries": 1, "interval": 1}}
		}, `inventory: host "ahorn": deployment.health-checks.web: set exactly one of cmd (run on the host) and url (fetched from the deployer)`},
		{"check url", func(d map[string]any) {
			ahorn(d, "deployment")["health-checks"] = map[string]any{"web": map[string]any{"cmd": nil, "url": "ftp://x/",
				"status": 200, "timeout": 5, "retries": 1, "interval": 1}}
		}, `inventory: host "ahorn": deployment.health-checks.web.url: "ftp://x/" is not an http:// or https:// URL`},
		{"check timeout", func(d map[string]any) {
			ahorn(d, "deployment")["health-checks"] = map[string]any{"web": map[string]any{"cmd": "true", "url": nil,
				"status": 200, "timeout": 0, "retries": 1, "interval": 1}}
		}, `inventory: host "ahorn": deployment.health-checks.web.timeout: 0 is not between 1 and 3600`},
		{"check missing field", func(d map[string]any) {
			ahorn(d, "deployment")["health-checks"] = map[string]any{"web": map[string]any{"cmd": "true", "url": nil}}
		}, `inventory: host "ahorn": deployment.health-checks.web.status: missing`},
		{"unknown task", func(d map[string]any) { ahorn(d)["tasks"] = []any{"deploy-flake", "deploy"} },
			`inventory: host "ahorn": tasks[1]: unknown task "deploy"`},
		{"duplicate task", func(d map[string]any) { ahorn(d)["tasks"] = []any{"rebuild", "rebuild"} },
			`inventory: host "ahorn": tasks[1]: "rebuild" is listed twice`},
		{"unknown dep", func(d map[string]any) { ahorn(d, "extraTasks", "example")["deps"] = []any{"nope"} },
			`inventory: host "ahorn": extraTasks."example".deps[0]: unknown task "nope"`},
		{"dep cycle", func(d map[string]any) { ahorn(d, "extraTasks", "example")["deps"] = []any{"rebuild"} },
			`inventory: host "ahorn": extraTasks: the deps form a cycle: example -> rebuild -> example`},
		{"task name with colon", func(d map[string]any) {
			ahorn(d, "extraTasks")["a:b"] = map[string]any{"desc": "", "cmds": []any{}, "deps": []any{}, "dir": "."}
		}, `inventory: host "ahorn": extraTasks."a:b": a task name can only use letters, digits, '_', '.' and '-' (and cannot start with '.' or '-')`},
		{"host named all", func(d map[string]any) {
			hosts := at(d, "hosts")
			hosts["all"] = hosts["birne"]
		}, `inventory: host "all": the name "all" is reserved for the task that deploys every host`},
		{"host name with colon", func(d map[string]any) {
			hosts := at(d, "hosts")
			hosts["web:1"] = hosts["birne"]
		}, `inventory: host "web:1": the name can only use letters, digits, '_', '.' and '-' (and cannot start with '.' or '-')`},
		{"not a store path", func(d map[string]any) { ahorn(d)["flake"] = "/home/me/flake" },
			`inventory: host "ahorn": flake: "/home/me/flake" is not a Nix store path`},
		// A ?dir= flake is a directory of its source; one that could not
		// be written in a flake reference is refused.
		{"store sub-path that escapes", func(d map[string]any) {
			ahorn(d)["flake"] = "/nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source/../etc"
		}, `inventory: host "ahorn": flake: "/nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source/../etc": the flake's directory in its source can only use letters, digits and '._+-/', without '..'`},
		{"store sub-path with a query", func(d map[string]any) {
			ahorn(d)["flake"] = "/nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source/sub&x=1"
		}, `inventory: host "ahorn": flake: "/nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source/sub&x=1": the flake's directory in its source can only use letters, digits and '._+-/', without '..'`},
		{"missing homes", func(d map[string]any) { delete(d, "homes") },
			"inventory: homes: missing"},
		{"homes not an object", func(d map[string]any) { d["homes"] = []any{} },
			"inventory: homes: must be an object, got []"},
		{"a host and a home of one name", func(d map[string]any) { at(d, "homes")["ahorn"] = alice(d) },
			`inventory: host "ahorn": is both a NixOS host (nixosConfigurations) and a home-manager target (homeConfigurations)`},
		{"a NixOS field in a home", func(d map[string]any) { alice(d, "deployment")["config-dir"] = "/var/src/lollypops" },
			`inventory: home "alice@birne": deployment.config-dir: unknown field`},
		{"missing home field", func(d map[string]any) { delete(alice(d), "home-directory") },
			`inventory: home "alice@birne": home-directory: missing`},
		{"home activation package not in the store", func(d map[string]any) { alice(d)["activation-package"] = "/home/alice/result" },
			`inventory: home "alice@birne": activation-package: "/home/alice/result" is not a Nix store path`},
		{"home activation package sub-path", func(d map[string]any) {
			alice(d)["activation-package"] = "/nix/store/8cpd4nj5gb1jc3vqrb4g1w3g3xc0lqmd-home-manager-generation/activate"
		}, `inventory: home "alice@birne": activation-package: "/nix/store/8cpd4nj5gb1jc3vqrb4g1w3g3xc0lqmd-home-manager-generation/activate" is not a Nix store path`},
		{"relative home directory", func(d map[string]any) { alice(d)["home-directory"] = "alice" },
			`inventory: home "alice@birne": home-directory: "alice" is not an absolute path`},
		{"home with deploy-flake", func(d map[string]any) { alice(d)["tasks"] = []any{"deploy-flake", "rebuild"} },
			`inventory: home "alice@birne": tasks[0]: unknown task "deploy-flake"`},
		{"home with a bad ssh user", func(d map[string]any) { alice(d, "deployment", "ssh")["user"] = "-oProxyCommand=x" },
			`inventory: home "alice@birne": deployment.ssh.user: "-oProxyCommand=x" is not a user name`},
		{"home name starting with @", func(d map[string]any) { at(d, "homes")["@alice"] = alice(d) },
			`inventory: home "@alice": the name can only use letters, digits, '_', '.', '-' and '@' (and cannot start with '.', '-' or '@')`},
		{"home name with colon", func(d map[string]any) { at(d, "homes")["alice:x"] = alice(d) },
			`inventory: home "alice:x": the name can only use letters, digits, '_', '.', '-' and '@' (and cannot start with '.', '-' or '@')`},
		{"home named all", func(d map[string]any) { at(d, "homes")["all"] = alice(d) },
			`inventory: home "all": the name "all" is reserved for the task that deploys every host`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(mutate(t, c.edit)))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if got := err.Error(); got != c.want {
				t.Errorf("error:\n got %s\nwant %s", got, c.want)
			}
			if strings.Contains(err.Error(), "\n") && !strings.Contains(c.want, "\n") {
				t.Errorf("error is more than one line: %q", err)
			}
		})
	}
}

func TestDecodeNotJSON(t *testing.T) {
	for _, in := range []string{"", "{", "[]", `{"version":1,"hosts":[]}`} {
		if _, err := Decode(strings.NewReader(in)); err == nil {
			t.Errorf("Decode(%q): no error", in)
		} else if !strings.HasPrefix(err.Error(), "inventory: ") {
			t.Errorf("Decode(%q): %v", in, err)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"))
	e, ok := err.(*Error)
	if !ok || e.Advice == "" || !strings.Contains(e.Msg, "no such file") {
		t.Fatalf("err = %#v", err)
	}
}
