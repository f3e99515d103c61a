//go:build linux

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
	"github.com/creack/pty"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// sudoFleet is host1 and host2, each with a user deploy whose sudo asks
// for password (NixOS's wheel rule), reached as deploy with sudo enabled
// and the guarded activation on, and one secret each. Each host's sudo
// logs to /var/log/sudo.log, so that a test can count the password
// attempts it saw.
func sudoFleet(t *testing.T, password string) (*fakehost.Fleet, *runner) {
	t.Helper()
	var specs []fakehost.HostSpec
	for _, n := range []string{"host1", "host2"} {
		specs = append(specs, fakehost.HostSpec{Name: n, NixDaemon: true,
			Users: []fakehost.UserSpec{{Name: "deploy", SudoPassword: password, Trusted: true}}})
	}
	f := newFleet(t, specs...)
	inv := map[string]*config.Host{}
	for _, h := range f.Hosts() {
		sh(t, h, "echo 'Defaults logfile=/var/log/sudo.log' >>/etc/sudoers")
		c := host(f, h.Name)
		c.Deployment.SSH.User = ptr("deploy")
		c.Deployment.Sudo.Enable = true
		c.Deployment.Rollback.Enable = true
		c.Secrets.Files = []config.Secret{secret("api", "echo api-key-"+h.Name, "/run/keys/api")}
		inv[h.Name] = c
	}
	return f, newRunner(t, inv)
}

// sudoAttempts is the number of failed password attempts the host's sudo
// logged.
func sudoAttempts(t *testing.T, h *fakehost.Host) int {
	t.Helper()
	log := sh(t, h, "cat /var/log/sudo.log 2>/dev/null || true")
	return strings.Count(log, "incorrect password attempt")
}

// deployed checks that the host runs the flake's system, switched to
// under the guard (tested, then made the boot default once confirmed)
// switches times, with its secret in place.
func deployed(t *testing.T, f *fakehost.Fleet, name string, switches int) {
	t.Helper()
	h := f.Host(name)
	if s := systemOf(t, h); s.kernel != deployedKernel {
		t.Errorf("%s runs kernel %q, not the deployed system", name, s.kernel)
	}
	var want []string
	for range switches {
		want = append(want, "test", "boot")
	}
	if acts := activations(t, h); !slices.Equal(acts, want) {
		t.Errorf("%s: activations %q, want %q", name, acts, want)
	}
	if got := sh(t, h, "stat -c '%U %a' /run/keys/api; cat /run/keys/api"); got != "root 400\napi-key-"+name+"\n" {
		t.Errorf("%s: secret %q", name, got)
	}
}

// leakWatch samples every process's argv and environment and every
// lollypops run directory for s, until stop.
type leakWatch struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	found []string
	scans int
}

func watchLeaks(s, source string) *leakWatch {
	w := &leakWatch{stop: make(chan struct{})}
	w.wg.Go(func() {
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			where := scanForPoison(s, source)
			w.mu.Lock()
			w.scans++
			if where != "" {
				w.found = append(w.found, where)
			}
			w.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	})
	return w
}

func (w *leakWatch) done() ([]string, int) {
	close(w.stop)
	w.wg.Wait()
	return w.found, w.scans
}

