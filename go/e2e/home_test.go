package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// The test home configuration: what home-manager's homeManagerConfiguration
// returns, in miniature and without nixpkgs. Its activation package is
// built by the deployer's Nix with /bin/sh; its activate script does what
// home-manager's does: it records a new generation of the user's
// home-manager profile and links a file of the package into the home.
// Its lollypops options stand for what nix/hm-module.nix gives them (the
// module itself needs nixpkgs' lib); nix/project-home.nix projects them,
// as the app does.

const homeNix = `{ greeting, sshConfig, secret, uploadAt, removeStale }:
{
  activationPackage = derivation {
    name = "home-manager-generation";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ ./builder.sh ];
    inherit greeting;
    activateScript = ./activate.sh;
  };
  config = {
    home.username = "alice";
    home.homeDirectory = "/home/alice";
    lollypops = {
      deployment = {
        tags = [ "desktop" ];
        ssh = {
          host = "other";
          user = "alice";
          command = "ssh";
          opts = [ "-F" sshConfig ];
          host-key-policy = "strict";
          host-key = null;
        };
        sudo = { enable = false; command = "sudo"; opts = [ ]; };
      };
      secrets = {
        remove-stale = removeStale;
        files.${secret} = {
          name = secret;
          cmd = "printf %s home-secret-value";
          path = "/home/alice/lollypops-secrets/${secret}";
          owner = "alice";
          group = "alice";
          mode = "0400";
          upload-at = uploadAt;
          allow-empty = false;
        };
      };
      tasks = [ "deploy-secrets" "rebuild" ];
      extraTasks = { };
      assertions = [ ];
      warnings = [ ];
    };
  };
}
`

// The builder of the activation package (run by /bin/sh, with no PATH).
const homeBuilder = `set -eu
/bin/mkdir -p "$out/home-files/.config"
printf '%s\n' "$greeting" >"$out/home-files/.config/greeting"
{
	echo '#!/bin/sh'
	echo 'set -eu'
	echo "new=$out"
	while IFS= read -r line; do printf '%s\n' "$line"; done <"$activateScript"
} >"$out/activate"
/bin/chmod 0555 "$out/activate"
`

// The activate script's body: $new is the package.
const homeActivate = `profile="$HOME/.local/state/nix/profiles/home-manager"
mkdir -p "${profile%/*}"
nix-env --profile "$profile" --set "$new"
mkdir -p "$HOME/.config"
ln -sfn "$new/home-files/.config/greeting" "$HOME/.config/greeting"
echo "home-manager: activated $new as $(id -un)"
`

// homeConfig is what varies in the test home configuration.
type homeConfig struct {
	greeting    string // the content of the file linked into the home
	secret      string // the name of its one secret
	uploadAt    string
	removeStale bool
}

// homeTarget projects the test home configuration through
// nix/project-home.nix and returns it as a target of the run.
func homeTarget(t *testing.T, f *fakehost.Fleet, name string, c homeConfig) *config.Host {
	t.Helper()
	dir := t.TempDir()
	for file, text := range map[string]string{"home.nix": homeNix, "builder.sh": homeBuilder, "activate.sh": homeActivate} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	project, err := filepath.Abs("../../nix/project-home.nix")
	if err != nil {
		t.Fatal(err)
	}
	if c.secret == "" {
		c.secret = "token"
	}
	if c.uploadAt == "" {
		c.uploadAt = config.PreActivation
	}
	expr := fmt.Sprintf("import %s { name = %s; home = import %s { greeting = %s; sshConfig = %s; secret = %s; uploadAt = %s; removeStale = %t; }; flake = null; }",
		project, nixString(name), filepath.Join(dir, "home.nix"), nixString(c.greeting), nixString(f.SSHConfig),
		nixString(c.secret), nixString(c.uploadAt), c.removeStale)
	cmd := exec.Command("nix", "--extra-experimental-features", "nix-command", "eval", "--impure", "--json", "--expr", expr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("projecting the home configuration: %v\n%s", err, stderr.String())
	}
	var home config.Home
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&home); err != nil {
		t.Fatalf("the projection: %v\n%s", err, out)
	}
	if !strings.HasSuffix(home.ActivationPackage, "-home-manager-generation.drv") {
		t.Fatalf("activation-package = %q, want the derivation", home.ActivationPackage)
	}
	return home.Target(name)
}

