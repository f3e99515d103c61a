// Package e2e runs the real lollypops binaries against real fake hosts:
// sshd processes in their own namespaces, each with its own Nix store (see
// go/dev/fakehost), reached with the real ssh, nix copy and secret
// commands. The hosts' nixos-rebuild builds the deployed flake's fake NixOS
// system with the host's own Nix and activates it (docs/fakehosts.md).
//
// The tests need root, sshd, nix and unshare; without them they skip with
// one line saying what is missing.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

var (
	// bin holds lollypops and lollypops-step, built once for all tests.
	bin string
	// flake is the test flake's source in the deployer's store: a fake
	// NixOS system for each of flakeHosts.
	flake string
	// skip says why the tests cannot run here; "" when they can.
	skip string
)

// flakeHosts are the host names the tests deploy the flake to; each has a
// nixosConfigurations entry, as on a real fleet. newFleet refuses others.
var flakeHosts = []string{"host1", "host2", "host3", "archived", "copied", "bad", "good", "down", "other",
	"nosshd", "broken", "checked", "rebooted", "samekernel", "rotated", "builder", "built", "waiting"}

// deployedKernel is the kernel of the flake's systems, unlike the one the
// hosts boot first (fakehost's default, 6.6.30): a host runs the deployed
// system when its /run/current-system/kernel says so.
const deployedKernel = "6.6.31-e2e"

// diffPackages are the packages of host2's system in the test flake.
var diffPackages = []string{"hello-2.12.1", "curl-8.5.0"}

func TestMain(m *testing.M) {
	os.Exit(setup(m))
}

// nixConf gives the deployer's Nix a configuration of the tests' own
// unless NIX_CONF_DIR is set (the Makefile sets it): this machine's
// nix.conf may be missing or name a build-users-group that does not exist.
func nixConf(dir string) error {
	if os.Getenv("NIX_CONF_DIR") != "" {
		return nil
	}
	conf := filepath.Join(dir, "nix-conf")
	if err := os.Mkdir(conf, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(conf, "nix.conf"), []byte(fakehost.TestNixConf), 0o644); err != nil {
		return err
	}
	return os.Setenv("NIX_CONF_DIR", conf)
}

func setup(m *testing.M) int {
	if err := fakehost.Available(); err != nil {
		skip = "e2e: " + err.Error()
		return m.Run()
	}
	if _, err := exec.LookPath("nix"); err != nil {
		skip = "e2e: nix is not installed (apt-get install nix-bin)"
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "lollypops-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := nixConf(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	bin = filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "../cmd/lollypops", "../cmd/lollypops-step")
	// As nix/package.nix builds them: static, without cgo.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the binaries:", err)
		return 1
	}
	systems := map[string]fakehost.System{}
	for _, n := range flakeHosts {
		systems[n] = fakehost.System{Kernel: deployedKernel}
	}
	// host2's system has packages its first generation lacks, for diffs.
	systems["host2"] = fakehost.System{Kernel: deployedKernel, Packages: diffPackages}
	// Systems that break the host: without sshd, or failing to activate.
	systems["nosshd"] = fakehost.System{Kernel: deployedKernel, StopSSHD: true}
	systems["broken"] = fakehost.System{Kernel: deployedKernel, FailActivation: true}
	// The kernel the hosts boot first, with a package more: a new system
	// that needs no reboot.
	systems["samekernel"] = fakehost.System{Packages: []string{"hello-2.12.1"}}
	// A web service and two units without a process, for the units of
	// rotated secrets.
	systems["rotated"] = fakehost.System{Kernel: deployedKernel, HTTP: fakehost.HTTPHealthy,
		RestartUnits: []string{"app.service", "worker.service", "cache.service"}}
	// Services that wait for their secret (TestSecretUnits); the host
	// boots this system first.
	systems["waiting"] = waitingSystem
	// Built only on a build host (TestBuildHost): never in the deployer's
	// store.
	systems["built"] = fakehost.System{Kernel: deployedKernel, Packages: []string{"built-elsewhere-1.0"}}
	src := filepath.Join(dir, "flake", "source")
	if err := fakehost.WriteFlake(src, systems); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if flake, err = storeAdd(src); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// storeAdd adds a directory to the deployer's store; the path is read from
// stdout only, as Nix may warn on stderr.
func storeAdd(dir string) (string, error) { return fakehost.StoreAdd(dir) }

// addFlake writes a flake with a lock file and adds it to the deployer's
// store. inputs maps input names to store paths (path: inputs). It defines
// no system: deploy-flake only.
func addFlake(dir, outputs string, inputs map[string]string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var in strings.Builder
	for name, p := range inputs {
		fmt.Fprintf(&in, "  inputs.%s.url = \"path:%s\";\n", name, p)
	}
	src := fmt.Sprintf("{\n%s  outputs = %s;\n}\n", in.String(), outputs)
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(src), 0o644); err != nil {
		return "", err
	}
	lock := exec.Command("nix", "--extra-experimental-features", "nix-command flakes", "--offline", "flake", "lock")
	lock.Dir = dir
	if out, err := lock.CombinedOutput(); err != nil {
		return "", fmt.Errorf("nix flake lock: %v: %s", err, out)
	}
	return storeAdd(dir)
}