// A sudo that asks for a password: the password comes once from a
// password command (here pass, as a secret's would) and reaches both
// hosts' sudo on its standard input; the secrets and the guarded
// activation go through it. It is never in any process's argv or
// environment, on the deployer or on the hosts (which are processes of
// this machine), nor in the output with --verbose, the run directory or a
// Nix store.
func TestSudoPasswordCommand(t *testing.T) {
	// Made for this run, with a space and quotes: no file of this
	// repository holds it.
	password := fmt.Sprintf("PW-%x it's \"sudo\"", rand.Uint64())
	f, r := sudoFleet(t, password)
	pass := newPassStore(t)
	pass.insert("hosts/sudo", []byte(password+"\n"))
	r.env = pass.env

	w := watchLeaks(password, "")
	res := r.run("--verbose", "--sudo-password-command", "pass show hosts/sudo", "-p", "host1", "host2")
	found, scans := w.done()
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	for _, n := range []string{"host1", "host2"} {
		deployed(t, f, n, 1)
		if !strings.Contains(res.output(), "confirmed: "+n+" runs ") {
			t.Errorf("%s: not confirmed under the guard:\n%s", n, res)
		}
		if a := sudoAttempts(t, f.Host(n)); a != 0 {
			t.Errorf("%s: %d failed sudo password attempts", n, a)
		}
	}
	// The commands through sudo are shown, the password is not.
	if !strings.Contains(res.output(), "lollypops-step sudo-exec host1 -- ") {
		t.Errorf("--verbose shows no command through sudo:\n%s", res)
	}
	if strings.Contains(res.output(), password) {
		t.Errorf("the password is in the output:\n%s", res)
	}
	if len(found) > 0 {
		t.Errorf("the password leaked (%d scans): %q", scans, found)
	}
	if scans < 2 {
		t.Errorf("only %d scans during the run", scans)
	}
	for _, store := range []string{"/nix/store", filepath.Join(f.Host("host1").Dir, "nix", "store"), filepath.Join(f.Host("host2").Dir, "nix", "store")} {
		if where := grepTree(store, password); where != "" {
			t.Errorf("the password is in a Nix store: %s", where)
		}
	}
	// The run directory is gone; no run directory of this run is left.
	if runs, _ := filepath.Glob(filepath.Join(os.TempDir(), "lollypops-*", "sudo.sock")); len(runs) > 0 {
		t.Errorf("a run's password socket is left: %q", runs)
	}
}

// --ask-sudo-password asks once, on the terminal, without echo, and the
// answer reaches every host. A wrong password fails each host once, with
// one line naming the user and a hint, and is not tried again.
func TestSudoPasswordAsked(t *testing.T) {
	password := fmt.Sprintf("PW-%x asked", rand.Uint64())
	f, r := sudoFleet(t, password)

	w := watchLeaks(password, "")
	res := r.runAnswering("lollypops: sudo password: ", password, "--ask-sudo-password", "-p", "host1", "host2")
	found, _ := w.done()
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	if n := strings.Count(res.raw, "sudo password:"); n != 1 {
		t.Errorf("asked %d times, want once:\n%s", n, res)
	}
	if strings.Contains(res.raw, password) {
		t.Errorf("the password was echoed or printed:\n%s", res)
	}
	if len(found) > 0 {
		t.Errorf("the password leaked: %q", found)
	}
	for _, n := range []string{"host1", "host2"} {
		deployed(t, f, n, 1)
		if a := sudoAttempts(t, f.Host(n)); a != 0 {
			t.Errorf("%s: %d failed sudo password attempts", n, a)
		}
	}

	// A wrong password: each host fails at its first command through sudo,
	// after one attempt, and nothing more runs there.
	res = r.runAnswering("lollypops: sudo password: ", "not-"+password, "--ask-sudo-password", "-p", "host1", "host2")
	if res.code != 3 {
		t.Fatalf("want exit 3: %s", res)
	}
	for _, n := range []string{"host1", "host2"} {
		line := summaryLine(ptyAsResult(res), n)
		if !strings.HasPrefix(line, n+" failed") || !strings.Contains(line, "sudo refused the password (user deploy)") {
			t.Errorf("%s: summary %q\n%s", n, line, res)
		}
		if a := sudoAttempts(t, f.Host(n)); a != 1 {
			t.Errorf("%s: %d failed sudo password attempts, want 1", n, a)
		}
		deployed(t, f, n, 1)
	}
	out := ptyAsResult(res).stderr
	for _, n := range []string{"host1", "host2"} {
		for _, want := range []string{
			"[" + n + ":deploy-flake] lollypops: deploy lock on " + n + ": sudo refused the password (user deploy)\n",
			"[" + n + ":deploy-flake] lollypops: hint: this is not the password sudo on the host wants; it was tried once there",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, res)
			}
		}
	}
}

