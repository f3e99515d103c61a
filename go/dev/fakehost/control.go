package fakehost

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// running returns the current run, or an error when the host is stopped.
func (h *Host) running() (*run, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.run == nil || h.run.exited() {
		return nil, fmt.Errorf("fakehost: %s: not running", h.Name)
	}
	return h.run, nil
}

// Exec runs a command as root inside the host (its mount, UTS and PID
// namespaces) with the PATH of a NixOS session, and returns its stdout. On
// failure the error includes stderr. Example:
//
//	h.Exec(ctx, "stat", "-c", "%a %U %G", "/run/keys/db")
func (h *Host) Exec(ctx context.Context, args ...string) ([]byte, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("fakehost: %s: exec: no command", h.Name)
	}
	r, err := h.running()
	if err != nil {
		return nil, err
	}
	nsArgs := []string{"--target", strconv.Itoa(r.pid), "--mount", "--uts", "--pid", "--"}
	cmd := exec.CommandContext(ctx, h.fleet.tools.nsenter, append(nsArgs, args...)...)
	cmd.Env = []string{"PATH=" + sessionPath, "HOME=/root", "USER=root", "LOGNAME=root"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// nsenter forks to enter the PID namespace; kill both on cancel.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("fakehost: %s: %s: %w: %s", h.Name, strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// KillSessions kills every process of the host except init and the
// services it runs — the sshd and nix-daemon listeners, httpd, and the
// transient units of systemd-run with all their processes: live ssh
// connections (and whatever runs in them, such as nix-store --serve, even
// when it was left running in the background) drop, new ones are accepted.
// It returns once the killed processes are gone.
func (h *Host) KillSessions() error {
	r, err := h.running()
	if err != nil {
		return err
	}
	port := h.port()
	return h.killUntilGone("sessions", func() []proc {
		var victims []proc
		sshd := r.listener(port)
		procs := nsProcs(r.ns)
		byPid := make(map[int]proc, len(procs))
		for _, p := range procs {
			byPid[p.pid] = p
		}
		service := func(p proc) bool {
			if p.pid == r.pid || p.pid == sshd || (p.ppid == r.pid && (p.comm == "nix-daemon" || p.comm == "busybox")) {
				return true
			}
			// A unit runs in a session of its own, led by a child of init.
			l, ok := byPid[p.sid]
			return ok && l.ppid == r.pid && l.sid == l.pid
		}
		for _, p := range procs {
			if service(p) || (p.ppid != r.pid && service(byPid[p.ppid]) && byPid[p.ppid].comm == "busybox") {
				continue
			}
			victims = append(victims, p)
		}
		return victims
	})
}

// killUntilGone sends SIGKILL to the processes list returns until it
// returns none, for at most upTimeout.
func (h *Host) killUntilGone(what string, list func() []proc) error {
	deadline := time.Now().Add(upTimeout)
	for {
		victims := list()
		if len(victims) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fakehost: %s: %s left after kill: %v", h.Name, what, victims)
		}
		for _, p := range victims {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// DropConnections kills the host's per-connection sshd processes, as a
// network failure ends them, but not what runs in the sessions: those see
// their stdin end and their stdout break, as after a real drop. New
// connections are accepted.
func (h *Host) DropConnections() error {
	r, err := h.running()
	if err != nil {
		return err
	}
	sshd := r.listener(h.port())
	for _, p := range nsProcs(r.ns) {
		if p.pid != sshd && p.comm == "sshd" {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	return nil
}

// RotateHostKey gives the host a new host key and makes the sshd listener
// reload (SIGHUP: sshd re-executes itself; live sessions stay, the port and
// the namespace too). It returns once sshd serves the new key. known_hosts
// is not updated.
func (h *Host) RotateHostKey() error {
	r, err := h.running()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	key := filepath.Join(h.Dir, "host_key")
	if err := keygen(ctx, h.fleet.tools.keygen, key+".new", h.Name); err != nil {
		return fmt.Errorf("fakehost: %s: %w", h.Name, err)
	}
	for _, sfx := range []string{".pub", ""} {
		if err := os.Rename(key+".new"+sfx, key+sfx); err != nil {
			return fmt.Errorf("fakehost: %s: %w", h.Name, err)
		}
	}
	if err := h.loadHostKey(); err != nil {
		return fmt.Errorf("fakehost: %s: %w", h.Name, err)
	}
	want := h.HostKey()
	sshd := r.listener(h.port())
	if sshd == 0 {
		return fmt.Errorf("fakehost: %s: reload sshd: sshd is not running", h.Name)
	}
	if err := syscall.Kill(sshd, syscall.SIGHUP); err != nil {
		return fmt.Errorf("fakehost: %s: reload sshd: %w", h.Name, err)
	}
	for {
		out, _ := exec.CommandContext(ctx, h.fleet.tools.keyscan, "-T", "2", "-t", "ed25519",
			"-p", strconv.Itoa(h.Port), "127.0.0.1").Output()
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[1]+" "+f[2] == want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fakehost: %s: sshd does not serve the new host key: %w\n%s",
				h.Name, ctx.Err(), logTail(h.LogFile(), r.logFrom))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SetRebuildExit makes the host's nixos-rebuild fail with code, as a failed
// build would: right after its start is recorded (and after the sleep of
// SetRebuildSleep), before it resolves the flake, builds, touches the
// profile or activates anything. 0 (the default) turns that off; the real
// outcome then depends on the flake and the system. Only the nixos-rebuild
// of systems built from this package's system.nix reads it; it is ignored
// by switch-to-configuration and by WriteLocalRebuild's fake.
func (h *Host) SetRebuildExit(code int) error {
	return h.setKnob("rebuild-exit", strconv.Itoa(code))
}

// SetRebuildSleep makes the host's nixos-rebuild sleep d right after its
// start is recorded, before anything else (0: none), as a slow build
// would.
func (h *Host) SetRebuildSleep(d time.Duration) error {
	return h.setKnob("rebuild-sleep", strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
}

// SetActivationHook makes the activation script of the host's systems run
// script with sh (bash) as root — the way NixOS activation creates users
// and groups. Activation happens on switch and test, and at every boot
// (Start); a hook that fails fails the activation (switch-to-configuration
// exits 2). An empty script removes the hook.
func (h *Host) SetActivationHook(script string) error {
	if script == "" {
		return h.removeKnob("activate-hook")
	}
	return h.setKnob("activate-hook", script)
}

// port returns the host's sshd port.
func (h *Host) port() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.Port
}

func (h *Host) setKnob(name, value string) error {
	p := filepath.Join(h.Dir, "ctl", name)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(value+"\n"), 0o644); err != nil {
		return fmt.Errorf("fakehost: %s: %w", h.Name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("fakehost: %s: %w", h.Name, err)
	}
	return nil
}
