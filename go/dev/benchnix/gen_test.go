package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func stubText(t *testing.T) []byte {
	t.Helper()
	stub, err := os.ReadFile("../../../tests/nix/stubs/nixos.nix")
	if err != nil {
		t.Fatal(err)
	}
	return stub
}

// nixFiles counts the .nix files under dir.
func nixFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".nix") {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSyntheticSize(t *testing.T) {
	dir := t.TempDir()
	s, err := writeSynthetic(dir, 1500, stubText(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Modules != 1500 {
		t.Errorf("modules = %d, want 1500", s.Modules)
	}
	if s.Options < 9500 || s.Options > 11000 {
		t.Errorf("options = %d, want about 10,000", s.Options)
	}
	// Every module and import-only file is on disk, plus module-list.nix.
	if got, want := nixFiles(t, dir), s.Modules+s.Imports+1; got != want {
		t.Errorf("%d .nix files, want %d", got, want)
	}
	kinds := map[string]int{}
	for i := range s.N {
		kinds[kindOf(i)]++
	}
	for kind, share := range map[string]float64{"service": 0.40, "program": 0.30, "hardware": 0.15, "instances": 0.10, "profile": 0.05} {
		if got := float64(kinds[kind]) / float64(s.N); got < share-0.01 || got > share+0.01 {
			t.Errorf("%s: %.3f of the modules, want %.2f", kind, got, share)
		}
	}
}

func TestReplaceBlock(t *testing.T) {
	block := blockBegin + "\nnew\n" + blockEnd + "\n"
	for _, tc := range []struct{ name, in, want string }{
		{"empty file", "", block},
		{"no block yet", "# Benchmarks\n\ntext\n", "# Benchmarks\n\ntext\n\n" + block},
		{"block in the middle", "a\n\n" + blockBegin + "\nold\n" + blockEnd + "\nb\n", "a\n\n" + block + "b\n"},
		{"block at the end", "a\n\n" + blockBegin + "\nold\n" + blockEnd + "\n", "a\n\n" + block},
	} {
		if got := replaceBlock(tc.in, block); got != tc.want {
			t.Errorf("%s: got\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}
}

// TestSyntheticEvaluates evaluates a small synthetic set with the real
// module system: the options NixOS would list are the ones the generator
// counted, the modules' config reaches the options it should, and
// today's projection reads the host's lollypops options.
func TestSyntheticEvaluates(t *testing.T) {
	lib := os.Getenv("LOLLYPOPS_NIXPKGS_LIB")
	if lib == "" {
		t.Skip("set LOLLYPOPS_NIXPKGS_LIB to a nix-community/nixpkgs.lib checkout")
	}
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("no nix-instantiate")
	}
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := writeSynthetic(dir, 120, stubText(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeHostModule(s, 4242); err != nil {
		t.Fatal(err)
	}
	expr := `
{ libPath, repo, syn }:
let
  lib = import (libPath + "/lib");
  lollypops = (import (repo + "/flake.nix")).outputs {
    self = lollypops;
    nixpkgs = { inherit lib; };
    nixpkgs-go = { };
  };
  host = lib.evalModules {
    class = "nixos";
    modules = import (syn + "/module-list.nix") ++ [ lollypops.nixosModules.lollypops (import (syn + "/host.nix") 3) ];
  };
  listed = builtins.filter (
    o: o.visible && !o.internal && !lib.hasPrefix "lollypops." o.name && !lib.hasPrefix "_module." o.name
  ) (lib.optionAttrSetToDocList host.options);
  inventory = import (repo + "/nix/inventory.nix") { inherit lib; } {
    outPath = "/nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source";
    nixosConfigurations.host3 = host;
  };
  c = host.config;
in
{
  options = builtins.length listed;
  inherit (inventory.hosts.host3.deployment) ssh tags;
  secrets = map (s: s.name) inventory.hosts.host3.secrets.files;
  unit = c.systemd.services.s0.serviceConfig;
  logLevel = c.services.g0.s0.logLevel;
  listen = c.services.g0.s0.settings.listen;
  etc = c.environment.etc."s0/config".text;
  group = c.users.users.s0.group;
  ports = c.networking.firewall.allowedTCPPorts;
  packages = c.environment.systemPackages;
  locale = c.i18n.defaultLocale;
  instanceUser = (lib.evalModules {
    modules = import (syn + "/module-list.nix") ++ [ { services.g0.d17 = { enable = true; instances.web = { }; }; } ];
  }).config.systemd.services.d17-web.serviceConfig.User;
}
`
	out, err := exec.Command("nix-instantiate", "--eval", "--strict", "--json", "-E", expr,
		"--argstr", "libPath", lib, "--argstr", "repo", repo, "--argstr", "syn", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("nix-instantiate: %v\n%s", err, out)
	}
	var got struct {
		Options int
		SSH     struct {
			Host string
			Opts []string
		}
		Tags         []string
		Secrets      []string
		Unit         map[string]any
		LogLevel     string
		Listen       string
		Etc          string
		Group        string
		Ports        []int
		Packages     []string
		Locale       string
		InstanceUser string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Options != s.Options {
		t.Errorf("Nix lists %d options, the generator counted %d", got.Options, s.Options)
	}
	if got.SSH.Host != "127.0.0.1" || strings.Join(got.SSH.Opts, " ") != "-p 4242" {
		t.Errorf("ssh = %+v, want 127.0.0.1 -p 4242", got.SSH)
	}
	if strings.Join(got.Tags, ",") != "bench,rack-3" {
		t.Errorf("tags = %v", got.Tags)
	}
	if len(got.Secrets) != len(benchSecrets) {
		t.Errorf("secrets = %v, want %d", got.Secrets, len(benchSecrets))
	}
	// host.nix enables services.g0.s0; profile e19 sets its logLevel with
	// mkDefault and enables it and programs.p8 under mkIf (off here).
	checks := map[string][2]any{
		"unit User":      {got.Unit["User"], "s0"},
		"unit State":     {got.Unit["StateDirectory"], "s0"},
		"logLevel":       {got.LogLevel, "warn"},
		"settings":       {got.Listen, "127.0.0.1:1024"},
		"etc":            {strings.Contains(got.Etc, "listen=127.0.0.1:1024"), true},
		"group":          {got.Group, "s0"},
		"locale":         {got.Locale, "en_US.UTF-8"},
		"instance user":  {got.InstanceUser, "d17-web"},
		"p8 in packages": {strings.Contains(strings.Join(got.Packages, " "), "p8"), true},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	if len(got.Ports) != 0 {
		t.Errorf("firewall ports = %v, want none (openFirewall is off)", got.Ports)
	}
}