func nixString(s string) string {
	b, _ := json.Marshal(s)
	return strings.ReplaceAll(string(b), "${", `\${`)
}

// aliceHost is a host where alice may add paths to the Nix store (through
// its daemon) and has no sudo.
func aliceHost(name string) fakehost.HostSpec {
	return fakehost.HostSpec{Name: name, NixDaemon: true, Users: []fakehost.UserSpec{{Name: "alice", Trusted: true}}}
}

// homeState is what the test home configuration left in alice's home.
type homeState struct {
	profile  string // the home-manager profile's link: "home-manager-<n>-link"
	gen      string // what that generation links to
	greeting string // the linked file's content
	link     string // where ~/.config/greeting points
}

func homeStateOf(t *testing.T, h *fakehost.Host) homeState {
	t.Helper()
	p := "/home/alice/.local/state/nix/profiles/home-manager"
	out := sh(t, h, fmt.Sprintf(`readlink %[1]s; readlink %[1]s-$(readlink %[1]s | sed 's/.*-\([0-9]*\)-link/\1/')-link; cat /home/alice/.config/greeting; readlink /home/alice/.config/greeting`, p))
	l := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(l) != 4 {
		t.Fatalf("alice's home: %q", out)
	}
	return homeState{profile: l[0], gen: l[1], greeting: l[2], link: l[3]}
}

