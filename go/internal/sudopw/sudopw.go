// Package sudopw runs a run's commands as root on hosts whose sudo asks
// for a password, authenticating once per host connection, and sends the
// password only to a sudo that asked for it.
//
// The runner asks for the password once (Ask, on the terminal, or Command,
// from a password command) and keeps it in its memory: Serve. The password
// is never in an argv, an environment, a file, the Taskfile or a log, and
// the steps never see it.
//
// On each host, the first command through sudo opens the host's root
// session: the runner runs "sudo -S -p <prompt> sh -c <relay.sh>" over the
// host's shared ssh connection and watches sudo's standard error. When,
// and only when, sudo prints the prompt (a nonce of the run in it), the
// runner writes the password, once, as the line sudo reads; a second
// prompt means sudo refused it, and the runner ends the session without
// another try (pam_faillock counts one failure). A sudo that does not ask
// (NOPASSWD, for sh or for everything) never receives it. The session
// then runs as root until the connection ends: one authentication per
// host connection, however many commands the run sends.
//
// Each command through sudo is a step's `lollypops-step sudo-exec HOST --
// ARGV...` (Exec): an ssh session of its own, as the ssh user, runs
// waiter.sh, which names its processes; the runner hands the command to
// the root session, which starts it as root with that session's standard
// input, output and error and reports its exit code there. The command's
// input is its own: the password never sits on it.
package sudopw

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/term"
)

// SocketName is the socket's name in the run directory.
const SocketName = "sudo.sock"

// Socket is the socket's path for a run directory.
func Socket(runDir string) string { return filepath.Join(runDir, SocketName) }

// Available reports whether the run serves a sudo password.
func Available(runDir string) bool {
	fi, err := os.Lstat(Socket(runDir))
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// Ask reads the password on the terminal, without echo.
func Ask(prompt string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, errors.New("no terminal to ask for the sudo password on")
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	pw, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, fmt.Errorf("reading the sudo password: %w", err)
	}
	return pw, check(pw)
}

// Command runs a password command (a shell command line, as a secret's
// cmd) and takes the first line of its output.
func Command(ctx context.Context, line string, stderr io.Writer) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Stderr = stderr
	cmd.Stdin = os.Stdin
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("the sudo password command failed: %w", err)
	}
	pw, _, _ := bytes.Cut(out, []byte("\n"))
	return pw, check(pw)
}

func check(pw []byte) error {
	switch {
	case len(pw) == 0:
		return errors.New("the sudo password is empty")
	case bytes.ContainsAny(pw, "\n\r\x00"):
		return errors.New("the sudo password contains a line break or NUL, which sudo cannot read")
	}
	return nil
}

// Refused is what a command through sudo prints when sudo did not take the
// password.
const Refused = "sudo refused the password"

// Hint returns advice for what a command through sudo printed on its
// standard error when sudo wanted a password it did not get, did not take
// the one it got, or would not run the root session; "" otherwise.
func Hint(stderr string) string {
	switch {
	case strings.Contains(stderr, Refused):
		return "this is not the password sudo on the host wants; it was tried once there, and nothing ran through sudo"
	case strings.Contains(stderr, "a terminal is required to read the password"),
		strings.Contains(stderr, "sudo: a password is required"),
		strings.Contains(stderr, "no tty present and no askpass program specified"):
		return "sudo on the host asks for a password: give it with --ask-sudo-password or --sudo-password-command, or allow the user sudo without one (NOPASSWD)"
	case strings.Contains(stderr, "is not allowed to execute"), strings.Contains(stderr, "is not in the sudoers file"),
		strings.Contains(stderr, "may not run sudo"):
		return "with a sudo password, lollypops runs `sh -c <its root session>` through sudo once per connection: the ssh user must be allowed to run sh as root"
	}
	return ""
}

// The scripts the hosts run, without their comments: they travel in argv.
var (
	//go:embed relay.sh
	relayFile string
	//go:embed waiter.sh
	waiterFile string

	relayScript  = stripComments(relayFile)
	waiterScript = stripComments(waiterFile)
)

// stripComments drops the comment lines and blank lines of a script.
func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
