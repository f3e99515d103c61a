// Package planfile is the file that lollypops plan writes and lollypops
// apply reads: per host, the system a deploy would activate, the system
// the host ran when the plan was made, the closure diff between them, the
// secrets that would change and the units their change restarts or
// reloads. docs/plan.md documents the format.
//
// A plan holds no secret value and no plain checksum of one: each secret
// is recorded by a keyed checksum (HMAC-SHA256 under the plan's random
// salt), so that a low-entropy value cannot be found by hashing guesses
// without the salt, and equal values on two hosts or paths do not show as
// equal checksums. Whether a secret would change is decided when the plan
// is made, against the host's manifest, and only the answer is kept.
package planfile

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/lollypops/lollypops/go/internal/closure"
	"github.com/nix-community/go-nix/pkg/storepath"
)

// Version is the plan format's version; Read refuses others.
const Version = 1

// File is one plan.
type File struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// Salt keys the secrets' checksums (hex, 32 random bytes).
	Salt string `json:"salt"`
	// Action is the rebuild action apply runs: switch, boot, test.
	Action string           `json:"action"`
	Hosts  map[string]*Host `json:"hosts"`
}

// Host is what the plan holds for one host.
type Host struct {
	// Flake is the flake source the host's system was evaluated from, as
	// its inventory entry names it (informational: a flake is the whole
	// fleet's, the system is the host's).
	Flake string `json:"flake"`
	// System is the new system's store path.
	System string `json:"system"`
	// Current is the system the host ran when the plan was made ("" for
	// none).
	Current string `json:"current"`
	// Reboot is set when the kernel or the initrd changes.
	Reboot bool          `json:"reboot"`
	Diff   *closure.Diff `json:"diff"`
	// Secrets are all the host's secrets, in its configuration's order.
	Secrets []Secret `json:"secrets"`
	// RestartUnits and ReloadUnits are the units of the secrets that
	// change (restartUnits, reloadUnits; a unit restarted is not also
	// reloaded). Only the ones that run then are touched.
	RestartUnits []string `json:"restart_units"`
	ReloadUnits  []string `json:"reload_units"`
}

// Secret is one secret of a host: no value, a keyed checksum.
type Secret struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	UploadAt string `json:"upload_at"`
	// Checksum is "hmac-sha256:" and the hex HMAC-SHA256, under the
	// plan's salt, of the host's name, the secret's name and path and
	// its value (Sum).
	Checksum string `json:"checksum"`
	// Changes: the value differs from the one the host's manifest
	// records for the path, or it has none.
	Changes bool `json:"changes"`
}

// NewSalt returns a fresh random salt, hex.
func NewSalt() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// Sum is the checksum a plan records for a secret's value: HMAC-SHA256
// keyed with the salt over host, name and path (NUL-separated) and the
// value.
func Sum(salt, host, name, path string, value []byte) (string, error) {
	key, err := hex.DecodeString(salt)
	if err != nil || len(key) < 16 {
		return "", fmt.Errorf("the plan's salt is not 16 or more bytes of hex")
	}
	m := hmac.New(sha256.New, key)
	for _, s := range []string{host, name, path} {
		io.WriteString(m, s)
		m.Write([]byte{0})
	}
	m.Write(value)
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil)), nil
}

// Error is a plan file that cannot be used; it names the file.
type Error struct {
	File string
	Err  error
	// Advice is the hint.
	Advice string
}

func (e *Error) Error() string { return fmt.Sprintf("plan %s: %v", e.File, e.Err) }
func (e *Error) Unwrap() error { return e.Err }
func (e *Error) Hint() string  { return e.Advice }

const rerun = "make a new one with lollypops plan HOSTS -o FILE"

// Read reads and checks a plan file.
func Read(file string) (*File, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &Error{File: file, Err: err, Advice: "lollypops plan HOSTS -o FILE writes a plan"}
	}
	return Decode(file, data)
}

// Decode decodes and checks a plan; file names it in errors.
func Decode(file string, data []byte) (*File, error) {
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, &Error{File: file, Err: fmt.Errorf("not a plan: %v", jsonMsg(err)), Advice: rerun}
	}
	switch {
	case head.Version == nil:
		return nil, &Error{File: file, Err: errors.New("not a plan: no version"), Advice: rerun}
	case *head.Version != Version:
		return nil, &Error{File: file, Err: fmt.Errorf("version %d, this lollypops reads version %d", *head.Version, Version),
			Advice: "apply a plan with the lollypops that made it, or " + rerun}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	f := &File{}
	if err := dec.Decode(f); err != nil {
		return nil, &Error{File: file, Err: fmt.Errorf("not a plan: %v", jsonMsg(err)), Advice: rerun}
	}
	if err := f.check(); err != nil {
		return nil, &Error{File: file, Err: err, Advice: rerun}
	}
	return f, nil
}

func jsonMsg(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v at byte %d", se, se.Offset)
	}
	return err.Error()
}

func (f *File) check() error {
	if _, err := Sum(f.Salt, "", "", "", nil); err != nil {
		return err
	}
	if f.Action == "" {
		return errors.New("no action")
	}
	if len(f.Hosts) == 0 {
		return errors.New("no host")
	}
	for name, h := range f.Hosts {
		switch {
		case h == nil:
			return fmt.Errorf("host %q: empty", name)
		case !isStorePath(h.System):
			return fmt.Errorf("host %q: system %q is not a store path", name, h.System)
		case h.Current != "" && !isStorePath(h.Current):
			return fmt.Errorf("host %q: current system %q is not a store path", name, h.Current)
		}
		for _, s := range h.Secrets {
			if s.Name == "" || s.Path == "" || s.Checksum == "" {
				return fmt.Errorf("host %q: a secret without its name, path or checksum", name)
			}
		}
	}
	return nil
}

func isStorePath(p string) bool {
	_, err := storepath.FromAbsolutePath(p)
	return err == nil
}

// Write writes f to file, mode 0600, atomically: a temporary file in the
// same directory, renamed over file.
func Write(file string, f *File) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return &Error{File: file, Err: err, Advice: "the plan is written next to where -o says; choose a directory you can write"}
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		_, err = tmp.Write(data)
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), file)
		}
		if err == nil {
			return nil
		}
	} else {
		tmp.Close()
	}
	return &Error{File: file, Err: err}
}

// Checksum returns the SHA-256 of a plan file's bytes, hex: what a run
// report says of the plan it applied.
func Checksum(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:]), nil
}
