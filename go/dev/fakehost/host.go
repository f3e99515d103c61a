package fakehost

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// upTimeout bounds how long a host may take to answer with its SSH banner,
// and how long stopping may take.
const upTimeout = 10 * time.Second

// firstBootTimeout bounds a host's first start, which builds its first
// system generation.
const firstBootTimeout = 2 * time.Minute

// Host is one fake host. Its methods are safe for concurrent use.
type Host struct {
	Name string // host name and ssh_config alias
	Dir  string // per-host directory on the real filesystem
	Port int    // sshd port on 127.0.0.1; fixed once New returns

	spec  HostSpec
	fleet *Fleet

	mu       sync.Mutex
	hostKey  string // "ssh-ed25519 AAAA..."
	run      *run   // nil while stopped
	httpPort int    // HostSpec.HTTP's port; 0 without
	boot     bootState
}

// run is one life of a host (from boot to Stop): unshare, whose forked
// child is the host's init, PID 1 of the host's PID namespace.
type run struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when unshare was reaped
	pid     int           // the host's init, in our PID namespace
	nsFile  *os.File      // pins the host's PID namespace
	ns      nsID
	logFrom int64 // sshd.log size when this run started
}

func (r *run) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// prepare creates the host's directory, host key, fake programs and /etc
// files.
func (h *Host) prepare(ctx context.Context, authorizedKeys []byte) error {
	if err := os.Mkdir(h.Dir, 0o755); err != nil {
		return err
	}
	dirs := []struct {
		name string
		mode os.FileMode
	}{
		{"ctl", 0o755}, {"ctl/calls", 0o1777}, {"etc", 0o755}, {"etc.w", 0o755},
		{"var", 0o755}, {"var.w", 0o755}, {"root", 0o700}, {"home", 0o755}, {"nix", 0o755}, {"boot", 0o755},
	}
	for _, d := range dirs {
		p := filepath.Join(h.Dir, d.name)
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	if err := keygen(ctx, h.fleet.tools.keygen, filepath.Join(h.Dir, "host_key"), h.Name); err != nil {
		return err
	}
	if err := h.loadHostKey(); err != nil {
		return err
	}
	if err := writeSystemFiles(filepath.Join(h.Dir, "system")); err != nil {
		return err
	}
	if h.hasSudoPasswords() {
		var b strings.Builder
		for _, u := range h.spec.Users {
			if u.SudoPassword != "" {
				b.WriteString(u.Name + ":" + u.SudoPassword + "\n")
			}
		}
		if err := os.WriteFile(filepath.Join(h.Dir, "chpasswd"), []byte(b.String()), 0o600); err != nil {
			return err
		}
	}
	if h.spec.HTTP {
		// The web service's port, fixed for the host's life, as sshd's.
		port, err := freePort()
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.httpPort = port
		h.mu.Unlock()
		if err := os.WriteFile(filepath.Join(h.Dir, "ctl", "http-port"), []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
			return err
		}
	}
	return h.writeEtc(authorizedKeys)
}

func (h *Host) loadHostKey() error {
	b, err := os.ReadFile(filepath.Join(h.Dir, "host_key.pub"))
	if err != nil {
		return err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return fmt.Errorf("bad host key %q", b)
	}
	h.mu.Lock()
	h.hostKey = f[0] + " " + f[1]
	h.mu.Unlock()
	return nil
}

// HostKey returns the host's public key as "ssh-ed25519 AAAA...".
func (h *Host) HostKey() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hostKey
}

// Pid returns the PID of the host's init (0 while stopped): PID 1 of the
// host's PID namespace, which lives from boot to Stop, whether sshd runs
// or not. nsenter --target it to enter the host.
func (h *Host) Pid() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.run == nil {
		return 0
	}
	return h.run.pid
}

// LogFile is the log of init and sshd (all runs, appended).
func (h *Host) LogFile() string { return filepath.Join(h.Dir, "sshd.log") }

// start brings sshd up and waits for its banner. With newPort it picks a
// free port (again, if sshd could not bind); otherwise it keeps h.Port.
func (h *Host) start(ctx context.Context, newPort bool) error {
	for attempt := 1; ; attempt++ {
		port := h.Port
		if newPort {
			p, err := freePort()
			if err != nil {
				return fmt.Errorf("fakehost: %s: %w", h.Name, err)
			}
			port = p
		}
		cfg := filepath.Join(h.Dir, "sshd_config")
		if err := os.WriteFile(cfg, []byte(h.sshdConfig(port)), 0o644); err != nil {
			return fmt.Errorf("fakehost: %s: %w", h.Name, err)
		}
		r, err := h.startOnce(ctx, port)
		if err == nil {
			h.mu.Lock()
			h.Port, h.run = port, r
			h.boot.boots++
			h.mu.Unlock()
			go h.watch(r)
			return nil
		}
		if !errors.Is(err, errPortInUse) || !newPort || attempt == 5 {
			return fmt.Errorf("fakehost: %s: sshd did not come up on 127.0.0.1:%d: %w", h.Name, port, err)
		}
	}
}

var errPortInUse = errors.New("port in use")

