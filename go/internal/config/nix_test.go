package config

// TestNix holds the Nix side to this package's contract. It evaluates
// tests/nix/eval.nix (nix/module.nix, nix/hm-module.nix and the projection in
// nix/inventory.nix, with nixpkgs' lib and stand-in NixOS and home-manager
// options), then checks, both ways, that the options declared in Nix and the
// fields read here match, and that what Nix projects decodes.
//
// It needs nix-instantiate and, in LOLLYPOPS_NIXPKGS_LIB, a checkout of
// github.com/nix-community/nixpkgs.lib (the directory that holds lib/).
// Without them it skips with one line.

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

const nixLibEnv = "LOLLYPOPS_NIXPKGS_LIB"

// The repository root, from this package's directory.
var repoRoot = filepath.Join("..", "..", "..")

// Another test file of the package may declare -update too.
var _ = func() bool {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata/")
	}
	return true
}()

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// nixOnlyOptions are options the Nix side consumes itself: they shape other
// values and never reach the runner.
var nixOnlyOptions = map[string]string{
	"secrets.default-dir":        "the default of each secret's path",
	"secrets.cmd-name-prefix":    "part of each secret's default cmd",
	"secrets.files[].groups":     "an alias of group (the spelling of lollypops' README)",
	"assertions":                 "checked by nix/entry.nix before it projects a host",
	"warnings":                   "printed by nix/entry.nix when it projects a host",
	"inventory-entry":            "the projection itself (nix/entry.nix), which the runner evaluates",
	"secrets.default-cmd":        "part of each secret's default cmd",
	"secrets.files[].group-name": "an alias of group (the original lollypops' module), with a warning",
	"secrets.files[].warnings":   "part of warnings",
	"deployment.group":           "added to deployment.tags (the original lollypops' group), with a warning",
	"secrets.files[].unit":       "the secret's unit on the host (nix/secret-units.nix): the runner writes the file, the unit watches it",
	"secrets.files[].unitName":   "the name of that unit, for the host's services",
}

// projectedFields are fields the projection fills from outside the options.
var projectedFields = map[string]string{
	"flake":                             "the configFlake's store path",
	"secrets.files[].home-manager-user": "the home-manager user the secret belongs to",
	"activation-package":                "the home configuration's activationPackage (homes)",
	"home-directory":                    "the home configuration's home.homeDirectory (homes)",
}

