// Package rundir is the private directory of one lollypops run, shared by
// the runner and the step processes go-task starts: the generated Taskfile,
// one inventory per host, the ssh control sockets, and the step results the
// summary is made from.
//
// The directory is created with mode 0700 and removed when the run ends. It
// never holds secret values. Its path is short on purpose: ssh control
// sockets must fit in a unix socket address (108 bytes).
package rundir

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// EnvVar carries the run directory to the step processes.
const EnvVar = "LOLLYPOPS_RUN_DIR"

// EnvVerbose is "1" when the run is verbose (go-task's --verbose).
const EnvVerbose = "LOLLYPOPS_VERBOSE"

// maxBase is the longest base directory that keeps control socket paths
// (base + "/lollypops-NNNNNNNNNN/" + 12 + ".sock" + ssh's 17-byte temporary
// suffix) under the 108-byte limit.
const maxBase = 50

// Dir is a run directory.
type Dir struct{ Path string }

// Create makes a new run directory under $XDG_RUNTIME_DIR or the temporary
// directory, falling back to /tmp when those paths are too long for sockets.
func Create() (*Dir, error) {
	var base string
	for _, b := range []string{os.Getenv("XDG_RUNTIME_DIR"), os.TempDir(), "/tmp"} {
		if b != "" && len(b) <= maxBase && filepath.IsAbs(b) {
			if st, err := os.Stat(b); err == nil && st.IsDir() {
				base = b
				break
			}
		}
	}
	if base == "" {
		return nil, errors.New("no usable temporary directory (tried $XDG_RUNTIME_DIR, $TMPDIR, /tmp)")
	}
	p, err := os.MkdirTemp(base, "lollypops-")
	if err != nil {
		return nil, fmt.Errorf("cannot create the run directory: %w", err)
	}
	d := &Dir{Path: p}
	for _, sub := range []string{"hosts", "results", "ssh"} {
		if err := os.Mkdir(filepath.Join(p, sub), 0o700); err != nil {
			os.RemoveAll(p)
			return nil, fmt.Errorf("cannot create the run directory: %w", err)
		}
	}
	return d, nil
}

// FromEnv returns the run directory named by $LOLLYPOPS_RUN_DIR.
func FromEnv() (*Dir, error) {
	p := os.Getenv(EnvVar)
	if p == "" || !filepath.IsAbs(p) {
		return nil, fmt.Errorf("$%s is not set: lollypops-step is started by lollypops, not by hand", EnvVar)
	}
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	return &Dir{Path: p}, nil
}

// Remove deletes the directory and everything in it.
func (d *Dir) Remove() error { return os.RemoveAll(d.Path) }

// Taskfile is where the generated Taskfile is written.
func (d *Dir) Taskfile() string { return filepath.Join(d.Path, "Taskfile.json") }

// HostInventory is the one-host inventory the steps of host read.
func (d *Dir) HostInventory(host string) string {
	return filepath.Join(d.Path, "hosts", host+".json")
}

// HostTaskfile is where the Taskfile of one host's tasks is written, in a
// run that starts each host as soon as its evaluation is done.
func (d *Dir) HostTaskfile(host string) string {
	return filepath.Join(d.Path, "hosts", host+".Taskfile.json")
}

// Results is the directory of step results.
func (d *Dir) Results() string { return filepath.Join(d.Path, "results") }

// SSH returns the per-host prefix for ssh files: the control socket is
// prefix+".sock", the pinned known_hosts prefix+".known_hosts", and so on.
// Host names can be long, so the prefix is a short hash of the name.
func (d *Dir) SSH(host string) string {
	sum := sha256.Sum256([]byte(host))
	return filepath.Join(d.Path, "ssh", hex.EncodeToString(sum[:6]))
}