// waitEchoOff waits until the program on the terminal has turned its echo
// off. On Linux, the master side's TCGETS reads the terminal's settings.
func waitEchoOff(t *testing.T, tty *os.File) {
	t.Helper()
	for range 1000 {
		var tio syscall.Termios
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, tty.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&tio))); errno != 0 {
			t.Fatalf("TCGETS: %v", errno)
		}
		if tio.Lflag&syscall.ECHO == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the terminal still echoes after 10s of waiting: the password would be shown")
}

// ptyAsResult is a terminal run's output as plain lines, for summaryLine:
// the summary's long lines wrap on the screen.
func ptyAsResult(r ptyResult) result {
	return result{code: r.code, stderr: strings.ReplaceAll(ansi.Strip(r.raw), "\r\n", "\n")}
}

// runAnswering runs lollypops on a pseudo-terminal, as runPTY, and types
// answer (and Enter) on it each time prompt appears.
func (r *runner) runAnswering(prompt, answer string, args ...string) ptyResult {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "lollypops"), append([]string{"--inventory", r.inv}, args...)...)
	cmd.Dir = r.dir
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "NO_COLOR" && k != "TERM" && !strings.HasPrefix(k, "TASK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "TERM=xterm-256color"), r.env...)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: ptyCols, Rows: ptyRows})
	if err != nil {
		r.t.Fatal(err)
	}
	var raw bytes.Buffer
	buf := make([]byte, 4096)
	answered := 0
	var rerr error
	for {
		n, err := tty.Read(buf)
		raw.Write(buf[:n])
		if c := strings.Count(raw.String(), prompt); c > answered {
			answered = c
			// As a person would: type once the terminal stopped echoing.
			// Typed earlier, the terminal itself would echo the answer.
			waitEchoOff(r.t, tty)
			io.WriteString(tty, answer+"\n")
		}
		if err != nil {
			rerr = err
			break
		}
	}
	werr := cmd.Wait()
	tty.Close()
	if rerr != nil && !errors.Is(rerr, syscall.EIO) && !errors.Is(rerr, io.EOF) {
		r.t.Fatalf("reading the terminal: %v", rerr)
	}
	res := ptyResult{raw: raw.String()}
	if ee, ok := werr.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if werr != nil {
		r.t.Fatalf("lollypops: %v\n%s", werr, raw.String())
	}
	emu := vt.NewEmulator(ptyCols, ptyRows)
	emu.Write(raw.Bytes())
	res.screen = emu.String()
	return res
}

// countAuths makes the host's sudo log every PAM authentication it starts
// (pam_exec, before the password is checked), for sudoAuths.
func countAuths(t *testing.T, h *fakehost.Host) {
	t.Helper()
	sh(t, h, `printf '#!/bin/sh\necho "$PAM_TYPE $PAM_USER" >>/var/log/sudo-auths\n' >/etc/lollypops-count-auth
chmod 755 /etc/lollypops-count-auth
sed -i '1a auth optional pam_exec.so seteuid /etc/lollypops-count-auth' /etc/pam.d/sudo`)
}

func sudoAuths(t *testing.T, h *fakehost.Host) int {
	t.Helper()
	return strings.Count(sh(t, h, "cat /var/log/sudo-auths 2>/dev/null || true"), "auth ")
}