// TestHomeTarget deploys a home-manager configuration on its own to a host
// where its user has no sudo: a new generation of the user's profile, the
// linked file, the secrets as the user; a second deploy makes generation 2.
func TestHomeTarget(t *testing.T) {
	f := newFleet(t, aliceHost("other"))
	h := f.Host("other")
	const name = "alice@other"

	r := newRunner(t, map[string]*config.Host{name: homeTarget(t, f, name, homeConfig{greeting: "hello 1"})})
	res := r.run(name)
	if res.code != 0 {
		t.Fatalf("deploy: %s", res)
	}
	st := homeStateOf(t, h)
	if st.profile != "home-manager-1-link" || !strings.HasSuffix(st.gen, "-home-manager-generation") || st.greeting != "hello 1" ||
		st.link != st.gen+"/home-files/.config/greeting" {
		t.Errorf("after the first deploy: %+v", st)
	}
	if got := sh(t, h, "stat -c '%U:%G %a' /home/alice/lollypops-secrets/token; cat /home/alice/lollypops-secrets/token"); got != "alice:alice 400\nhome-secret-value" {
		t.Errorf("the secret: %q", got)
	}
	if got := sh(t, h, "stat -c '%U %a' /home/alice/.local/state/lollypops/secrets.manifest"); got != "alice 600\n" {
		t.Errorf("the secrets' manifest: %q", got)
	}
	// Everything ran as alice: nothing of root's in her home, no sudo.
	if got := sh(t, h, "find /home/alice ! -user alice"); got != "" {
		t.Errorf("files in alice's home not hers:\n%s", got)
	}
	if got := sh(t, h, "su -s /bin/sh -c 'sudo -n true 2>/dev/null && echo can sudo || echo no sudo' alice"); got != "no sudo\n" {
		t.Errorf("alice: %q", got)
	}
	if !strings.Contains(res.output(), "home-manager: activated "+st.gen+" as alice") {
		t.Errorf("the activation's output is missing:\n%s", res)
	}
	if sl := summaryLine(res, name); !strings.HasPrefix(sl, name+" ok") {
		t.Errorf("summary line %q\n%s", sl, res)
	}
	if acts := activations(t, h); len(acts) != 0 {
		t.Errorf("the host's system was activated: %v", acts)
	}

	// A changed configuration: generation 2, the link follows; its new
	// secret waits for the activation, the old one goes (remove-stale,
	// from the manifest in the home).
	r2 := newRunner(t, map[string]*config.Host{name: homeTarget(t, f, name,
		homeConfig{greeting: "hello 2", secret: "token2", uploadAt: config.PostActivation, removeStale: true})})
	res = r2.run(name)
	if res.code != 0 {
		t.Fatalf("second deploy: %s", res)
	}
	if got := sh(t, h, "stat -c '%U:%G %a' /home/alice/lollypops-secrets/token2; ls /home/alice/lollypops-secrets"); got != "alice:alice 400\ntoken2\n" {
		t.Errorf("the secrets after the second deploy: %q", got)
	}
	out := res.output()
	if a, s := strings.Index(out, "home-manager: activated"), strings.Index(out, "/home/alice/lollypops-secrets/token2"); a < 0 || s < a {
		t.Errorf("the post-activation secret was not written after the activation:\n%s", res)
	}
	st2 := homeStateOf(t, h)
	if st2.profile != "home-manager-2-link" || st2.gen == st.gen || st2.greeting != "hello 2" {
		t.Errorf("after the second deploy: %+v (first %+v)", st2, st)
	}
	if got := sh(t, h, "readlink /home/alice/.local/state/nix/profiles/home-manager-1-link"); got != st.gen+"\n" {
		t.Errorf("generation 1 is gone: %q", got)
	}

	// NixOS's other actions mean nothing for a home: refused before the
	// host is contacted.
	before := authCount(t, h)
	res = r2.run(name, "REBUILD_ACTION=boot")
	if res.code == 0 || !strings.Contains(res.output(), "REBUILD_ACTION=boot: alice@other is a home-manager configuration") {
		t.Errorf("boot of a home: %s", res)
	}
	if after := authCount(t, h); after != before {
		t.Errorf("the refused run logged in %d times", after-before)
	}
}

// TestHomeAndHostsInOneRun: `all` deploys a NixOS host and a home target;
// listing, --on globs and tags see both.
func TestHomeAndHostsInOneRun(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "host1"}, aliceHost("other"))
	const name = "alice@other"
	r := newRunner(t, map[string]*config.Host{"host1": host(f, "host1"), name: homeTarget(t, f, name, homeConfig{greeting: "hello"})})

	list := r.run("--list-all")
	if list.code != 0 {
		t.Fatalf("--list-all: %s", list)
	}
	for _, task := range []string{"alice@other:", "alice@other:check-vars:", "alice@other:deploy-secrets:", "alice@other:rebuild:", "host1:deploy-flake:", "all:"} {
		if !strings.Contains(list.stdout, "* "+task) {
			t.Errorf("--list-all lacks %s:\n%s", task, list.stdout)
		}
	}
	for _, absent := range []string{"alice@other:deploy-flake", "alice@other:diff"} {
		if strings.Contains(list.stdout, absent) {
			t.Errorf("--list-all shows %s:\n%s", absent, list.stdout)
		}
	}

	dry := r.run("--dry", "--on", "alice@*")
	if dry.code != 0 || !strings.Contains(dry.output(), "nix-store --realise") || strings.Contains(dry.output(), "host1") {
		t.Errorf("--dry --on 'alice@*': %s", dry)
	}
	dry = r.run("--dry", "--on", "@desktop")
	if dry.code != 0 || !strings.Contains(dry.output(), "/activate") || strings.Contains(dry.output(), "host1:") {
		t.Errorf("--dry --on @desktop: %s", dry)
	}

	res := r.run("all")
	if res.code != 0 {
		t.Fatalf("all: %s", res)
	}
	if sl := summaryLine(res, "host1"); !strings.HasPrefix(sl, "host1 ok") {
		t.Errorf("host1's summary line %q\n%s", sl, res)
	}
	if sl := summaryLine(res, name); !strings.HasPrefix(sl, name+" ok") {
		t.Errorf("%s's summary line %q\n%s", name, sl, res)
	}
	if st := homeStateOf(t, f.Host("other")); st.profile != "home-manager-1-link" || st.greeting != "hello" {
		t.Errorf("alice's home: %+v", st)
	}
	if got := systemOf(t, f.Host("host1")).kernel; got != deployedKernel {
		t.Errorf("host1 runs kernel %q, not the deployed system's", got)
	}
}