type nixEvaluation struct {
	Inventories map[string]json.RawMessage `json:"inventories"`
	Options     map[string][]struct {
		Loc      []string `json:"loc"`
		Internal bool     `json:"internal"`
		Visible  bool     `json:"visible"`
	} `json:"options"`
	Checks []struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"checks"`
	stderr string
}

func nixInstantiate(t *testing.T, lib, file string) (stdout, stderr []byte, err error) {
	t.Helper()
	cmd := exec.Command("nix-instantiate", "--eval", "--strict", "--json",
		filepath.Join(repoRoot, "tests", "nix", file), "--argstr", "nixpkgsLib", lib)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

func TestNix(t *testing.T) {
	lib := os.Getenv(nixLibEnv)
	if lib == "" {
		t.Skip("skipping the Nix evaluation tests: set " + nixLibEnv + " to a nix-community/nixpkgs.lib checkout")
	}
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("skipping the Nix evaluation tests: nix-instantiate is not on PATH")
	}
	out, stderr, err := nixInstantiate(t, lib, "eval.nix")
	if err != nil {
		t.Fatalf("tests/nix/eval.nix: %v\n%s", err, stderr)
	}
	var ev nixEvaluation
	if err := json.Unmarshal(out, &ev); err != nil {
		t.Fatalf("tests/nix/eval.nix printed no evaluation: %v", err)
	}
	ev.stderr = string(stderr)

	t.Run("checks", func(t *testing.T) { testNixChecks(t, &ev) })
	t.Run("inventories", func(t *testing.T) { testNixInventories(t, &ev) })
	t.Run("every option reaches the runner", func(t *testing.T) { testNixOptionsRead(t, &ev) })
	t.Run("every field is projected", func(t *testing.T) { testNixFieldsProjected(t, &ev) })
	t.Run("rejects what Nix never produces", func(t *testing.T) { testNixRejects(t, &ev) })
	t.Run("home-manager module in NixOS", func(t *testing.T) { testNixHMInNixOS(t, lib) })
}

func testNixChecks(t *testing.T, ev *nixEvaluation) {
	if len(ev.Checks) == 0 {
		t.Fatal("tests/nix/eval.nix ran no checks")
	}
	for _, c := range ev.Checks {
		if !c.OK {
			t.Errorf("%s: %s", c.Name, c.Detail)
		}
	}
	if !strings.Contains(ev.stderr, "nixosConfigurations.nomodule does not import lollypops.nixosModules.lollypops") {
		t.Errorf("no warning for the host without the module; stderr:\n%s", ev.stderr)
	}
	if !strings.Contains(ev.stderr, "homeConfigurations.nomodule does not import lollypops.homeModules.default") {
		t.Errorf("no warning for the home configuration without the module; stderr:\n%s", ev.stderr)
	}
	if !strings.Contains(ev.stderr, "lollypops: nixosConfigurations.kartoffel: lollypops.deployment.group: ") {
		t.Errorf("no warning for the original lollypops' deployment.group; stderr:\n%s", ev.stderr)
	}
}

// testNixInventories decodes every projection and compares it with its
// golden file, testdata/nix-<name>.json (-update rewrites them).
func testNixInventories(t *testing.T, ev *nixEvaluation) {
	if len(ev.Inventories) == 0 {
		t.Fatal("no inventories")
	}
	for name, raw := range ev.Inventories {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode(bytes.NewReader(raw)); err != nil {
				t.Fatalf("the projection does not decode: %v", err)
			}
			var doc any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(doc, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "nix-"+name+".json")
			if updating() {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is out of date (run with -update and review the diff); got:\n%s", golden, got)
			}
		})
	}
}

// optionField turns an option's location into the inventory field it
// projects to: ["lollypops", "secrets", "files", "<name>", "cmd"] is
// "secrets.files[].cmd".
func optionField(loc []string) string {
	var b strings.Builder
	for i, p := range loc[1:] {
		switch {
		case p == "<name>" && i > 0 && loc[i] == "files":
			b.WriteString("[]")
		case p == "<name>":
			b.WriteString(".*")
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

// goFields lists the fields of a host or a home, as optionField spells
// them, that this package reads (through the json tags of its types).
func goFields() map[string]bool {
	fields := map[string]bool{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Slice:
			walk(t.Elem(), prefix+"[]")
			return
		case reflect.Map:
			walk(t.Elem(), prefix+".*")
			return
		case reflect.Struct:
		default:
			return
		}
		for i := range t.NumField() {
			name := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			fields[path] = true
			walk(t.Field(i).Type, path)
		}
	}
	walk(reflect.TypeFor[Host](), "")
	walk(reflect.TypeFor[Home](), "")
	return fields
}

// testNixOptionsRead: every option declared under lollypops.* in either
// module is a field this package reads, or is listed in nixOnlyOptions.
func testNixOptionsRead(t *testing.T, ev *nixEvaluation) {
	fields := goFields()
	declared := map[string]bool{}
	for _, module := range []string{"nixos", "home-manager"} {
		opts := ev.Options[module]
		if len(opts) == 0 {
			t.Fatalf("no options declared by the %s module", module)
		}
		for _, o := range opts {
			f := optionField(o.Loc)
			declared[f] = true
			if _, ok := nixOnlyOptions[f]; ok {
				continue
			}
			if !fields[f] {
				t.Errorf("%s option %s is not read by the runner: no field %q in the inventory types (add it to types.go and nix/inventory.nix, or to nixOnlyOptions with the reason)",
					module, strings.Join(o.Loc, "."), f)
			}
		}
	}
	for f := range nixOnlyOptions {
		if !declared[f] {
			t.Errorf("nixOnlyOptions lists %q, which no module declares", f)
		}
	}
	for f := range projectedFields {
		if declared[f] {
			t.Errorf("projectedFields lists %q, which is an option", f)
		}
	}
}

// projectedPaths lists the fields of the hosts in an inventory document,
// spelled as goFields spells them.
func projectedPaths(t *testing.T, raw json.RawMessage) map[string]bool {
	var doc struct {
		Hosts map[string]any `json:"hosts"`
		Homes map[string]any `json:"homes"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	var walk func(v any, typ reflect.Type, prefix string)
	walk = func(v any, typ reflect.Type, prefix string) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		switch typ.Kind() {
		case reflect.Slice:
			for _, e := range asList(v) {
				walk(e, typ.Elem(), prefix+"[]")
			}
		case reflect.Map:
			for _, e := range asObject(v) {
				walk(e, typ.Elem(), prefix+".*")
			}
		case reflect.Struct:
			obj := asObject(v)
			for i := range typ.NumField() {
				name := strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]
				e, ok := obj[name]
				if name == "" || name == "-" || !ok {
					continue
				}
				path := name
				if prefix != "" {
					path = prefix + "." + name
				}
				paths[path] = true
				walk(e, typ.Field(i).Type, path)
			}
		}
	}
	for _, h := range doc.Hosts {
		walk(h, reflect.TypeFor[Host](), "")
	}
	for _, h := range doc.Homes {
		walk(h, reflect.TypeFor[Home](), "")
	}
	return paths
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func asObject(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// testNixFieldsProjected: every field this package reads comes out of the
// projection of the full test hosts, and only those (projected fields are
// options or listed in projectedFields).
func testNixFieldsProjected(t *testing.T, ev *nixEvaluation) {
	raw, ok := ev.Inventories["full"]
	if !ok {
		t.Fatal("no full inventory")
	}
	produced := projectedPaths(t, raw)
	var missing []string
	for f := range goFields() {
		if !produced[f] {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("fields the runner reads that the projection of tests/nix/fixtures/full.nix never fills: %s", strings.Join(missing, ", "))
	}
	options := map[string]bool{}
	for _, opts := range ev.Options {
		for _, o := range opts {
			options[optionField(o.Loc)] = true
		}
	}
	for f := range produced {
		_, extra := projectedFields[f]
		if !options[f] && !extra && !isContainer(f) {
			t.Errorf("the projection fills %q, which is neither an option nor in projectedFields", f)
		}
	}
}

// isContainer reports whether field f only groups other fields
// ("deployment", "deployment.ssh", "secrets").
func isContainer(f string) bool {
	for g := range goFields() {
		if strings.HasPrefix(g, f+".") && !strings.HasPrefix(g, f+".*") {
			return true
		}
	}
	return false
}

// testNixRejects feeds the runner projections changed in ways the Nix side
// never produces (its types and the Decode contract both rule them out).
func testNixRejects(t *testing.T, ev *nixEvaluation) {
	edit := func(f func(doc map[string]any)) []byte {
		var doc map[string]any
		if err := json.Unmarshal(ev.Inventories["full"], &doc); err != nil {
			t.Fatal(err)
		}
		f(doc)
		out, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	host := func(d map[string]any, path ...any) map[string]any {
		return at(d, append([]any{"hosts", "ahorn"}, path...)...)
	}
	cases := []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"a missing field", func(d map[string]any) { delete(host(d, "secrets", "files", 0), "mode") }, "secrets.files[0].mode: missing"},
		{"an unknown field", func(d map[string]any) { host(d, "deployment", "ssh")["port"] = 22 }, "deployment.ssh.port: unknown field"},
		{"a null boolean", func(d map[string]any) { host(d, "secrets")["remove-stale"] = nil }, "secrets.remove-stale: must not be null"},
		{"a string for a list", func(d map[string]any) { host(d, "deployment", "sudo")["opts"] = "-H" }, "deployment.sudo.opts: must be a list"},
		{"another version", func(d map[string]any) { d["version"] = 2 }, "version: inventory version 2"},
		{"a relative secret path", func(d map[string]any) { host(d, "secrets", "files", 0)["path"] = "run/keys/x" }, "is not an absolute path"},
		{"a secret in the store", func(d map[string]any) { host(d, "secrets", "files", 0)["path"] = "/nix/store/abc-x" }, "is in the Nix store"},
		{"a symbolic mode", func(d map[string]any) { host(d, "secrets", "files", 0)["mode"] = "u=r" }, "is not an octal mode"},
		{"an ssh command with arguments", func(d map[string]any) { host(d, "deployment", "ssh")["command"] = "ssh -v" }, "is more than one word"},
		{"a key without pinned", func(d map[string]any) { host(d, "deployment", "ssh")["host-key-policy"] = "strict" }, "host-key: is set"},
	}
	for _, c := range cases {
		_, err := Decode(bytes.NewReader(edit(c.edit)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// testNixHMInNixOS: importing the home-manager module into NixOS fails with
// an error that names the module and both classes, not a clash of options.
func testNixHMInNixOS(t *testing.T, lib string) {
	_, stderr, err := nixInstantiate(t, lib, "hm-into-nixos.nix")
	if err == nil {
		t.Fatal("the home-manager module was accepted by a NixOS evaluation")
	}
	msg := string(stderr)
	for _, want := range []string{"hm-module.nix", `"homeManager"`, `"nixos"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not mention %s:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "already declared") {
		t.Errorf("the error is a clash of options:\n%s", msg)
	}
}
