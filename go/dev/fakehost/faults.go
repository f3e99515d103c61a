package fakehost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Knobs of a running host for what goes wrong around a switch on a real
// host: a flaky unit, another switch holding the lock, a refused reboot.
// The systems' own knobs are System's fields.

// SetFailingUnits makes units ("foo" or "foo.service") fail on the host,
// as a flaky unit does: every activation of any system — switch and test
// (switch-to-configuration then exits 4, "warning: the following units
// failed: ..."), a rollback to an older system, and the activation at
// boot — ends with them in the failed state, until the next activation
// resets failed units or `systemctl reset-failed`. They have no process.
// No units turns it off (units failed now stay failed).
func (h *Host) SetFailingUnits(units ...string) error {
	if len(units) == 0 {
		return h.removeKnob("failing-units")
	}
	names, err := unitNames("SetFailingUnits", units)
	if err != nil {
		return fmt.Errorf("fakehost: %s: %w", h.Name, err)
	}
	return h.setKnob("failing-units", strings.Join(names, "\n"))
}

// SetRebootFails makes `systemctl reboot` and `reboot` on the host, as
// root, print msg on stderr and exit 1 without rebooting (a reboot that
// logind or a blocking inhibitor refuses). "" turns it off.
func (h *Host) SetRebootFails(msg string) error {
	if msg == "" {
		return h.removeKnob("reboot-fails")
	}
	return h.setKnob("reboot-fails", strings.TrimRight(msg, "\n"))
}

// SetUnitStartDelay makes every transient unit that systemd-run starts
// from now on begin its command d late (0: at once): systemd-run has
// returned and the unit runs, but its program reaches its first line only
// after d, as on a loaded host.
func (h *Host) SetUnitStartDelay(d time.Duration) error {
	if d <= 0 {
		return h.removeKnob("unit-start-delay")
	}
	return h.setKnob("unit-start-delay", strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
}

// HoldSwitchLock takes switch-to-configuration's lock on the host
// (/run/nixos/switch-to-configuration.lock), as a switch in progress holds
// it, until release is called: meanwhile every switch-to-configuration on
// the host fails at once with "Could not acquire lock", exit 11 (stc-ng's
// non-blocking lock). The lock is held by this process, through the
// host's /run; a reboot of the host (a new /run) frees it. It fails if
// the lock is taken already. release is safe to call more than once.
func (h *Host) HoldSwitchLock() (release func() error, err error) {
	r, err := h.running()
	if err != nil {
		return nil, err
	}
	dir := fmt.Sprintf("/proc/%d/root/run/nixos", r.pid)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("fakehost: %s: switch lock: %w", h.Name, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "switch-to-configuration.lock"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("fakehost: %s: switch lock: %w", h.Name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("fakehost: %s: switch lock: %w", h.Name, err)
	}
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() { err = f.Close() })
		return err
	}, nil
}

// FailedUnits returns the units in the failed state on the host now, as
// `systemctl list-units --failed` lists them: the systems' failing units,
// the host's (SetFailingUnits), failed transient units of systemd-run, and
// sshd or httpd when they failed to start.
func (h *Host) FailedUnits(ctx context.Context) ([]string, error) {
	out, err := h.Exec(ctx, "systemctl", "list-units", "--failed", "--plain", "--no-legend")
	if err != nil {
		return nil, err
	}
	var units []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			units = append(units, f[0])
		}
	}
	return units, nil
}

// BootLoader is the boot loader installed on the host ("" for the fake
// one every host installs at its first boot, or BootLoaderSystemdBoot),
// as System.BootLoader names them. It reads the host's /boot, so it works
// while the host is stopped too.
func (h *Host) BootLoader() (string, error) {
	b, err := os.ReadFile(filepath.Join(h.Dir, "boot", "loader"))
	if err != nil {
		return "", fmt.Errorf("fakehost: %s: boot loader: %w", h.Name, err)
	}
	if l := strings.TrimSpace(string(b)); l != "fake" {
		return l, nil
	}
	return "", nil
}

func (h *Host) removeKnob(name string) error {
	if err := os.Remove(filepath.Join(h.Dir, "ctl", name)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("fakehost: %s: %w", h.Name, err)
	}
	return nil
}
