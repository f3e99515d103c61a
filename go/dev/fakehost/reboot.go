package fakehost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// A reboot from inside the host (`systemctl reboot`, `reboot`): the
// host's init writes /run/fakehost/reboot-request and exits, so the kernel
// kills every process of the host at once (sshd, sessions, units), as a
// reboot ends them. Each run's watcher sees init gone with that request
// and boots the host again after the boot delay: the boot loader's default
// on the same port with the same host keys, as Start does.

// defaultBootDelay is how long a rebooting host stays down before its
// init starts (firmware, kernel, initrd), on top of the boot itself.
const defaultBootDelay = 500 * time.Millisecond

// bootState is the host's reboot bookkeeping, guarded by Host.mu.
type bootState struct {
	boots     int           // successful boots since New
	delay     time.Duration // SetBootDelay; 0 = defaultBootDelay
	hangNext  bool          // HangNextBoot
	rebooting *rebooting    // a reboot in progress
}

type rebooting struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// SetBootDelay sets how long the host stays down when it reboots itself,
// before its init starts booting (default 500ms). It does not apply to
// Start.
func (h *Host) SetBootDelay(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.boot.delay = d
}

// HangNextBoot makes the host's next reboot from inside (systemctl reboot)
// never come back, as a boot that hangs or fails before sshd: the host
// goes down and stays down (connections are refused) until Start.
func (h *Host) HangNextBoot() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.boot.hangNext = true
}

// Boots is the number of times the host came up since New: the first
// start, every Start and every reboot from inside.
func (h *Host) Boots() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.boot.boots
}

// Rebooting reports whether the host is going down or booting again after
// a reboot from inside.
func (h *Host) Rebooting() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.boot.rebooting != nil
}

// HTTPPort is the port on 127.0.0.1 of the web service of the host's
// systems (HostSpec.HTTP; 0 without). Whether something answers there
// depends on the running system (System.HTTP).
func (h *Host) HTTPPort() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.httpPort
}

// watch waits for the end of a run; if its init asked for a reboot, it
// boots the host again.
func (h *Host) watch(r *run) {
	<-r.done
	req := filepath.Join(h.Dir, "ctl", "reboot-request")
	if _, err := os.Stat(req); err != nil {
		return
	}
	_ = os.Remove(req)
	h.mu.Lock()
	if h.run != r {
		// Stopped meanwhile.
		h.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	rb := &rebooting{cancel: cancel, done: make(chan struct{})}
	h.run, h.boot.rebooting = nil, rb
	delay, hang := h.boot.delay, h.boot.hangNext
	h.boot.hangNext = false
	h.mu.Unlock()
	if delay == 0 {
		delay = defaultBootDelay
	}
	defer func() {
		h.mu.Lock()
		h.boot.rebooting = nil
		h.mu.Unlock()
		cancel()
		close(rb.done)
	}()
	// The kernel killed the host's processes when init exited; wait until
	// they are gone (and unshare is reaped).
	if err := h.stopRun(r); err != nil {
		h.logf("reboot: %v", err)
		return
	}
	if hang {
		h.logf("reboot: the boot hangs (HangNextBoot); the host stays down until Start")
		return
	}
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return
	}
	if err := h.start(ctx, false); err != nil {
		h.logf("reboot: %v", err)
	}
}

// logf appends a line to the host's log (LogFile).
func (h *Host) logf(format string, args ...any) {
	f, err := os.OpenFile(h.LogFile(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "fakehost: %s\n", fmt.Sprintf(format, args...))
}

// cancelReboot ends a reboot in progress (the host stays as it is: down,
// or up if the boot finished first).
func (h *Host) cancelReboot() {
	h.mu.Lock()
	rb := h.boot.rebooting
	h.mu.Unlock()
	if rb != nil {
		rb.cancel()
		<-rb.done
	}
}
