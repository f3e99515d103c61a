package fakehost

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addStorePath adds a small directory to the deployer's (real) store.
func addStorePath(t *testing.T, content string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "fakehost-test")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return nixStoreAdd(t, src)
}

// nixStoreAdd adds path to the deployer's store. The store path is read
// from stdout only: Nix may warn on stderr.
func nixStoreAdd(t *testing.T, path string) string {
	t.Helper()
	p, err := StoreAdd(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// buildStorePath builds a trivial input-addressed path on the deployer.
func buildStorePath(t *testing.T) string {
	t.Helper()
	expr := `derivation { name = "fakehost-test"; system = builtins.currentSystem; builder = "/bin/sh";` +
		` args = ["-c" "echo built > $out"]; }`
	out, err := exec.Command("nix-build", "--no-out-link", "--option", "substituters", "",
		"--option", "sandbox", "false", "-E", expr).Output()
	if err != nil {
		t.Fatalf("nix-build: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// nixCopy runs nix copy --to url path with NIX_SSHOPTS="-F <ssh_config>".
func nixCopy(f *Fleet, url, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nix", "--extra-experimental-features", "nix-command", "copy", "--to", url, path)
	cmd.Env = append(os.Environ(), "NIX_SSHOPTS=-F "+f.SSHConfig)
	return cmd.CombinedOutput()
}

func TestNixDaemon(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip("fakehost: " + err.Error())
	}
	if _, err := lookTool("nix-daemon"); err != nil {
		t.Skip("fakehost: no nix-daemon")
	}
	ctx := context.Background()
	f, err := New(ctx, t.TempDir(), []HostSpec{{Name: "d1", NixDaemon: true,
		Users: []UserSpec{{Name: "deploy", Trusted: true}, {Name: "guest"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h := f.Host("d1")
	// p2 is input-addressed: unlike the content-addressed paths of
	// nix-store --add, the daemon takes it unsigned only from trusted users.
	p1, p2, p3 := addStorePath(t, "one"), buildStorePath(t), addStorePath(t, "three")

	if out, err := nixCopy(f, "ssh://deploy@d1", p1); err != nil {
		t.Fatalf("nix copy as trusted user: %v: %s", err, out)
	}
	if out, err := h.Exec(ctx, "nix-store", "--check-validity", p1); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := nixCopy(f, "ssh-ng://guest@d1", p2); err == nil || !strings.Contains(string(out), "signature") {
		t.Fatalf("nix copy as untrusted user: want a signature error, got %v: %s", err, out)
	}
	// KillSessions keeps the daemon; a restart brings it back.
	if err := h.KillSessions(); err != nil {
		t.Fatal(err)
	}
	if out, err := nixCopy(f, "ssh://deploy@d1", p2); err != nil {
		t.Fatalf("nix copy after KillSessions: %v: %s", err, out)
	}
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := nixCopy(f, "ssh://deploy@d1", p3); err != nil {
		t.Fatalf("nix copy after restart: %v: %s", err, out)
	}
	if out, err := h.Exec(ctx, "nix-store", "--check-validity", p1, p2, p3); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

func TestSystemArgsKnobs(t *testing.T) {
	got, err := System{
		KernelModules: "nvidia-550", ActivationTime: 1500 * time.Millisecond, RestartNetwork: 2 * time.Second,
		FailUnits: []string{"flaky", "b.service"}, RestartUnits: []string{"app"}, InitInterface: "systemd 3",
		PreSwitchCheckFails: true, BootLoader: BootLoaderSystemdBoot, Specialisations: []string{"gpu", "no_x-1"},
	}.args("h1")
	want := `{ hostName = "h1"; system = "` + nixSystem() + `"; kernelModules = "nvidia-550"; activationTime = "1.500"; ` +
		`restartNetwork = "2.000"; failUnits = [ "flaky.service" "b.service" ]; restartUnits = [ "app.service" ]; ` +
		`initInterface = "systemd 3"; preSwitchCheckFails = true; bootLoader = "systemd-boot"; specialisations = [ "gpu" "no_x-1" ]; }`
	if err != nil || got != want {
		t.Errorf("args:\n got %s (%v)\nwant %s", got, err, want)
	}
	// Every knob defaults to nothing: the zero System's arguments.
	if got, _ := (System{}).args("h1"); got != `{ hostName = "h1"; system = "`+nixSystem()+`"; }` {
		t.Errorf("zero System: %s", got)
	}
	for _, bad := range []System{
		{FailUnits: []string{"a b"}},
		{FailUnits: []string{"x.socket"}},
		{RestartUnits: []string{"sshd"}},
		{RestartUnits: []string{"httpd.service"}},
		{ActivationTime: -time.Second},
		{RestartNetwork: -time.Millisecond},
		{BootLoader: "grub"},
		{Specialisations: []string{"a/b"}},
		{Specialisations: []string{"x", "x"}},
		{InitInterface: "two\nlines"},
	} {
		if _, err := bad.args("h1"); err == nil {
			t.Errorf("%+v was accepted", bad)
		}
	}
}