func (h *Host) startOnce(ctx context.Context, port int) (*run, error) {
	t := h.fleet.tools
	script, err := h.initScript(port)
	if err != nil {
		return nil, err
	}
	// Whatever the previous run's init reported.
	if err := os.Remove(filepath.Join(h.Dir, "ctl", "boot-failed")); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	// A file, so that ps in the host shows PID 1 as "bash <dir>/init".
	initFile := filepath.Join(h.Dir, "init")
	if err := os.WriteFile(initFile, []byte(script), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(h.LogFile(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	from, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(t.unshare, "--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc",
		"--propagation", "private", t.bash, initFile)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own session; killed with us. Its child, the host's PID 1, is killed
	// with it (--kill-child), and the kernel then kills the whole host.
	cmd.SysProcAttr = hostProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &run{cmd: cmd, done: make(chan struct{}), logFrom: from}
	go func() {
		_ = cmd.Wait()
		close(r.done)
	}()
	if err := h.waitUp(ctx, r, port); err != nil {
		if serr := h.stopRun(r); serr != nil {
			err = errors.Join(err, serr)
		}
		tail := logTail(h.LogFile(), r.logFrom)
		if strings.Contains(tail, "Address already in use") {
			err = fmt.Errorf("%w: %v", errPortInUse, err)
		}
		return nil, fmt.Errorf("%w\n%s", err, tail)
	}
	return r, nil
}

// waitUp finds the host's init (PID 1 of its namespace) and waits until
// init's sshd holds the listening socket and answers with an SSH banner.
// It never authenticates.
func (h *Host) waitUp(ctx context.Context, r *run, port int) error {
	timeout := upTimeout
	if _, err := os.Lstat(filepath.Join(h.Dir, "nix", "var", "nix", "profiles", "system")); err != nil {
		// The first start builds the first generation, while the other
		// hosts do so too: ctx bounds it.
		timeout = firstBootTimeout
	}
	deadline := time.Now().Add(timeout)
	for {
		if r.exited() {
			return fmt.Errorf("exited (%v)", r.cmd.ProcessState)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no SSH banner after %s", timeout)
		}
		if r.pid == 0 {
			if pid := childOf(r.cmd.Process.Pid); pid != 0 {
				f, id, err := pidNS(pid)
				if err != nil {
					return fmt.Errorf("pid %d: %w", pid, err)
				}
				r.pid, r.nsFile, r.ns = pid, f, id
			}
		} else if r.listener(port) != 0 && banner(port) {
			return nil
		} else if b, err := os.ReadFile(filepath.Join(h.Dir, "ctl", "boot-failed")); err == nil {
			return fmt.Errorf("booted, but: %s", strings.TrimSpace(string(b)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listener returns the PID of the host's sshd listener: the child of init
// named sshd that holds the socket listening on port; 0 if there is none.
func (r *run) listener(port int) int {
	if r.pid == 0 {
		return 0
	}
	for _, p := range nsProcs(r.ns) {
		if p.ppid == r.pid && p.comm == "sshd" && listensOn(p.pid, port) {
			return p.pid
		}
	}
	return 0
}

func banner(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-")
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before sshd binds; start retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stopRun kills a run and waits until no process is left in its PID
// namespace. Killing the host's PID 1 makes the kernel kill every process
// of the host; unshare, its parent, reaps it and exits. Killing unshare
// alone would work too (--kill-child), but leaves PID 1 a zombie until the
// system's init reaps it.
func (h *Host) stopRun(r *run) error {
	if r.pid != 0 && !r.exited() {
		// unshare is alive, so it has not reaped r.pid: the pid is ours.
		// Let unshare reap it before it goes, or PID 1 stays a zombie.
		_ = syscall.Kill(r.pid, syscall.SIGKILL)
		select {
		case <-r.done:
		case <-time.After(2 * time.Second):
		}
	}
	_ = r.cmd.Process.Kill()
	select {
	case <-r.done:
	case <-time.After(upTimeout):
		return fmt.Errorf("fakehost: %s: unshare (pid %d) did not exit", h.Name, r.cmd.Process.Pid)
	}
	if r.nsFile == nil {
		return nil
	}
	defer r.nsFile.Close()
	return h.killUntilGone("processes", func() []proc { return nsProcs(r.ns) })
}

// Stop kills the host: init, sshd and every process in it, as a power cut
// would; a reboot in progress ends there. The host becomes unreachable (connection refused); /run is lost,
// the rest (the store, the profile, /boot) stays.
func (h *Host) Stop() error {
	h.cancelReboot()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.run == nil {
		return nil
	}
	err := h.stopRun(h.run)
	h.run = nil
	return err
}

// Start starts a stopped host again on the same port with the same keys:
// a reboot. /run is fresh (so /run/keys is empty); the boot loader's default
// (BootDefault) becomes /run/booted-system, is activated and becomes
// /run/current-system; /etc, /var, /root, /home and /nix stay. If that
// system has no sshd, Start fails: the host is up but unreachable.
func (h *Host) Start() error {
	h.mu.Lock()
	running, rebooting := h.run != nil, h.boot.rebooting != nil
	h.mu.Unlock()
	if running {
		return fmt.Errorf("fakehost: %s: already running", h.Name)
	}
	if rebooting {
		return fmt.Errorf("fakehost: %s: rebooting", h.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*upTimeout)
	defer cancel()
	return h.start(ctx, false)
}

// logTail returns the last lines of a log from offset from on.
func logTail(path string, from int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if from <= int64(len(b)) {
		b = b[from:]
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "sshd log tail:\n  " + strings.Join(lines, "\n  ")
}

// AuthCount is the number of successful logins ("Accepted publickey"
// lines in the sshd log) since New, across restarts. Readiness checks do
// not log in, so a fresh host has 0. A ControlMaster connection counts once.
func (h *Host) AuthCount() (int, error) {
	b, err := os.ReadFile(h.LogFile())
	if err != nil {
		return 0, fmt.Errorf("fakehost: %s: %w", h.Name, err)
	}
	return bytes.Count(b, []byte("Accepted publickey for ")), nil
}