func requireHosts(t *testing.T) {
	t.Helper()
	if skip != "" {
		t.Skip(skip)
	}
}

// newFleet starts fake hosts for the test.
func newFleet(t *testing.T, specs ...fakehost.HostSpec) *fakehost.Fleet {
	t.Helper()
	requireHosts(t)
	for _, s := range specs {
		if !slices.Contains(flakeHosts, s.Name) {
			t.Fatalf("e2e: host %q has no system in the test flake; add it to flakeHosts", s.Name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := fakehost.New(ctx, t.TempDir(), specs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func hosts(names ...string) []fakehost.HostSpec {
	specs := make([]fakehost.HostSpec, len(names))
	for i, n := range names {
		specs[i] = fakehost.HostSpec{Name: n}
	}
	return specs
}

func ptr[T any](v T) *T { return &v }

// host returns a host with the modules' defaults, reached through the
// fleet's ssh_config — but for rollback, which the modules enable: most
// tests drive the host's nixos-rebuild (its knobs, its call records); the
// tests of the guarded activation enable it.
func host(f *fakehost.Fleet, name string) *config.Host {
	return &config.Host{
		Flake: flake,
		Deployment: config.Deployment{
			ConfigDir:    "/var/src/lollypops",
			DeployMethod: config.MethodCopy,
			Tags:         []string{},
			SSH: config.SSH{Host: name, User: ptr("root"), Command: "ssh",
				Opts: []string{"-F", f.SSHConfig}, HostKeyPolicy: config.HostKeyStrict},
			Sudo:         config.Sudo{Command: "sudo", Opts: []string{}},
			Rollback:     config.Rollback{Enable: false, ConfirmTimeout: 30},
			HealthChecks: map[string]config.HealthCheck{},
			Reboot:       config.Reboot{Timeout: 300},
		},
		Secrets:    config.Secrets{Files: []config.Secret{}},
		Tasks:      []string{config.TaskDeployFlake, config.TaskDeploySecrets, config.TaskRebuild},
		ExtraTasks: map[string]config.ExtraTask{},
	}
}

// secret returns a secret with the module's defaults.
func secret(name, cmd, path string) config.Secret {
	return config.Secret{Name: name, Cmd: cmd, Path: path, Owner: "root", Group: "root", Mode: "0400",
		UploadAt: config.PreActivation, RestartUnits: []string{}, ReloadUnits: []string{}}
}

// result is one lollypops run.
type result struct {
	code           int
	stdout, stderr string
}

// output is everything the run printed: go-task's prefixed output puts the
// steps' stdout and stderr together on stdout.
func (r result) output() string { return r.stdout + r.stderr }

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// runner runs lollypops with an inventory, in its own working directory.
type runner struct {
	t     *testing.T
	inv   string
	flake string // instead of inv: the flake whose hosts the runner evaluates
	dir   string
	env   []string

	// cache is the runner's own XDG_CACHE_HOME, so that its evaluation
	// cache (docs/eval-cache.md) is neither the machine's nor another
	// test's: every test starts cold.
	cacheOnce sync.Once
	cache     string
}

// cacheHome returns the runner's XDG_CACHE_HOME, made on first use.
func (r *runner) cacheHome() string {
	r.cacheOnce.Do(func() { r.cache = r.t.TempDir() })
	return r.cache
}

func newRunner(t *testing.T, hs map[string]*config.Host) *runner {
	t.Helper()
	data, err := json.MarshalIndent(config.Inventory{Version: config.Version, Hosts: hs}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.json")
	if err := os.WriteFile(inv, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// The inventory must be one Nix could have written.
	if _, err := config.Load(inv); err != nil {
		t.Fatalf("test inventory: %v", err)
	}
	work := filepath.Join(dir, "work")
	os.Mkdir(work, 0o755)
	return &runner{t: t, inv: inv, dir: work}
}

func (r *runner) run(args ...string) result {
	r.t.Helper()
	return r.runCtx(context.Background(), nil, args...)
}

func (r *runner) runCtx(ctx context.Context, started func(*exec.Cmd), args ...string) result {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "lollypops"), append(r.source(), args...)...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+r.cacheHome())
	cmd.Env = append(cmd.Env, r.env...)
	// Its own process group, as a shell's foreground job: a test can send
	// it the terminal's Ctrl-C.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	if started != nil {
		started(cmd)
	}
	err := cmd.Wait()
	res := result{stdout: o.String(), stderr: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("lollypops: %v\n%s", err, res)
	}
	return res
}

// source is the flag that says where the runner's hosts come from.
func (r *runner) source() []string {
	if r.flake != "" {
		return []string{"--flake", r.flake}
	}
	return []string{"--inventory", r.inv}
}

// sh runs a shell command on a fake host and returns its stdout.
func sh(t *testing.T, h *fakehost.Host, script string) string {
	t.Helper()
	out, err := h.Exec(context.Background(), "sh", "-c", script)
	if err != nil {
		t.Fatalf("%s: %s: %v", h.Name, script, err)
	}
	return string(out)
}

// summaryLine returns the summary line of a host ("host1  ok  ...").
func summaryLine(r result, host string) string {
	for _, l := range strings.Split(r.stderr, "\n") {
		f := strings.Fields(strings.TrimPrefix(l, "lollypops:"))
		if len(f) >= 2 && f[0] == host && (f[1] == "ok" || f[1] == "failed" || f[1] == "not" || f[1] == "incomplete") {
			return strings.Join(f, " ")
		}
	}
	return ""
}

func authCount(t *testing.T, h *fakehost.Host) int {
	t.Helper()
	n, err := h.AuthCount()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// system is what a fake host runs and will boot, and its system profile.
type system struct {
	current, bootDefault, kernel string
	gens                         []fakehost.Generation
}

func systemOf(t *testing.T, h *fakehost.Host) system {
	t.Helper()
	var s system
	var err error
	if s.current, err = h.CurrentSystem(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s.bootDefault, err = h.BootDefault(); err != nil {
		t.Fatal(err)
	}
	if s.gens, err = h.Generations(); err != nil {
		t.Fatal(err)
	}
	s.kernel = strings.TrimSpace(sh(t, h, "cat /run/current-system/kernel"))
	return s
}

// activations are the actions of the host's switch-to-configuration calls
// that exited 0.
func activations(t *testing.T, h *fakehost.Host) []string {
	t.Helper()
	acts, err := h.Activations()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range acts {
		if a.Exit == 0 {
			out = append(out, strings.Join(a.Args, " "))
		}
	}
	return out
}
