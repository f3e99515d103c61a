// Package secrets provisions a host's secret files. Each secret's command
// runs on the deployer and prints the value; all of a host's values then go
// to the host in one ssh session, on stdin, to a small POSIX sh receiver
// that writes them atomically with their exact bytes, owner, group and mode
// (receiver.sh).
//
// Values live only in this process's memory: never in argv, the
// environment, a file on the deployer, the Taskfile, a log or the Nix store.
// If any command fails, nothing of the host is written.
//
// A manifest on the host (<config-dir>/secrets.manifest) lists the paths
// lollypops wrote, so that secrets removed from the configuration can be
// reported, and removed when lollypops.secrets.remove-stale is set. It also
// keeps the checksum of each value it wrote: a file whose new value differs
// (or that had none) is reported as changed, so that the deployer can
// restart the units that read it.
package secrets

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
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
	Advice string
}

// Hint says what may fix the command (fault.Hinter).
func (e *CommandError) Hint() string { return e.Advice }

func (e *CommandError) Error() string {
	return fmt.Sprintf("secret %q: %v", e.Secret.Label(), e.Err)
}

func (e *CommandError) Unwrap() error { return e.Err }

// Fetch runs the commands of secrets, in order, and returns their output.
// The commands run with the user's environment, stdin and stderr (a
// password manager may prompt). It stops at the first failure.
func Fetch(ctx context.Context, r *execx.Runner, files []*config.Secret, stdin io.Reader, stderr io.Writer, stage func(name string) func()) ([]Value, error) {
	values := make([]Value, 0, len(files))
	progs := programs{}
	for _, s := range files {
		var out bytes.Buffer
		done := func() {}
		if stage != nil {
			done = stage("secret " + s.Label())
		}
		argv, program := commandArgv(s.Cmd, progs)
		err := r.Run(ctx, execx.Cmd{
			Argv:    argv,
			Program: program,
			Show:    s.Cmd,
			Stdin:   stdin,
			Stdout:  &out,
			Stderr:  stderr,
		})
		done()
		if err != nil {
			e := &CommandError{Secret: s, Err: fmt.Errorf("command failed (%s): %s", describe(err), s.Cmd)}
			var xe *execx.Error
			if errors.As(err, &xe) && xe.ExitCode == 127 {
				e.Advice = "the command was not found on this machine; secret commands run on the deployer, not on the host"
			}
			return nil, e
		}
		if out.Len() == 0 && !s.AllowEmpty {
			return nil, &CommandError{Secret: s, Err: fmt.Errorf("the command printed nothing: %s", s.Cmd),
				Advice: "if an empty file is intended, set allow-empty = true for this secret"}
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
	// without them: by root, or in the owner's directory by the owner, with
	// the owner's permission bits only (no bits for the group or others,
	// as its group is not the one asked for). It is reported as pending,
	// with what was written, and written again with its owner and group
	// after the activation.
	Soft bool
	// Manifest is the manifest's path on the host; Keep lists every
	// configured secret path of the host (all upload times).
	Manifest    string
	Keep        []string
	RemoveStale bool
}

// streamVersion is the first line of a stream; the receiver refuses others.
const streamVersion = "lollypops-secrets-7"

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

// encodeBody writes the records. Files are ordered by directory and owner,
// so the receiver stages each directory once per owner.
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
	line(streamVersion)
	if s.Manifest != "" {
		line("manifest", s.Manifest, flag(s.RemoveStale))
		for _, p := range s.Keep {
			line("keep", p)
		}
	}
	values := slices.Clone(s.Values)
	slices.SortStableFunc(values, func(a, b Value) int {
		return cmp.Or(cmp.Compare(path.Dir(a.Secret.Path), path.Dir(b.Secret.Path)),
			cmp.Compare(a.Secret.Owner, b.Secret.Owner))
	})
	for _, v := range values {
		m := FileMode(v.Secret.Mode)
		pm := m & 0o700 // while pending: the owner's bits only
		sum := sha256.Sum256(v.Data)
		// The path on its line, the rest as words on one line (owner and
		// group are names without blanks: config's validation): the
		// receiver reads them with one read.
		fields := []string{v.Secret.Owner, v.Secret.Group,
			fmt.Sprintf("%04o", m), fmt.Sprintf("%04o", ^m&0o777), flag(m&0o7111 != 0),
			fmt.Sprintf("%04o", pm), fmt.Sprintf("%04o", ^pm&0o777), flag(pm&0o100 != 0),
			flag(s.Soft), strconv.Itoa(len(v.Data)), hex.EncodeToString(sum[:])}
		line("file", v.Secret.Path)
		if n, ok := textLines(v.Data); ok {
			// Lines the receiver reads with its shell's read and writes
			// with its printf: no process per file.
			line(strings.Join(append(fields, "text", strconv.Itoa(n), flag(bytes.HasSuffix(v.Data, []byte("\n")))), " "))
			bw.Write(v.Data)
			if n > 0 && !bytes.HasSuffix(v.Data, []byte("\n")) {
				bw.WriteByte('\n')
			}
		} else {
			// Bytes the receiver copies with head -c.
			line(strings.Join(append(fields, "bytes"), " "))
			bw.Write(v.Data)
		}
		line("end")
	}
}

// maxText is the largest value sent as text: a shell reads a pipe a byte
// at a time, so beyond a few KiB one head is cheaper.
const maxText = 4096

// textLines reports whether a value goes as text, and its number of lines
// (the last one counts whether or not it ends with a newline). Text is
// what every sh's read -r with an empty IFS returns unchanged, line by
// line: no NUL byte. The receiver checks every file's sum anyway.
func textLines(data []byte) (int, bool) {
	if len(data) > maxText || bytes.IndexByte(data, 0) >= 0 {
		return 0, false
	}
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n, true
}

// FileMode parses a secret's mode: three or four octal digits, as the
// inventory's validation accepts them ("400", "0755", "4750").
func FileMode(mode string) uint32 {
	m, _ := strconv.ParseUint(mode, 8, 32)
	return uint32(m) & 0o7777
}

// Report is what the receiver did.
type Report struct {
	// Committed: every file of the session was renamed into place.
	Committed bool
	Wrote     []string
	// Changed are the files of Wrote whose value differs from the one the
	// manifest had for their path, or that it had none for.
	Changed     []string
	CreatedDirs []string
	Pending     []Pending // owner or group missing: written without them
	Stale       []string  // no longer configured, kept
	Removed     []string  // no longer configured, removed
	// Other is what the session printed that is not the receiver's, such
	// as the output of the login shell's start-up files.
	Other []string
}

// Pending is a file whose owner or group did not exist yet.
type Pending struct {
	Path, Owner, Group string
	// Missing is "user" or "group": what did not exist.
	Missing string `json:",omitempty"`
	// Wrote is the owner, group and mode the file got, as stat shows
	// them: "root:root 400", "alice:users 400".
	Wrote string `json:",omitempty"`
	// Changed: its value changed (the deployer's note, kept until the
	// file is written again with its owner, which restarts its units).
	Changed bool `json:",omitempty"`
}

// reportPrefix starts each line of the receiver's report.
const reportPrefix = "lollypops-secrets: "

// ParseReport reads the receiver's output. Lines that are not the
// receiver's go to Other; a line of the receiver's that it does not know
// is an error.
func ParseReport(out []byte) (*Report, error) {
	r := &Report{}
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		rec, ours := strings.CutPrefix(l, reportPrefix)
		if !ours {
			if l != "" {
				r.Other = append(r.Other, l)
			}
			continue
		}
		kind, rest, _ := strings.Cut(rec, " ")
		switch kind {
		case "committed":
			r.Committed = true
		case "wrote":
			r.Wrote = append(r.Wrote, rest)
		case "changed":
			r.Changed = append(r.Changed, rest)
		case "created-dir":
			r.CreatedDirs = append(r.CreatedDirs, rest)
		case "stale":
			r.Stale = append(r.Stale, rest)
		case "removed":
			r.Removed = append(r.Removed, rest)
		case "pending-owner":
			// <user|group> <owner>:<group> <wrote owner>:<group> <mode> <path>
			f := strings.SplitN(rest, " ", 5)
			if len(f) != 5 {
				return r, fmt.Errorf("unexpected output from the receiver: %q", l)
			}
			o, g, _ := strings.Cut(f[1], ":")
			r.Pending = append(r.Pending, Pending{Path: f[4], Owner: o, Group: g, Missing: f[0], Wrote: f[2] + " " + f[3]})
		default:
			return r, fmt.Errorf("unexpected output from the receiver: %q", l)
		}
	}
	return r, nil
}

// ReceiverArgv is the command the host runs (before sudo and quoting).
func ReceiverArgv() []string {
	return []string{"sh", "-c", receiverScript, "lollypops-secrets"}
}