// The password goes to a host only after its sudo asked for it, and the
// run authenticates once per host connection, however many commands go
// through sudo (the guarded activation polls its state). host1's sudo asks
// (NixOS's wheel rule); host2's does not ask for sh (NOPASSWD: sh, as a
// per-command rule), which is what lollypops runs through sudo: it never
// receives the password, not even on a command's input (every byte its
// sessions read is logged), and no command's input starts with it.
func TestSudoPasswordOnlyWhereAskedOncePerConnection(t *testing.T) {
	password := fmt.Sprintf("PW-%x only-asked", rand.Uint64())
	f, r := sudoFleet(t, password)
	pass := newPassStore(t)
	pass.insert("hosts/sudo", []byte(password+"\n"))
	r.env = pass.env
	for _, h := range f.Hosts() {
		countAuths(t, h)
	}
	h2 := f.Host("host2")
	sh(t, h2, `echo 'deploy ALL=(ALL:ALL) NOPASSWD: /run/current-system/sw/bin/sh, /bin/sh, /usr/bin/sh' >>/etc/sudoers
printf '#!/bin/bash\nexec /bin/bash "$@" < <(exec tee -a /var/log/session-stdin 2>/dev/null)\n' >/etc/lollypops-tee-shell
chmod 755 /etc/lollypops-tee-shell; : >/var/log/session-stdin; chmod 666 /var/log/session-stdin
usermod -s /etc/lollypops-tee-shell deploy`)

	res := r.run("--sudo-password-command", "pass show hosts/sudo", "-p", "host1", "host2")
	if res.code != 0 {
		t.Errorf("%s", res)
	}
	for _, n := range []string{"host1", "host2"} {
		if summaryLine(res, n) == "" || !strings.HasPrefix(summaryLine(res, n), n+" ok") {
			t.Errorf("%s: %q", n, summaryLine(res, n))
		}
		if a := sudoAttempts(t, f.Host(n)); a != 0 {
			t.Errorf("%s: %d failed sudo password attempts", n, a)
		}
	}
	if strings.Contains(res.output(), "unknown stream version") || strings.Contains(res.output(), password) {
		t.Errorf("the password reached a command:\n%s", res)
	}
	// The guarded activation opens a second connection (it proves the
	// host is reachable after the switch): one authentication each.
	if n, conns := sudoAuths(t, f.Host("host1")), authCount(t, f.Host("host1")); n != conns || n > 2 {
		t.Errorf("host1: %d sudo authentications, want one per connection (%d)", n, conns)
	}
	if n := sudoAuths(t, h2); n != 0 {
		t.Errorf("host2: %d sudo authentications, want none: its sudo does not ask", n)
	}
	if got := sh(t, h2, "cat /var/log/session-stdin"); strings.Contains(got, password) {
		t.Errorf("host2 received the password on a session's input, though its sudo never asked")
	} else if !strings.Contains(got, "lollypops-secrets-") {
		t.Errorf("host2's sessions' input was not logged (%d bytes): the check proves nothing", len(got))
	}
}

// Watching an activation costs a sudo call per wait on the host, not four
// a second: a longer activation adds at most one.
func TestWatchingCostsNoSudoPerSecond(t *testing.T) {
	password := "s3cret pw"
	f, r := sudoFleet(t, password)
	pass := newPassStore(t)
	pass.insert("hosts/sudo", []byte(password+"\n"))
	r.env = pass.env
	h := f.Host("host1")
	// The commands sudo ran, but the password checks (true).
	commands := func() int {
		n := 0
		for _, l := range strings.Split(sh(t, h, "cat /var/log/sudo.log 2>/dev/null || :"), "\n") {
			if strings.Contains(l, "COMMAND=") && !strings.HasSuffix(l, "/true") {
				n++
			}
		}
		return n
	}
	count := func(hook string) int {
		if err := h.SetActivationHook(hook); err != nil {
			t.Fatal(err)
		}
		before := commands()
		if res := r.run("--sudo-password-command", "pass show hosts/sudo", "host1"); res.code != 0 {
			t.Fatalf("%s", res)
		}
		return commands() - before
	}
	quick, slow := count("true"), count("sleep 4")
	if slow > quick+1 {
		t.Errorf("a 4 s longer activation cost %d commands through sudo more (%d against %d)", slow-quick, slow, quick)
	}
	t.Logf("commands through sudo per deploy: %d (an activation of about 0 s), %d (about 4 s)", quick, slow)
}
