package fakehost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Generation is one generation of a host's system profile
// (/nix/var/nix/profiles/system-<N>-link).
type Generation struct {
	Number  int
	Path    string // the system's store path
	Current bool   // the profile points to it
}

// Generations lists the host's system profile, oldest first. It reads the
// host's directory, so it works while the host is stopped too.
func (h *Host) Generations() ([]Generation, error) {
	dir := filepath.Join(h.Dir, "nix", "var", "nix", "profiles")
	current, err := os.Readlink(filepath.Join(dir, "system"))
	if err != nil {
		return nil, fmt.Errorf("fakehost: %s: system profile: %w", h.Name, err)
	}
	links, err := filepath.Glob(filepath.Join(dir, "system-*-link"))
	if err != nil {
		return nil, err
	}
	var gens []Generation
	for _, l := range links {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(l), "system-"), "-link"))
		if err != nil {
			continue
		}
		path, err := os.Readlink(l)
		if err != nil {
			return nil, fmt.Errorf("fakehost: %s: %w", h.Name, err)
		}
		gens = append(gens, Generation{Number: n, Path: path, Current: filepath.Base(current) == filepath.Base(l)})
	}
	slices.SortFunc(gens, func(a, b Generation) int { return a.Number - b.Number })
	return gens, nil
}

// BootDefault is the system the host's fake boot loader boots (the target
// of /boot/default): what Start after Stop activates.
func (h *Host) BootDefault() (string, error) {
	p, err := os.Readlink(filepath.Join(h.Dir, "boot", "default"))
	if err != nil {
		return "", fmt.Errorf("fakehost: %s: boot loader: %w", h.Name, err)
	}
	return p, nil
}

// CurrentSystem is the target of the host's /run/current-system: the
// system activated last.
func (h *Host) CurrentSystem(ctx context.Context) (string, error) {
	return h.readRunLink(ctx, "current-system")
}

// BootedSystem is the target of the host's /run/booted-system: the system
// this run of the host booted.
func (h *Host) BootedSystem(ctx context.Context) (string, error) {
	return h.readRunLink(ctx, "booted-system")
}

func (h *Host) readRunLink(ctx context.Context, name string) (string, error) {
	out, err := h.Exec(ctx, "readlink", "/run/"+name)
	return strings.TrimSpace(string(out)), err
}

// StopSSHD stops the host's sshd service as `systemctl stop sshd` would
// on NixOS: the listener goes (new connections are refused), sessions
// stay.
func (h *Host) StopSSHD() error { return h.service("stop") }

// StartSSHD starts the host's sshd service and waits until it answers.
func (h *Host) StartSSHD() error { return h.service("start") }

// service sends a request to the host's init and waits for its answer.
func (h *Host) service(verb string) error {
	r, err := h.running()
	if err != nil {
		return err
	}
	ctl := filepath.Join(h.Dir, "ctl")
	id := fmt.Sprintf("%d.%d", os.Getpid(), time.Now().UnixNano())
	// Non-blocking: init keeps the FIFO open; without init, this fails.
	f, err := os.OpenFile(filepath.Join(ctl, "init.fifo"), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("fakehost: %s: %s sshd: %w", h.Name, verb, err)
	}
	_, err = fmt.Fprintf(f, "%s sshd %s;\n", verb, id)
	f.Close()
	if err != nil {
		return fmt.Errorf("fakehost: %s: %s sshd: %w", h.Name, verb, err)
	}
	reply := filepath.Join(ctl, "replies", id)
	for deadline := time.Now().Add(upTimeout); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(reply)
		if err == nil {
			os.Remove(reply)
			if s := strings.TrimSpace(string(b)); s != "ok" {
				return fmt.Errorf("fakehost: %s: %s sshd: %s", h.Name, verb, s)
			}
			break
		}
		if time.Now().After(deadline) || r.exited() {
			return fmt.Errorf("fakehost: %s: %s sshd: init did not answer", h.Name, verb)
		}
	}
	if verb == "start" {
		ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
		defer cancel()
		for r.listener(h.port()) == 0 || !banner(h.port()) {
			if ctx.Err() != nil {
				return fmt.Errorf("fakehost: %s: sshd started but does not answer", h.Name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}
