// Package e2e runs the real lollypops binaries against real fake hosts:
// sshd processes in their own namespaces, each with its own Nix store (see
// internal/fakehost), reached with the real ssh, nix copy and secret
// commands. Only nixos-rebuild is a recording stand-in.
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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/fakehost"
)

var (
	// bin holds lollypops and lollypops-step, built once for all tests.
	bin string
	// flake is a small flake's source in the deployer's store.
	flake string
	// skip says why the tests cannot run here; "" when they can.
	skip string
)

func TestMain(m *testing.M) {
	os.Exit(setup(m))
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
	bin = filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "../cmd/lollypops", "../cmd/lollypops-step")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the binaries:", err)
		return 1
	}
	if flake, err = addFlake(filepath.Join(dir, "flake", "source"), "_: { }", nil); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// addFlake writes a flake with a lock file and adds it to the deployer's
// store. inputs maps input names to store paths (path: inputs).
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
	out, err := exec.Command("nix-store", "--add", dir).Output()
	if err != nil {
		return "", fmt.Errorf("nix-store --add: %v", err)
	}
	return strings.TrimSpace(string(out)), nil
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
// fleet's ssh_config.
func host(f *fakehost.Fleet, name string) *config.Host {
	return &config.Host{
		Flake: flake,
		Deployment: config.Deployment{
			ConfigDir:    "/var/src/lollypops",
			DeployMethod: config.MethodCopy,
			SSH: config.SSH{Host: name, User: ptr("root"), Command: "ssh",
				Opts: []string{"-F", f.SSHConfig}, HostKeyPolicy: config.HostKeyStrict},
			Sudo: config.Sudo{Command: "sudo", Opts: []string{}},
		},
		Secrets:    config.Secrets{Files: []config.Secret{}},
		Tasks:      []string{config.TaskDeployFlake, config.TaskDeploySecrets, config.TaskRebuild},
		ExtraTasks: map[string]config.ExtraTask{},
	}
}

// secret returns a secret with the module's defaults.
func secret(name, cmd, path string) config.Secret {
	return config.Secret{Name: name, Cmd: cmd, Path: path, Owner: "root", Group: "root", Mode: "0400",
		UploadAt: config.PreActivation}
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
	t   *testing.T
	inv string
	dir string
	env []string
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
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "lollypops"), append([]string{"--inventory", r.inv}, args...)...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), r.env...)
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
