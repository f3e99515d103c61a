package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// The host key policies: strict against known_hosts (the default),
// accept-new, and a key pinned in the configuration.
func TestHostKeyPolicies(t *testing.T) {
	f := newFleet(t, hosts("host1", "other")...)
	h := f.Host("host1")
	// known_hosts holds no key of host1.
	known, _ := os.ReadFile(f.KnownHosts)
	var kept []string
	for _, l := range strings.Split(string(known), "\n") {
		if l != "" && !strings.Contains(l, h.HostKey()) {
			kept = append(kept, l)
		}
	}
	os.WriteFile(f.KnownHosts, []byte(strings.Join(kept, "\n")+"\n"), 0o600)

	deploy := func(mod func(*config.Host)) result {
		c := host(f, "host1")
		mod(c)
		return newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-flake")
	}
	res := deploy(func(*config.Host) {})
	if res.code != 3 || !strings.Contains(res.output(), "Host key verification failed") ||
		!strings.Contains(res.output(), `hint: the host's key is not in known_hosts; add it (ssh-keyscan, or ssh once by hand), pin it with lollypops.deployment.ssh.host-key, or set host-key-policy = "accept-new"`) {
		t.Errorf("strict, unknown key: %s", res)
	}
	res = deploy(func(c *config.Host) {
		c.Deployment.SSH.HostKeyPolicy = config.HostKeyPinned
		c.Deployment.SSH.HostKey = ptr(h.HostKey())
	})
	if res.code != 0 {
		t.Errorf("pinned, right key: %s", res)
	}
	res = deploy(func(c *config.Host) {
		c.Deployment.SSH.HostKeyPolicy = config.HostKeyPinned
		c.Deployment.SSH.HostKey = ptr(f.Host("other").HostKey())
	})
	if res.code != 3 || !strings.Contains(res.output(), "hint: the host's key differs from lollypops.deployment.ssh.host-key") {
		t.Errorf("pinned, wrong key: %s", res)
	}
	if known, _ := os.ReadFile(f.KnownHosts); strings.Contains(string(known), h.HostKey()) {
		t.Fatal("a pinned key leaked into known_hosts")
	}
	res = deploy(func(c *config.Host) { c.Deployment.SSH.HostKeyPolicy = config.HostKeyAcceptNew })
	if res.code != 0 {
		t.Errorf("accept-new: %s", res)
	}
	if known, _ := os.ReadFile(f.KnownHosts); !strings.Contains(string(known), h.HostKey()) {
		t.Error("accept-new did not record the key")
	}
	// The host is reinstalled: its key changes; every policy refuses.
	if err := h.RotateHostKey(); err != nil {
		t.Fatal(err)
	}
	for _, policy := range []string{config.HostKeyStrict, config.HostKeyAcceptNew} {
		res = deploy(func(c *config.Host) { c.Deployment.SSH.HostKeyPolicy = policy })
		if res.code != 3 || !strings.Contains(res.output(), "REMOTE HOST IDENTIFICATION HAS CHANGED") ||
			!strings.Contains(res.output(), "hint: the host's key differs from the one in known_hosts") {
			t.Errorf("%s, changed key: %s", policy, res)
		}
	}
	if calls, _ := h.RebuildCalls(); len(calls) != 0 {
		t.Error("rebuild ran")
	}
}

// A refused login fails the host with a hint.
func TestRefusedKey(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	c := host(f, "host1")
	c.Deployment.SSH.User = ptr("ghost")
	res := newRunner(t, map[string]*config.Host{"host1": c}).run("host1")
	if res.code != 3 || !strings.Contains(res.output(), "Permission denied") ||
		!strings.Contains(res.output(), "hint: the host refused the login of ghost@host1") {
		t.Errorf("%s", res)
	}
	if got := summaryLine(res, "host1"); !strings.Contains(got, "deploy-flake: cannot connect to ghost@host1") {
		t.Errorf("summary: %q", got)
	}
}