// TestFlakeHomeTarget: a flake's homeConfigurations, evaluated by the
// runner (--flake) through the projection of lollypops' home-manager
// module (lollypops.inventory-entry, here the real nix/project-home.nix in
// the flake), only when the command needs them, alongside its
// nixosConfigurations.
func TestFlakeHomeTarget(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "host1"}, aliceHost("other"))
	dir := filepath.Join(t.TempDir(), "fleet")
	project, err := os.ReadFile("../../nix/project-home.nix")
	if err != nil {
		t.Fatal(err)
	}
	parts, err := os.ReadFile("../../nix/entry-parts.nix")
	if err != nil {
		t.Fatal(err)
	}
	c := host(f, "host1")
	configs := map[string]string{
		"host1": entryConfig(t, c),
		"trap":  `{ lollypops.inventory-entry = { name, flake }: throw "trap was evaluated"; }`,
	}
	homes := fmt.Sprintf(`homeConfigurations."alice@other" = let
      h = import ./home.nix { greeting = "from the flake"; sshConfig = %s; secret = "token"; uploadAt = "pre-activation"; removeStale = false; };
    in h // { config = h.config // { lollypops = h.config.lollypops // {
      inventory-entry = { name, ... }: import ./project-home.nix { inherit name; home = h; };
    }; }; };`, nixString(f.SSHConfig))
	if err := fakehost.WriteFlakeWithOutputs(dir, map[string]fakehost.System{"host1": {Kernel: deployedKernel}}, configs, homes); err != nil {
		t.Fatal(err)
	}
	// A pure evaluation has no builtins.currentSystem.
	system := map[string]string{"amd64": "x86_64-linux", "arm64": "aarch64-linux"}[runtime.GOARCH]
	pure := strings.ReplaceAll(homeNix, "builtins.currentSystem", nixString(system))
	for file, text := range map[string]string{"home.nix": pure, "builder.sh": homeBuilder, "activate.sh": homeActivate, "project-home.nix": string(project), "entry-parts.nix": string(parts)} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	work := filepath.Join(t.TempDir(), "work")
	os.Mkdir(work, 0o755)
	r := &runner{t: t, dir: work, flake: dir}
	const name = "alice@other"

	res := r.run(name)
	if res.code != 0 || strings.Contains(res.output(), "trap") {
		t.Fatalf("%s alone, without evaluating the hosts:\n%s", name, res)
	}
	if st := homeStateOf(t, f.Host("other")); st.profile != "home-manager-1-link" || st.greeting != "from the flake" {
		t.Errorf("alice's home: %+v", st)
	}

	res = r.run("all")
	if res.code != 3 || !strings.HasPrefix(summaryLine(res, "host1"), "host1 ok") ||
		!strings.HasPrefix(summaryLine(res, name), name+" ok") || !strings.HasPrefix(summaryLine(res, "trap"), "trap failed") {
		t.Errorf("all: want host1 and %s ok, trap failed:\n%s", name, res)
	}
	// The same package again: activated, no new generation.
	if st := homeStateOf(t, f.Host("other")); st.profile != "home-manager-1-link" || st.greeting != "from the flake" {
		t.Errorf("alice's home after all: %+v", st)
	}
}
