package fakehost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Fleet is a set of running fake hosts and the client files to reach them:
//
//	ssh -F f.SSHConfig host1 true
//	NIX_SSHOPTS="-F $SSHConfig" nix copy --to ssh://host1 /nix/store/...
type Fleet struct {
	Dir          string // the fleet directory given to New, absolute
	SSHConfig    string // ssh_config with one Host block per host (User root)
	KnownHosts   string // every host key as [127.0.0.1]:<port> ssh-ed25519 ...
	IdentityFile string // private key (ed25519, no passphrase) for every user

	tools  tools
	hosts  []*Host
	byName map[string]*Host

	closeOnce sync.Once
	closeErr  error
}

// New creates the fleet's files in dir (which must not already hold a
// fleet; t.TempDir() is fine) and brings every host up in parallel. ctx
// bounds the setup only; the hosts run until Close.
func New(ctx context.Context, dir string, specs []HostSpec) (*Fleet, error) {
	t, err := findTools()
	if err != nil {
		return nil, fmt.Errorf("fakehost: %w", err)
	}
	if err := checkSpecs(specs, t); err != nil {
		return nil, fmt.Errorf("fakehost: %w", err)
	}
	if dir, err = checkDir(dir); err != nil {
		return nil, fmt.Errorf("fakehost: %w", err)
	}
	// Mount points for every host's own store and homes.
	for _, p := range []string{"/nix", "/home"} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, fmt.Errorf("fakehost: %w", err)
		}
	}
	f := &Fleet{
		Dir:          dir,
		SSHConfig:    filepath.Join(dir, "ssh_config"),
		KnownHosts:   filepath.Join(dir, "known_hosts"),
		IdentityFile: filepath.Join(dir, "id_ed25519"),
		tools:        t,
		byName:       map[string]*Host{},
	}
	if _, err := os.Lstat(f.IdentityFile); err == nil {
		return nil, fmt.Errorf("fakehost: %s already holds a fleet", dir)
	}
	for _, s := range specs {
		h := &Host{Name: s.Name, Dir: filepath.Join(dir, s.Name), spec: s, fleet: f}
		if _, err := os.Lstat(h.Dir); err == nil {
			return nil, fmt.Errorf("fakehost: %s: %s already exists", s.Name, h.Dir)
		}
		f.hosts = append(f.hosts, h)
		f.byName[s.Name] = h
	}
	if err := f.up(ctx); err != nil {
		if cerr := f.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return f, nil
}

func (f *Fleet) up(ctx context.Context) error {
	if err := keygen(ctx, f.tools.keygen, f.IdentityFile, "fakehost"); err != nil {
		return fmt.Errorf("fakehost: client key: %w", err)
	}
	pub, err := os.ReadFile(f.IdentityFile + ".pub")
	if err != nil {
		return fmt.Errorf("fakehost: %w", err)
	}
	if err := os.WriteFile(filepath.Join(f.Dir, "authorized_keys"), pub, 0o644); err != nil {
		return fmt.Errorf("fakehost: %w", err)
	}
	errs := make([]error, len(f.hosts))
	var wg sync.WaitGroup
	for i, h := range f.hosts {
		wg.Go(func() {
			if err := h.prepare(ctx, pub); err != nil {
				errs[i] = fmt.Errorf("fakehost: %s: %w", h.Name, err)
				return
			}
			errs[i] = h.start(ctx, true)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var known, cfg bytes.Buffer
	for _, h := range f.hosts {
		fmt.Fprintf(&known, "[127.0.0.1]:%d %s\n", h.Port, h.HostKey())
		cfg.WriteString(f.sshConfigBlock(h))
	}
	if err := os.WriteFile(f.KnownHosts, known.Bytes(), 0o644); err != nil {
		return fmt.Errorf("fakehost: %w", err)
	}
	if err := os.WriteFile(f.SSHConfig, cfg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("fakehost: %w", err)
	}
	return nil
}

// Host returns the named host, or nil.
func (f *Fleet) Host(name string) *Host { return f.byName[name] }

// Hosts returns the hosts in the order of the specs.
func (f *Fleet) Hosts() []*Host { return append([]*Host(nil), f.hosts...) }

// RotateHostKey gives the named host a new host key and restarts its sshd
// listener (live sessions stay). known_hosts is not updated, so the next
// connection fails host key verification.
func (f *Fleet) RotateHostKey(name string) error {
	h := f.Host(name)
	if h == nil {
		return fmt.Errorf("fakehost: no host %q", name)
	}
	return h.RotateHostKey()
}

// Close kills every process of every host (their mounts go with their
// namespaces) and removes the files New created. It is safe to call more
// than once.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() {
		errs := make([]error, len(f.hosts))
		var wg sync.WaitGroup
		for i, h := range f.hosts {
			wg.Go(func() { errs[i] = h.Stop() })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			// Something may still use the directories; keep them.
			f.closeErr = err
			return
		}
		for _, h := range f.hosts {
			errs = append(errs, os.RemoveAll(h.Dir))
		}
		for _, n := range []string{"id_ed25519", "id_ed25519.pub", "authorized_keys", "known_hosts", "ssh_config"} {
			if err := os.Remove(filepath.Join(f.Dir, n)); err != nil && !os.IsNotExist(err) {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			f.closeErr = fmt.Errorf("fakehost: close: %w", err)
		}
	})
	return f.closeErr
}

// keygen writes a new ed25519 key pair without passphrase to path(.pub).
func keygen(ctx context.Context, bin, path, comment string) error {
	for _, p := range []string{path, path + ".pub"} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	out, err := exec.CommandContext(ctx, bin, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh-keygen: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
