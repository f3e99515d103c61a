// Package sudopw hands the sudo password of a run to the commands that
// need it, without it ever being in an argv, an environment, the Taskfile,
// a log or a file.
//
// The runner asks for the password once (Ask, on the terminal, or Command,
// from a password command) and serves it on a unix socket in the run
// directory (mode 0700), to processes of its own user only (SO_PEERCRED).
// Each command run on a host through sudo goes through the step binary's
// feed mode (Feed): it fetches the password from the socket, starts ssh,
// writes the password as the first line of ssh's standard input, then
// copies its own standard input. On the host, Script reads that line and
// hands it to sudo -S (see the script for the checks around it).
package sudopw

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/lollypops/lollypops/go/internal/peercred"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/term"
)

// SocketName is the socket's name in the run directory.
const SocketName = "sudo.sock"

// Socket is the socket's path for a run directory.
func Socket(runDir string) string { return filepath.Join(runDir, SocketName) }

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

// Server serves the password on the run's socket.
type Server struct {
	ln net.Listener
	pw []byte
}

// Serve starts serving pw on the socket in runDir.
func Serve(runDir string, pw []byte) (*Server, error) {
	path := Socket(runDir)
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, pw: pw}
	go s.loop()
	return s, nil
}

func (s *Server) loop() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			if !sameUser(conn) {
				return
			}
			conn.Write(append(append([]byte{}, s.pw...), '\n'))
		}()
	}
}

// Close stops serving and forgets the password.
func (s *Server) Close() {
	s.ln.Close()
	clear(s.pw)
}

func sameUser(conn net.Conn) bool {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return false
	}
	p, err := peercred.Of(uc)
	return err == nil && p.UID == os.Getuid()
}

// Available reports whether the run serves a sudo password.
func Available(runDir string) bool {
	fi, err := os.Lstat(Socket(runDir))
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// fetch reads the password from the run's socket.
func fetch(runDir string) ([]byte, error) {
	conn, err := net.Dial("unix", Socket(runDir))
	if err != nil {
		return nil, fmt.Errorf("the run's sudo password: %w", err)
	}
	defer conn.Close()
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("the run's sudo password: %w", err)
	}
	return line, nil
}

// Feed runs argv (an ssh command) with the password as the first line of
// its standard input, then stdin; it returns argv's exit code.
func Feed(runDir string, argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := fetch(runDir)
	if err != nil {
		fmt.Fprintf(stderr, "lollypops: %v\n", err)
		return 255
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		fmt.Fprintf(stderr, "lollypops: %v\n", err)
		return 255
	}
	// Signals reach ssh as they would have without the feeder.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "lollypops: %v\n", err)
		return 255
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	go func() {
		_, werr := in.Write(line)
		clear(line)
		if werr == nil && stdin != nil {
			io.Copy(in, stdin)
		}
		in.Close()
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	}
	fmt.Fprintf(stderr, "lollypops: %s: %v\n", argv[0], err)
	return 255
}

// Script runs "sudo [opts] argv" on the host with the password from the
// first line of standard input: it reads the line; a sudo that needs no
// password (NOPASSWD) runs the command as it is; otherwise the password is
// checked with sudo -S once (a wrong one must not make sudo read the
// command's input as further attempts), then given to sudo -S ahead of the
// rest of the input. The password stays in a shell variable: printf is a
// builtin, so it is in no process's argv or environment. Arguments: the
// sudo command, then its options and the command.
const Script = `IFS= read -r pw || { echo "lollypops: no sudo password came" >&2; exit 1; }
s=$1
shift
if "$s" -n -k true 2>/dev/null; then
	unset pw
	exec "$s" "$@"
fi
printf '%s\n' "$pw" | "$s" -S -k -p '' true 2>/dev/null || {
	echo "lollypops: ` + Refused + ` (user $(id -un))" >&2
	exit 1
}
{
	printf '%s\n' "$pw"
	unset pw
	exec cat
} | "$s" -S -k -p '' "$@"`

// Refused is what Script prints when sudo does not take the password.
const Refused = "sudo refused the password"

// Hint returns advice for what a command through sudo printed on its
// standard error when sudo wanted a password it did not get, or did not
// take the one it got; "" otherwise.
func Hint(stderr string) string {
	switch {
	case strings.Contains(stderr, Refused):
		return "this is not the password sudo on the host wants; it was tried once there, and nothing ran through sudo"
	case strings.Contains(stderr, "a terminal is required to read the password"),
		strings.Contains(stderr, "sudo: a password is required"),
		strings.Contains(stderr, "no tty present and no askpass program specified"):
		return "sudo on the host asks for a password: give it with --ask-sudo-password or --sudo-password-command, or allow the user sudo without one (NOPASSWD)"
	}
	return ""
}

// Argv is the remote command for argv run through sudo with the password.
func Argv(sudoCommand string, opts, argv []string) []string {
	out := []string{"sh", "-c", Script, "lollypops-sudo", sudoCommand}
	out = append(out, opts...)
	return append(out, argv...)
}

// Shown is Argv for messages.
func Shown(sudoCommand string, opts, argv []string) string {
	return strings.Join(append([]string{"<lollypops sudo with the run's password>", sudoCommand}, append(opts, argv...)...), " ")
}
