// Package secrets provisions a host's secret files. Each secret's command
// runs on the deployer and prints the value; all of a host's values then go
// to the host in one ssh session, on stdin, to a small POSIX sh receiver
// that writes them atomically with their exact bytes, owner, group and mode
// (see receiverScript).
//
// Values live only in this process's memory: never in argv, the
// environment, a file on the deployer, the Taskfile, a log or the Nix store.
// If any command fails, nothing of the host is written.
//
// A manifest on the host (<config-dir>/secrets.manifest) lists the paths
// lollypops wrote, so that secrets removed from the configuration can be
// reported, and removed when lollypops.secrets.remove-stale is set.
package secrets

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
)

// Value is a secret with the bytes its command printed.
type Value struct {
	Secret *config.Secret
	Data   []byte
}

// CommandError is a secret whose command failed or printed nothing.
type CommandError struct {
	Secret *config.Secret
	Err    error
	Hint   string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("secret %q: %v", e.Secret.Label(), e.Err)
}

func (e *CommandError) Unwrap() error { return e.Err }

// Fetch runs the commands of secrets, in order, and returns their output.
// The commands run with the user's environment, stdin and stderr (a
// password manager may prompt). It stops at the first failure.
func Fetch(ctx context.Context, r *execx.Runner, files []*config.Secret, stdin io.Reader, stderr io.Writer) ([]Value, error) {
	values := make([]Value, 0, len(files))
	for _, s := range files {
		var out bytes.Buffer
		err := r.Run(ctx, execx.Cmd{
			Argv:   commandArgv(s.Cmd),
			Show:   s.Cmd,
			Stdin:  stdin,
			Stdout: &out,
			Stderr: stderr,
		})
		if err != nil {
			e := &CommandError{Secret: s, Err: fmt.Errorf("command failed (%s): %s", describe(err), s.Cmd)}
			var xe *execx.Error
			if errors.As(err, &xe) && xe.ExitCode == 127 {
				e.Hint = "the command was not found on this machine; secret commands run on the deployer, not on the host"
			}
			return nil, e
		}
		if out.Len() == 0 && !s.AllowEmpty {
			return nil, &CommandError{Secret: s, Err: fmt.Errorf("the command printed nothing: %s", s.Cmd),
				Hint: "if an empty file is intended, set allow-empty = true for this secret"}
		}
		values = append(values, Value{Secret: s, Data: out.Bytes()})
	}
	return values, nil
}

func describe(err error) string {
	var xe *execx.Error
	if errors.As(err, &xe) {
		switch {
		case xe.Signal != "":
			return "killed by " + xe.Signal
		case xe.ExitCode >= 0:
			return "exit status " + strconv.Itoa(xe.ExitCode)
		}
	}
	return err.Error()
}

// Stream is what one receiver session gets.
type Stream struct {
	Values []Value
	// Soft lets a file whose owner or group does not exist yet be written
	// owned by the receiving user (root), to be fixed after activation.
	Soft bool
	// Manifest is the manifest's path on the host; Keep lists every
	// configured secret path of the host (all upload times).
	Manifest    string
	Keep        []string
	RemoveStale bool
	// Chown gives files written earlier with a pending owner their owner,
	// now that activation created it; missing owners are errors.
	Chown []Pending
}

// commitRecord ends a stream: without it the receiver writes nothing.
const commitRecord = "commit\n"

// Encode writes the whole stream for the receiver.
func Encode(w io.Writer, s *Stream) error {
	bw := bufio.NewWriter(w)
	encodeBody(bw, s)
	bw.WriteString(commitRecord)
	return bw.Flush()
}

// Send writes the stream in chunks and ends it with the commit record only
// if ctx is still live: an interrupted run closes the stream early, and the
// receiver then discards everything it got.
func Send(ctx context.Context, w io.Writer, s *Stream) error {
	var body bytes.Buffer
	bw := bufio.NewWriter(&body)
	encodeBody(bw, s)
	bw.Flush()
	data := body.Bytes()
	for len(data) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(len(data), 64<<10)
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := io.WriteString(w, commitRecord)
	return err
}

func encodeBody(bw *bufio.Writer, s *Stream) {
	line := func(parts ...string) {
		for _, p := range parts {
			bw.WriteString(p)
			bw.WriteByte('\n')
		}
	}
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	line("lollypops-secrets-3")
	if s.Manifest != "" {
		line("manifest", s.Manifest, flag(s.RemoveStale))
		for _, p := range s.Keep {
			line("keep", p)
		}
	}
	seen := map[string]bool{}
	for _, v := range s.Values {
		for _, d := range ancestors(v.Secret.Path) {
			if !seen[d] {
				seen[d] = true
				line("dir", d, v.Secret.Owner, v.Secret.Group, flag(s.Soft))
			}
		}
		line("file", v.Secret.Path, v.Secret.Owner, v.Secret.Group, v.Secret.Mode, umask(v.Secret.Mode),
			flag(s.Soft), strconv.Itoa(len(v.Data)))
		bw.Write(v.Data)
		line("end")
	}
	for _, p := range s.Chown {
		line("chown", p.Path, p.Owner, p.Group)
	}
}

// umask is the umask that creates a file with mode's permission bits.
// Set-id and sticky bits (a fourth digit) are applied by chmod instead.
func umask(mode string) string {
	m, _ := strconv.ParseUint(mode, 8, 32)
	return fmt.Sprintf("%04o", ^m&0o777)
}

// ancestors returns the directories above p, outermost first, without "/".
func ancestors(p string) []string {
	var dirs []string
	for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
		dirs = append(dirs, d)
	}
	for i, j := 0, len(dirs)-1; i < j; i, j = i+1, j-1 {
		dirs[i], dirs[j] = dirs[j], dirs[i]
	}
	return dirs
}

// Report is what the receiver did.
type Report struct {
	Wrote       []string
	CreatedDirs []string
	Pending     []Pending // written owned by root: owner or group missing
	Stale       []string  // no longer configured, kept
	Removed     []string  // no longer configured, removed
	OwnerFixed  []string  // pending owners set after activation
}

// Pending is a file whose owner or group did not exist yet.
type Pending struct {
	Path, Owner, Group string
}

// ParseReport reads the receiver's output.
func ParseReport(out []byte) (*Report, error) {
	r := &Report{}
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l == "" {
			continue
		}
		kind, rest, _ := strings.Cut(l, " ")
		switch kind {
		case "wrote":
			r.Wrote = append(r.Wrote, rest)
		case "created-dir":
			r.CreatedDirs = append(r.CreatedDirs, rest)
		case "stale":
			r.Stale = append(r.Stale, rest)
		case "removed":
			r.Removed = append(r.Removed, rest)
		case "owner-fixed":
			r.OwnerFixed = append(r.OwnerFixed, rest)
		case "pending-owner":
			og, p, _ := strings.Cut(rest, " ")
			o, g, _ := strings.Cut(og, ":")
			r.Pending = append(r.Pending, Pending{Path: p, Owner: o, Group: g})
		default:
			return r, fmt.Errorf("unexpected output from the host: %q", l)
		}
	}
	return r, nil
}

// ReceiverArgv is the command the host runs (before sudo and quoting).
func ReceiverArgv() []string {
	return []string{"sh", "-c", receiverScript, "lollypops-secrets"}
}
