// Package execx runs the local programs of a step — ssh, nix,
// nixos-rebuild, secret commands — from argv, never from shell text built
// by concatenation, and echoes each command line in verbose mode.
//
// A command can be detached into its own process group (Cmd.Detach), so a
// Ctrl-C on the terminal reaches the step but not the command: the step
// decides what to interrupt (an activation in flight on a host is allowed to
// finish). Commands that may prompt on the terminal (ssh asking for a
// password, a password manager) must not be detached: a background process
// group cannot read the terminal. Cancelling the context sends SIGTERM to
// the command (its whole group when detached), then SIGKILL after Grace.
package execx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"mvdan.cc/sh/v3/syntax"
)

// Grace is how long a cancelled child has between SIGTERM and SIGKILL.
const Grace = 5 * time.Second

// Runner starts commands.
type Runner struct {
	// Echo, when non-nil, receives "$ <command line>" before each command.
	Echo io.Writer
	// Stdout and Stderr are the defaults for commands that set neither.
	Stdout, Stderr io.Writer
}

// Cmd is one command.
type Cmd struct {
	Argv []string
	// Env is added to the runner's environment (KEY=value).
	Env []string
	// Path, when set, is put in front of $PATH.
	Path string
	// Program, when set, is the executable Argv[0] names, already looked
	// up: no search of $PATH (argv[0] stays as given).
	Program string
	Stdin   io.Reader // nil: /dev/null
	Stdout  io.Writer
	Stderr  io.Writer
	// Show replaces the echoed command line, for commands whose full text
	// would drown the output (a long script); it must stay truthful.
	Show string
	// Detach runs the command in its own process group, out of reach of
	// the terminal's Ctrl-C.
	Detach bool
}

// Error is a command that could not start or did not succeed.
type Error struct {
	Name     string // argv[0]'s base name
	ExitCode int    // -1 when killed by a signal or not started
	Signal   string
	NotFound bool
	Err      error
}

func (e *Error) Error() string {
	switch {
	case e.NotFound:
		return fmt.Sprintf("%s: command not found", e.Name)
	case e.Signal != "":
		return fmt.Sprintf("%s: killed by %s", e.Name, e.Signal)
	case e.ExitCode >= 0:
		return fmt.Sprintf("%s: exit status %d", e.Name, e.ExitCode)
	}
	return fmt.Sprintf("%s: %v", e.Name, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Run runs c and waits for it.
func (r *Runner) Run(ctx context.Context, c Cmd) error {
	cmd, err := r.command(ctx, c)
	if err != nil {
		return err
	}
	return wrap(c.Argv[0], cmd.Run())
}

// Output runs c and returns its standard output.
func (r *Runner) Output(ctx context.Context, c Cmd) ([]byte, error) {
	var out strings.Builder
	c.Stdout = &out
	err := r.Run(ctx, c)
	return []byte(out.String()), err
}

// Start starts c; the caller waits with Wait.
func (r *Runner) Start(ctx context.Context, c Cmd) (*exec.Cmd, error) {
	cmd, err := r.command(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, wrap(c.Argv[0], err)
	}
	return cmd, nil
}

// Wait waits for a command from Start.
func Wait(name string, cmd *exec.Cmd) error { return wrap(name, cmd.Wait()) }

func (r *Runner) command(ctx context.Context, c Cmd) (*exec.Cmd, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("execx: empty command")
	}
	if r.Echo != nil {
		line := c.Show
		if line == "" {
			line = Quote(c.Argv)
		}
		fmt.Fprintf(r.Echo, "$ %s\n", line)
	}
	path := c.Argv[0]
	if c.Program != "" {
		path = c.Program
	} else if c.Path != "" {
		// Resolve with the extended PATH, as the child will.
		path = lookPath(c.Argv[0], c.Path+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	cmd := exec.CommandContext(ctx, path, c.Argv[1:]...)
	cmd.Args[0] = c.Argv[0]
	cmd.Env = os.Environ()
	if c.Path != "" {
		cmd.Env = setEnv(cmd.Env, "PATH", c.Path+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	cmd.Env = append(cmd.Env, c.Env...)
	cmd.Stdin = c.Stdin
	cmd.Stdout = firstWriter(c.Stdout, r.Stdout)
	cmd.Stderr = firstWriter(c.Stderr, r.Stderr)
	if c.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return signalGroup(cmd, syscall.SIGTERM) }
	} else {
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	}
	cmd.WaitDelay = Grace
	return cmd, nil
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	if cmd.Process == nil {
		return nil
	}
	// A detached child leads its own process group: signal all of it.
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		return cmd.Process.Signal(sig)
	}
	return nil
}

func lookPath(name, path string) string {
	if strings.Contains(name, "/") {
		return name
	}
	for _, dir := range strings.Split(path, string(os.PathListSeparator)) {
		if dir == "" {
			continue
		}
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

func setEnv(env []string, key, value string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

func firstWriter(ws ...io.Writer) io.Writer {
	for _, w := range ws {
		if w != nil {
			return w
		}
	}
	return nil
}

func wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	base := name
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	e := &Error{Name: base, ExitCode: -1, Err: err}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = ws.Signal().String()
		} else {
			e.ExitCode = exitErr.ExitCode()
		}
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, os.ErrNotExist):
		e.NotFound = true
	}
	return e
}

// Quote renders argv as one shell command line, for display.
func Quote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		s, err := syntax.Quote(a, syntax.LangBash)
		if err != nil {
			s = fmt.Sprintf("%q", a)
		}
		q[i] = s
	}
	return strings.Join(q, " ")
}

// Shown is argv as --verbose and --dry show it: each script given to a
// shell with -c and named lollypops-<name> (its $0) is replaced by
// "<lollypops-<name> script>", wherever it is in argv (after sudo,
// systemd-run). Apply it before argv is wrapped into ssh's one remote
// command string.
func Shown(argv []string) []string {
	out := append([]string(nil), argv...)
	for i := 0; i+2 < len(out); i++ {
		if out[i] == "-c" && strings.HasPrefix(out[i+2], "lollypops-") {
			out[i+1] = "<" + out[i+2] + " script>"
		}
	}
	return out
}