// The connection drops while the secrets are in transit: no file of the
// session is written, no temporary file stays.
func TestConnectionDropDuringSecrets(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	c := host(f, "host1")
	c.Secrets.Files = []config.Secret{
		secret("small", "echo new", "/run/keys/small"),
		secret("big", "head -c 400000000 /dev/zero", "/var/lib/big"),
	}
	sh(t, h, "echo old > /run/keys/small")
	r := newRunner(t, map[string]*config.Host{"host1": c})
	dropped := make(chan error, 1)
	res := r.runCtx(context.Background(), func(*exec.Cmd) {
		go func() {
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				// The receiver is running once its temporary file exists.
				if out, _ := h.Exec(context.Background(), "sh", "-c", "ls -a /var/lib | grep -c '^.lollypops-' || true"); strings.TrimSpace(string(out)) != "0" {
					dropped <- h.DropConnections()
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			dropped <- nil
		}()
	}, "host1:deploy-secrets")
	if err := <-dropped; err != nil {
		t.Fatal(err)
	}
	if res.code != 3 {
		t.Fatalf("exit %d, want 3 (did the drop come too late?)\n%s", res.code, res)
	}
	if got := sh(t, h, "cat /run/keys/small; ls -a /var/lib /run/keys | grep -c lollypops || true"); got != "old\n0\n" {
		t.Errorf("after the drop: %q", got)
	}
	sh(t, h, "! test -e /var/lib/big")
	if !strings.Contains(res.output(), "no file of this session was written") {
		t.Errorf("%s", res)
	}
}

// Ctrl-C during a parallel deploy: activations in flight finish, nothing
// new starts, the summary tells what happened, the exit code is 130.
func TestInterrupt(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2", "host3")...)
	hs := map[string]*config.Host{}
	for _, h := range f.Hosts() {
		hs[h.Name] = host(f, h.Name)
		h.SetRebuildSleep(2 * time.Second)
	}
	r := newRunner(t, hs)
	res := r.runCtx(context.Background(), func(cmd *exec.Cmd) {
		waitFor(t, func() bool {
			for _, h := range f.Hosts() {
				if calls, _ := h.RebuildCalls(); len(calls) == 0 {
					return false
				}
			}
			return true
		})
		// The terminal sends SIGINT to the whole foreground process group.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	}, "all")
	if res.code != 130 {
		t.Errorf("exit %d, want 130\n%s", res.code, res)
	}
	for _, h := range f.Hosts() {
		calls, _ := h.RebuildCalls()
		if len(calls) != 1 || calls[0].End.IsZero() || calls[0].Exit != 0 {
			t.Errorf("%s: the activation in flight was cut: %+v", h.Name, calls)
		}
		if got := summaryLine(res, h.Name); !strings.HasPrefix(got, h.Name+" ok") {
			t.Errorf("summary: %q", got)
		}
	}
	if !strings.Contains(res.output(), "waiting for the activation on host1 to finish") {
		t.Errorf("%s", res)
	}

	// Interrupted while the secrets are fetched: nothing is written and no
	// host is rebuilt.
	for _, h := range f.Hosts() {
		h.SetRebuildSleep(0)
		hs[h.Name].Secrets.Files = []config.Secret{secret("slow", "sleep 1; echo v", "/run/keys/slow")}
	}
	r = newRunner(t, hs)
	res = r.runCtx(context.Background(), func(cmd *exec.Cmd) {
		time.Sleep(700 * time.Millisecond)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	}, "all")
	if res.code != 130 {
		t.Errorf("exit %d, want 130\n%s", res.code, res)
	}
	for _, h := range f.Hosts() {
		if calls, _ := h.RebuildCalls(); len(calls) != 1 {
			t.Errorf("%s rebuilt after the interrupt", h.Name)
		}
		sh(t, h, "! test -e /run/keys/slow")
		if got := summaryLine(res, h.Name); !strings.HasPrefix(got, h.Name+" failed") || !strings.Contains(got, "deploy-secrets") {
			t.Errorf("summary: %q", got)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out waiting")
}

// A secret's value never appears in any process's argv or environment, the
// output (also with --verbose), the run's files or the Taskfile.
func TestSecretsDoNotLeak(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "host1"})
	h := f.Host("host1")
	pass := newPassStore(t)
	// Made for this run: no file of this repository holds it, so a copy of
	// the sources in a Nix store (nix build, nix flake metadata) is no
	// false alarm.
	poison := fmt.Sprintf("POISON-%x", rand.Uint64())
	pass.insert("poison", []byte(poison+"-from-pass\n"))
	file := filepath.Join(t.TempDir(), "value")
	os.WriteFile(file, []byte(poison+"-from-file"), 0o600)
	c := host(f, "host1")
	c.Secrets.Files = []config.Secret{
		secret("a", "pass poison", "/run/keys/a"),
		secret("b", "cat "+file, "/run/keys/b"),
		// While this one sleeps, a and b are held in memory: look then.
		secret("c", "sleep 1; cat "+file, "/run/keys/c"),
	}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	r.env = pass.env

	var mu sync.Mutex
	var found []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if where := scanForPoison(poison, file); where != "" {
				mu.Lock()
				found = append(found, where)
				mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	res := r.run("--verbose", "host1")
	close(stop)
	wg.Wait()
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	if strings.Contains(res.output(), poison) {
		t.Errorf("the value is in the output")
	}
	if len(found) > 0 {
		t.Errorf("the value leaked: %q", found)
	}
	if got := sh(t, h, "cat /run/keys/a /run/keys/b"); got != poison+"-from-pass\n"+poison+"-from-file" {
		t.Errorf("host: %q", got)
	}
	// Nor in any store, the deployer's or the host's.
	for _, store := range []string{"/nix/store", filepath.Join(h.Dir, "nix", "store")} {
		if where := grepTree(store, poison); where != "" {
			t.Errorf("the value is in the Nix store: %s", where)
		}
	}
	// The scanner finds what it looks for: a process with the value in its
	// environment.
	probe := exec.Command("sleep", "1")
	probe.Env = append(os.Environ(), "PROBE="+poison)
	probe.Start()
	time.Sleep(100 * time.Millisecond)
	where := scanForPoison(poison, file)
	probe.Process.Kill()
	probe.Wait()
	if !strings.Contains(where, "environ") {
		t.Errorf("the scanner missed a process with the value in its environment: %q", where)
	}
}

// grepTree returns a regular file under root that contains s, or "".
func grepTree(root, s string) string {
	var hit string
	filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil || hit != "" || !info.Mode().IsRegular() || info.Size() > 64<<20 {
			return nil
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(s)) {
			hit = path
		}
		return nil
	})
	return hit
}

// runDirs are the run directories of lollypops on this machine
// (rundir: os.MkdirTemp's "lollypops-<digits>"), not whatever else is named
// lollypops-… in the temporary directory (a fresh root of
// tests/fresh-root.sh, gigabytes to read at every scan).
func runDirs() []string {
	all, _ := filepath.Glob(filepath.Join(os.TempDir(), "lollypops-[0-9]*"))
	var runs []string
	for _, d := range all {
		if strings.Trim(strings.TrimPrefix(filepath.Base(d), "lollypops-"), "0123456789") == "" {
			runs = append(runs, d)
		}
	}
	return runs
}

// scanForPoison looks for poison in every process's argv and environment,
// and in every lollypops run directory. It ignores the value's source file.
func scanForPoison(poison, source string) string {
	p := []byte(poison)
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range procs {
		for _, f := range []string{"cmdline", "environ"} {
			if b, err := os.ReadFile(filepath.Join(d, f)); err == nil && bytes.Contains(b, p) {
				return d + "/" + f + ": " + strings.ReplaceAll(string(b), "\x00", " ")
			}
		}
	}
	for _, run := range runDirs() {
		var hit string
		filepath.Walk(run, func(path string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() && path != source {
				if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, p) {
					hit = path
				}
			}
			return nil
		})
		if hit != "" {
			return hit
		}
	}
	return ""
}

// A program missing on the deployer is named, with a hint, before any host
// is touched.
func TestMissingPrograms(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	c := host(f, "host1")
	c.Secrets.Files = []config.Secret{secret("k", "lollypops-no-such-vault get k", "/run/keys/k")}
	// A PATH with ssh but without nix.
	only := t.TempDir()
	for _, prog := range []string{"ssh", "sh", "cat"} {
		p, err := exec.LookPath(prog)
		if err != nil {
			t.Fatal(err)
		}
		os.Symlink(p, filepath.Join(only, prog))
	}
	r := newRunner(t, map[string]*config.Host{"host1": c})
	r.env = []string{"PATH=" + only}
	res := r.run("host1")
	want := `[host1:check-vars] lollypops: not found on this machine: lollypops-no-such-vault (for secret "k"); nix (for deploy-flake)`
	if res.code != 3 || !strings.Contains(res.output(), want) ||
		!strings.Contains(res.output(), "[host1:check-vars] lollypops: hint: these commands run on the deployer, not on the host") {
		t.Errorf("want %q\n%s", want, res)
	}
	c.Secrets.Files = []config.Secret{}
	c.Deployment.SSH.Command = "lollypops-no-such-ssh"
	res = newRunner(t, map[string]*config.Host{"host1": c}).run("host1")
	if res.code != 3 || !strings.Contains(res.output(), "not found on this machine: lollypops-no-such-ssh (for lollypops.deployment.ssh.command)") {
		t.Errorf("%s", res)
	}
	if n := authCount(t, f.Host("host1")); n != 0 {
		t.Errorf("the host was contacted %d times", n)
	}
}
