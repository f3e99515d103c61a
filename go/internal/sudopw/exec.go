package sudopw

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/lollypops/lollypops/go/internal/output"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// request is what a step asks the runner, as one JSON line on the run's
// socket.
type request struct {
	Op   string   `json:"op"` // "root": open the host's root session; "exec": run Argv there
	Host string   `json:"host"`
	P    int      `json:"p,omitempty"` // the waiter's process (waiter.sh)
	Argv []string `json:"argv,omitempty"`
}

// reply is the runner's answer, one JSON line.
type reply struct {
	Error string `json:"error,omitempty"`
}

// ask sends one request to the run's socket and waits for the answer.
func ask(runDir string, req request) error {
	conn, err := net.Dial("unix", Socket(runDir))
	if err != nil {
		return fmt.Errorf("the run's sudo session server: %w", err)
	}
	defer conn.Close()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return fmt.Errorf("the run's sudo session server: %w", err)
	}
	var rep reply
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&rep); err != nil {
		return fmt.Errorf("the run's sudo session server did not answer: %w", err)
	}
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	return nil
}

// waiterMark starts the line waiter.sh prints, with its nonce.
const waiterMark = "lollypops-root-waiter "

// Exec runs argv as root on the host of c through the host's root
// session, with stdin, stdout and stderr as its own, and returns its exit
// code (255 when ssh failed or the command's end was not reported, 1 when
// the root session could not be had, with the reason on stderr).
//
// The root session is opened first (the one authentication of the
// connection, if it is not open yet); then an ssh session of the ssh user
// runs waiter.sh, whose standard input, output and error the command gets.
// Signals reach that ssh as they would a plain one.
func Exec(runDir string, c *ssh.Client, argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		output.New(stderr).Error(err)
		return 1
	}
	host := c.Host.Name
	if err := ask(runDir, request{Op: "root", Host: host}); err != nil {
		return fail(err)
	}
	nonce := randomHex()
	line, err := ssh.Command(nil, "sh", "-c", waiterScript, "lollypops-root", nonce)
	if err != nil {
		return fail(err)
	}
	argvSSH := c.RemoteArgs(line)
	cmd := exec.Command(argvSSH[0], argvSSH[1:]...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return fail(err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("%s: %w", argvSSH[0], err))
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	r := bufio.NewReader(errPipe)
	mark := waiterMark + nonce + " "
	for {
		l, err := r.ReadString('\n')
		if rest, ok := strings.CutPrefix(strings.TrimSuffix(l, "\n"), mark); ok && err == nil {
			p, perr := strconv.Atoi(rest)
			if perr == nil {
				perr = ask(runDir, request{Op: "exec", Host: host, P: p, Argv: argv})
			}
			if perr != nil {
				// The waiter waits for an exit code no one will write:
				// end it (it is the ssh user's), then this session.
				if line, err := ssh.Command(nil, "kill", strconv.Itoa(p)); err == nil && p > 0 {
					k := c.RemoteArgs(line)
					exec.Command(k[0], k[1:]...).Run()
				}
				cmd.Process.Kill()
				cmd.Wait()
				return fail(perr)
			}
			break
		}
		io.WriteString(stderr, l) // the login's own output
		if err != nil {
			return wait(cmd, stderr)
		}
	}
	io.Copy(stderr, r)
	return wait(cmd, stderr)
}

// wait returns the exit code of the ssh session.
func wait(cmd *exec.Cmd, stderr io.Writer) int {
	err := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	}
	output.New(stderr).Printf("%s: %v", cmd.Path, err)
	return 255
}

func randomHex() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("sudopw: no randomness: %v", err))
	}
	return hex.EncodeToString(b)
}

// Argv is the local command that runs argv as root on host through the
// run's root session: the step binary's sudo-exec mode (Exec).
func Argv(stepBinary, host string, argv []string) []string {
	return append([]string{stepBinary, "sudo-exec", host, "--"}, argv...)
}

// encodeCommand writes argv as the root session reads a command: one line
// of single-quoted words, each newline outside the quotes as "$nl", each
// single quote as '\”. NUL cannot be in a word.
func encodeCommand(argv []string) (string, error) {
	var b strings.Builder
	for i, w := range argv {
		if strings.ContainsRune(w, 0) {
			return "", fmt.Errorf("cannot pass %q to the root session: it holds a NUL byte", w)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('\'')
		for _, c := range []byte(w) {
			switch c {
			case '\'':
				b.WriteString(`'\''`)
			case '\n':
				b.WriteString(`'"$nl"'`)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('\'')
	}
	return b.String(), nil
}
