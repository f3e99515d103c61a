package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const (
	minimal = "../../internal/config/testdata/minimal.json"
	full    = "../../internal/config/testdata/full.json"
)

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	in := newInterrupter()
	defer in.stop()
	code = run(in, args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

// listed returns the task names of a go-task listing.
func listed(out string) []string {
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\* (\S+):(\s|$)`).FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	return names
}

// --on and --exclude pick hosts by name, glob and tag, before go-task runs.
func TestOnAndExclude(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want []string // lines of stderr (prefix) or tasks in --dry's output
	}{
		{[]string{"--on", "@web", "--dry"}, 0, []string{"[ahorn:rebuild]"}},
		{[]string{"--on", "b*", "deploy-secrets", "--dry"}, 0, []string{"[birne:deploy-secrets]"}},
		{[]string{"--exclude", "@web", "--dry"}, 0, []string{"[birne:rebuild]"}},
		{[]string{"--on", "@wbe"}, exitUsage, []string{"lollypops: --on @wbe matches no host",
			`lollypops: hint: did you mean "@web"? hosts: ahorn, birne; tags: @eu-west, @web`}},
		{[]string{"--on", "ahorn", "--exclude", "a*"}, exitUsage, []string{"lollypops: --on ahorn without the excluded hosts matches no host"}},
		{[]string{"--on", "ahorn", "birne:rebuild"}, exitUsage, []string{`lollypops: "birne:rebuild" with --on: name steps (deploy-secrets, rebuild, an extra task), not tasks`}},
		{[]string{"--on", "@web", "deploy-secrest"}, exitUsage, []string{`lollypops: no selected host has a step "deploy-secrest"`,
			`lollypops: hint: did you mean "deploy-secrets"? the steps of the selected hosts: check-vars, deploy-flake, deploy-secrets, rebuild, diff, example`}},
		{[]string{"--on", "a,,b"}, exitUsage, []string{`lollypops: --on "a,,b": an empty host, glob or @tag`}},
	} {
		code, out, errOut := runCLI(t, append([]string{"--inventory", full}, c.args...)...)
		if code != c.code {
			t.Errorf("%q: exit %d, want %d: %s", c.args, code, c.code, errOut)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(out+errOut, w) {
				t.Errorf("%q: output lacks %q:\n%s%s", c.args, w, out, errOut)
			}
		}
		if c.code == 0 {
			other := map[bool]string{true: "birne", false: "ahorn"}[strings.Contains(c.want[0], "ahorn")]
			if strings.Contains(out+errOut, "["+other+":") {
				t.Errorf("%q: %s was not excluded:\n%s", c.args, other, errOut)
			}
		}
	}
}

// --list-all ends with each tag and its hosts; without tags, nothing.
func TestListAllShowsTags(t *testing.T) {
	code, out, errOut := runCLI(t, "--inventory", full, "--list-all")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasSuffix(out, "Tags:\n* @eu-west:  ahorn\n* @web:      ahorn\n") {
		t.Errorf("listing:\n%s", out)
	}
	if _, out, _ := runCLI(t, "--inventory", minimal, "--list-all"); strings.Contains(out, "Tags:") {
		t.Errorf("tags listed for a fleet without tags:\n%s", out)
	}
	if _, out, _ := runCLI(t, "--inventory", full, "--list-all", "--json"); strings.Contains(out, "Tags:") {
		t.Errorf("tags in the JSON listing:\n%s", out)
	}
}

func TestListAllIsTheSeedListing(t *testing.T) {
	code, out, errOut := runCLI(t, "--inventory", minimal, "--list-all")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "task: Available tasks for this project:\n") {
		t.Errorf("listing header: %q", out)
	}
	// The seed README's listing for its minimal example, plus each host's
	// diff and "all".
	want := []string{
		"host1", "host1:check-vars", "host1:deploy-flake", "host1:deploy-secrets", "host1:rebuild", "host1:diff",
		"host2", "host2:check-vars", "host2:deploy-flake", "host2:deploy-secrets", "host2:rebuild", "host2:diff",
		"all",
	}
	if got := listed(out); !slices.Equal(got, want) {
		t.Errorf("listing:\n got %q\nwant %q\n%s", got, want, out)
	}
	// go-task's own orders stay available.
	_, out, _ = runCLI(t, "--inventory", minimal, "--list-all", "--sort", "default")
	if got := listed(out); got[0] != "all" || got[1] != "host1" || got[2] != "host2" {
		t.Errorf("--sort default: %q", got)
	}
	_, out, _ = runCLI(t, "--inventory", minimal, "-a", "-s")
	if !strings.HasPrefix(out, "host1\nhost1:check-vars\n") {
		t.Errorf("-a -s: %q", out)
	}
}

func TestBareRunLists(t *testing.T) {
	code, out, errOut := runCLI(t, "--inventory", full)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !slices.Contains(listed(out), "ahorn:deploy-secrets") {
		t.Errorf("no listing: %q", out)
	}
	if !strings.Contains(errOut, "lollypops: hint: run a host's task, e.g. lollypops ahorn") {
		t.Errorf("no hint: %q", errOut)
	}
}

func TestErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	data, _ := os.ReadFile(minimal)
	os.WriteFile(bad, bytes.Replace(data, []byte(`"mode"`), []byte(`"mode"`), 1), 0o600)
	os.WriteFile(bad, bytes.Replace(data, []byte(`"deploy-method": "copy"`), []byte(`"deploy-method": "rsync"`), 1), 0o600)
	cases := []struct {
		name  string
		args  []string
		code  int
		lines []string // expected stderr lines, in order
	}{
		{"no inventory", []string{"--list"}, exitUsage, []string{
			"lollypops: no hosts given: neither --flake nor --inventory",
			"lollypops: hint: run lollypops through your flake's app (nix run . -- ...), which passes the flake; or pass --flake DIR"}},
		{"missing inventory", []string{"--inventory", "/nonexistent.json", "all"}, exitError, []string{
			"lollypops: inventory: cannot read /nonexistent.json: no such file or directory"}},
		{"bad inventory", []string{"--inventory", bad, "all"}, exitError, []string{
			`lollypops: inventory: host "host1": deployment.deploy-method: "rsync" is not one of "copy", "archive"`}},
		{"unknown task", []string{"--inventory", minimal, "hots1"}, exitUsage, []string{
			`lollypops: unknown task "hots1"`,
			`lollypops: hint: did you mean "host1"? lollypops --list-all shows every task`}},
		{"bad action", []string{"--inventory", minimal, "host1", "REBUILD_ACTION=swtich"}, exitUsage, []string{
			`lollypops: REBUILD_ACTION "swtich" is not one of switch, boot, test, dry-activate, build`,
			`lollypops: hint: did you mean "switch"? REBUILD_ACTION=boot builds and makes the new system the boot default without activating it; dry-activate shows what switch would do`}},
		{"step prefix", []string{"--inventory", minimal, "host1:deploy"}, exitUsage, []string{
			`lollypops: unknown task "host1:deploy"`,
			`lollypops: hint: did you mean "host1:deploy-flake" or "host1:deploy-secrets"? lollypops --list-all shows every task`}},
		{"unknown flag", []string{"--inventory", minimal, "--frobnicate"}, exitUsage, []string{
			"lollypops: unknown flag: --frobnicate", "lollypops: hint: lollypops --help lists the flags"}},
		{"taskfile flag", []string{"--inventory", minimal, "-t", "Taskfile.yml"}, exitUsage, []string{
			"lollypops: --taskfile cannot be used with lollypops: its Taskfile is generated from the inventory"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, c.code, errOut)
			}
			if out != "" {
				t.Errorf("stdout: %q", out)
			}
			got := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
			for i, want := range c.lines {
				if i >= len(got) || got[i] != want {
					t.Errorf("stderr:\n%s\nwant line %d: %s", errOut, i, want)
					break
				}
			}
		})
	}
}

func TestActionFromEnvironment(t *testing.T) {
	t.Setenv("REBUILD_ACTION", "reboot")
	code, _, errOut := runCLI(t, "--inventory", minimal, "--dry", "host1")
	if code != exitUsage || !strings.Contains(errOut, `REBUILD_ACTION "reboot"`) {
		t.Errorf("exit %d: %s", code, errOut)
	}
	// A command-line variable wins over the environment.
	code, _, errOut = runCLI(t, "--inventory", minimal, "--dry", "host1", "REBUILD_ACTION=test")
	if code != 0 || !strings.Contains(errOut, "switch-to-configuration test, then waits 30s for the confirmation (rolls back without it)\n") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// --dry prints readable lines with a real run's [host:step] prefix, and
// each host's shared connection once, as a user would type it.
func TestDryShowsCommands(t *testing.T) {
	code, out, errOut := runCLI(t, "--inventory", full, "--dry", "ahorn", "birne")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"\n[ahorn:deploy-secrets] ssh -l deploy -p 2222 -o 'ProxyCommand=ssh -W %h:%p jump.example.org' ahorn.example.org  # the run's one connection to ahorn",
		"\n[ahorn:deploy-secrets] pass nixos-secrets/ahorn/backup-key  # secret",
		"\n[ahorn:deploy-secrets] on ahorn: sudo -H sh -c '<lollypops secret receiver: 3 files on stdin>' lollypops-secrets",
		"\n[ahorn:example] echo 'this is a task'",
		"\n[ahorn:rebuild] nix build -L /nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source#nixosConfigurations.ahorn.config.system.build.toplevel",
		"\n[birne:deploy-flake] ssh 10.0.0.2  # the run's one connection to birne",
		"\n[birne:deploy-flake] nix copy --to ssh://10.0.0.2 --substitute-on-destination /nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source",
		"\n[birne:rebuild] nix build 'path:/nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source#nixosConfigurations.\"birne\".config.system.build.toplevel'  # builds the system here",
		"\n[birne:rebuild] on birne: sudo systemd-run '--unit=lollypops-activation-<id>' '--description=lollypops activation <id>' --collect --quiet --no-ask-password '--service-type=exec' '--setenv=PATH' '--setenv=LOCALE_ARCHIVE' -- /bin/sh -c '<lollypops-guard script>' lollypops-guard run '/run/lollypops/activation/<id>' '<the system>' switch 30 /nix/var/nix/profiles/system ''  # detached from the connection: switch-to-configuration test, then waits 30s for the confirmation (rolls back without it); only then the profile and the boot loader",
	} {
		if !strings.Contains("\n"+errOut, want) {
			t.Errorf("--dry output lacks %q:\n%s", want[1:], errOut)
		}
	}
	for _, h := range []string{"ahorn", "birne"} {
		if n := strings.Count(errOut, "the run's one connection to "+h); n != 1 {
			t.Errorf("%s's connection shown %d times:\n%s", h, n, errOut)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if strings.HasPrefix(l, "task:") || strings.Contains(l, "ControlPath") || !strings.HasPrefix(l, "[") {
			t.Errorf("not a readable [host:step] line: %q", l)
		}
	}
	if strings.Contains(out+errOut, "summary") {
		t.Error("a dry run printed a deploy summary")
	}
}

// Overrides change how this run reaches its hosts: --dry shows them; bad
// values are refused with the flag named; LP_* variables still work.
func TestOverrides(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  string
		code int
		want string
	}{
		{[]string{"--dry", "birne", "--ssh-user", "bob", "--ssh-opts", "-p 2200 -o 'ProxyJump=j 1'", "--ssh-host", "127.0.0.9"},
			"", 0, "[birne:deploy-flake] ssh -l bob -p 2200 -o 'ProxyJump=j 1' 127.0.0.9  # the run's one connection"},
		{[]string{"--dry", "birne", "--sudo=false", "--local-evaluation=false"}, "", 0,
			"[birne:rebuild] on birne: sh -c '<lollypops build: nix build path:<the store path /var/src/lollypops/flake points to>"},
		{[]string{"--dry", "ahorn", "--sudo-command", "doas", "--sudo-opts", "-u root"}, "", 0,
			"on ahorn: doas -u root sh -c '<lollypops secret receiver"},
		{[]string{"--dry", "birne", "LP_REMOTE_USER=carol"}, "", 0,
			"lollypops: LP_REMOTE_USER (on the command line) is the original lollypops' override; use --ssh-user"},
		{[]string{"--dry", "birne"}, "LP_REMOTE_HOST=127.0.0.7", 0, "[birne:deploy-flake] ssh 127.0.0.7 "},
		{[]string{"--dry", "all", "--ssh-host", "127.0.0.9"}, "", exitUsage,
			`lollypops: --ssh-host "127.0.0.9": the run touches 2 hosts; say which one` + "\nlollypops: hint: write --ssh-host HOST=127.0.0.9, once per host"},
		{[]string{"--dry", "all", "--ssh-host", "birne=127.0.0.9"}, "", 0, "[birne:deploy-flake] ssh 127.0.0.9 "},
		{[]string{"--dry", "birne", "--ssh-host", "ahorn=127.0.0.9"}, "", exitUsage, `"ahorn" is not a host this run touches (birne)`},
		{[]string{"--dry", "birne", "--ssh-user", "a b"}, "", exitUsage,
			`lollypops: with the overrides of this run, host "birne": deployment.ssh.user: "a b" is not a user name`},
		{[]string{"--dry", "birne", "--ssh-opts", "-p $PORT"}, "", exitUsage, `lollypops: --ssh-opts "-p $PORT": not plain words`},
		// A build host: evaluated here (birne's key policy, accept-new, goes with it), built there, copied from there.
		{[]string{"--dry", "birne", "--build-host", "nix@builder.example.org:2222"}, "", 0,
			"[birne:rebuild] on build host nix@builder.example.org: nix-store --realise '<the derivation>'"},
		{[]string{"--dry", "birne", "--build-host", "nix@builder.example.org:2222"}, "", 0,
			"[birne:rebuild] nix copy --from ssh://nix@builder.example.org --to ssh://10.0.0.2 --substitute-on-destination '<the system>'"},
		{[]string{"--dry", "birne", "--local-evaluation=false", "--build-host", "[fd00::1]:22"}, "", 0,
			"[birne:rebuild] nix eval --raw 'path:/nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source#nixosConfigurations.\"birne\".config.system.build.toplevel.drvPath'  # evaluates the system's derivation here"},
		{[]string{"--dry", "birne", "--build-host", "builder:99999"}, "", exitUsage, `lollypops: --build-host "builder:99999": "99999" is not a port`},
		{[]string{"--dry", "birne", "--build-host", "a b"}, "", exitUsage,
			`lollypops: with the overrides of this run, host "birne": deployment.build-host.host: "a b" is not a host name, alias or address`},
		{[]string{"--dry", "birne"}, "LP_REMOTE_SSH_OPTS=-p `x`", exitUsage, "lollypops: LP_REMOTE_SSH_OPTS \"-p `x`\": not plain words"},
	} {
		if c.env != "" {
			k, v, _ := strings.Cut(c.env, "=")
			t.Setenv(k, v)
		}
		code, out, errOut := runCLI(t, append([]string{"--inventory", full}, c.args...)...)
		if c.env != "" {
			k, _, _ := strings.Cut(c.env, "=")
			os.Unsetenv(k)
		}
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("%q %s: exit %d (want %d), output lacks %q:\n%s%s", c.args, c.env, code, c.code, c.want, out, errOut)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	code, out, _ := runCLI(t, "--version")
	if code != 0 || !regexp.MustCompile(`^lollypops \S+ \(go-task v3\.\d+\.\d+\)\n$`).MatchString(out) {
		t.Errorf("--version: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "--help")
	for _, want := range []string{"Usage: lollypops", "--flake REF", "--inventory FILE", "--eval-jobs int", "-p, --parallel", "Exit codes:"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// A description that is a template still sees the environment when listed.
func TestTemplatedDescription(t *testing.T) {
	data, _ := os.ReadFile(full)
	inv := filepath.Join(t.TempDir(), "inv.json")
	os.WriteFile(inv, bytes.Replace(data, []byte(`"An example task"`), []byte(`"runs as {{.LOLLYPOPS_TEST_USER}}"`), 1), 0o600)
	t.Setenv("LOLLYPOPS_TEST_USER", "alice")
	code, out, errOut := runCLI(t, "--inventory", inv, "--list-all")
	if code != 0 || !strings.Contains(out, "runs as alice") {
		t.Errorf("exit %d: %s%s", code, out, errOut)
	}
	if os.Getenv("LOLLYPOPS_TEST_USER") != "alice" || os.Getenv("PATH") == "" {
		t.Error("the environment was not restored after listing")
	}
	code, out, _ = runCLI(t, "--inventory", full, "--list-all")
	if code != 0 || os.Getenv("LOLLYPOPS_TEST_USER") != "alice" || os.Getenv("PATH") == "" {
		t.Errorf("listing without the environment did not restore it: %d %s", code, out)
	}
}
