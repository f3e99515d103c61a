package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/lollypops/lollypops/go/internal/peercred"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/ssh"
	"github.com/lollypops/lollypops/go/internal/sudopw"
)

// Holder is the record a holder leaves on the host.
type Holder struct {
	Run   string // the deployer's host name and run directory
	User  string // the deployer's local user
	Host  string // the deployer's host name
	PID   string // the deployer's lollypops process
	Since string // when it took the lock, UTC, by the host's clock
}

// HeldError is the refusal: another run deploys the host.
type HeldError struct {
	Target string // the host's name in the inventory
	Holder Holder
	Dir    string
}

func (e *HeldError) Error() string {
	h := e.Holder
	if h.User == "" && h.Host == "" {
		return fmt.Sprintf("%s: being deployed by another run", e.Target)
	}
	msg := fmt.Sprintf("%s: being deployed by %s@%s", e.Target, h.User, h.Host)
	if h.Since != "" {
		msg += " since " + h.Since
	}
	if h.PID != "" {
		msg += " (pid " + h.PID + ")"
	}
	return msg
}

// Hint says what to do.
func (e *HeldError) Hint() string {
	stop := "stop it"
	if e.Holder.PID != "" && e.Holder.Host != "" {
		stop = fmt.Sprintf("stop it (pid %s on %s)", e.Holder.PID, e.Holder.Host)
	}
	return fmt.Sprintf("wait for that run to end, or %s; a run that died frees the lock when its ssh session ends, at the latest %ds after its connection went quiet (%s/holder on the host names the run)",
		stop, int(TTL.Seconds()), e.Dir)
}

// PendingError is the refusal of a host whose activation, by another run,
// is not final yet: its guard waits for that run's confirmation, or rolls
// back.
type PendingError struct {
	Target string // the host's name in the inventory
	ID     string // the activation's
	Status string // its status line
	Run    string // the run that started it
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("%s: an activation by another run (%s) is not finished: %s", e.Target, e.Run, e.Status)
}

// Hint says what to do.
func (e *PendingError) Hint() string {
	return fmt.Sprintf("it ends by itself: confirmed by that run, or rolled back within its window; deploy again then (/run/lollypops/activation/%s/status on the host says where it is)", e.ID)
}

// Error is a failure to take the lock for another reason than a holder.
type Error struct {
	Err  error
	hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Hint says what to do.
func (e *Error) Hint() string { return e.hint }

// mark starts the holder script's answer: lines before it come from the
// login's start-up files.
const mark = "lollypops-lock: "

// Acquire takes the host's deploy lock for the run over the host's shared
// connection c, or joins it when a step of the same run holds it. sudo is
// the host's sudo setting, as for every remote command. The holder it
// starts outlives the step: it ends with the run (Keeper.Release), when the
// run dies, or when its connection goes quiet for TTL.
//
// remote turns a command for the host into the argv that runs it over c
// (with sudo as the host's steps use it); nil uses c with the host's sudo.
func Acquire(ctx context.Context, c *ssh.Client, run *rundir.Dir, echo io.Writer, remote func(argv ...string) ([]string, error)) error {
	return acquire(ctx, c, run, echo, remote, "join")
}

// Reacquire takes the lock again over a new connection c, after the one
// its holder used was closed or dropped: it waits for that holder to go
// (ending it if it lingers) and holds the lock itself, never joining a
// holder that is about to give it up.
func Reacquire(ctx context.Context, c *ssh.Client, run *rundir.Dir, echo io.Writer, remote func(argv ...string) ([]string, error)) error {
	return acquire(ctx, c, run, echo, remote, "take")
}

// RunID is the run's id on the hosts: the deployer's host name and the run
// directory. The lock's record and the activations carry it.
func RunID(run *rundir.Dir) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return clean(host + ":" + run.Path)
}

func acquire(ctx context.Context, c *ssh.Client, run *rundir.Dir, echo io.Writer, remote func(argv ...string) ([]string, error), mode string) error {
	if remote == nil {
		remote = func(argv ...string) ([]string, error) {
			cmd, err := ssh.Command(&c.Host.Deployment.Sudo, argv...)
			if err != nil {
				return nil, err
			}
			return c.RemoteArgs(cmd), nil
		}
	}
	name := c.Host.Name
	if mode == "join" {
		// Steps of the run that start at once (deploy-flake and
		// deploy-secrets) take turns here: the first takes the lock,
		// the others find it held and ask the host nothing.
		unlock, err := localTurn(ctx, c.Prefix+".lock.turn")
		if err != nil {
			return err
		}
		defer unlock()
		if holding(c) {
			// A step of this run holds the lock: its holder's session
			// is still open over the host's connection. No session to
			// ask.
			return nil
		}
	}
	keeper, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: SocketPath(run), Net: "unix"})
	if err != nil {
		return &Error{Err: fmt.Errorf("deploy lock: the run's keeper: %w", err),
			hint: "lollypops-step is started by lollypops; install both from the same build"}
	}
	defer keeper.Close()
	pid, err := peerPID(keeper)
	if err != nil {
		return &Error{Err: fmt.Errorf("deploy lock: the run's keeper: %w", err)}
	}
	// Whose lock this connection holds: the keeper ends it once the
	// host's steps are over (ReleaseHost).
	if _, err := keeper.Write(hello(name)); err != nil {
		return &Error{Err: fmt.Errorf("deploy lock: the run's keeper: %w", err)}
	}
	stdin, err := keeper.File()
	if err != nil {
		return err
	}
	defer stdin.Close()
	me := Self(run, pid)
	inner := []string{"sh", "-c", holderScript, "lollypops-lock",
		RootDir, strconv.Itoa(int(TTL.Seconds())), mode, me.Run, me.User, me.Host, me.PID}
	argv, err := remote(inner...)
	if err != nil {
		return err
	}
	if echo != nil {
		// The holder's script by its name: it holds RootDir/lock (or
		// ~/UserDirName/lock) while this run lasts.
		shown, err := remote(execx.Shown(inner)...)
		if err != nil {
			return err
		}
		fmt.Fprintf(echo, "$ %s\n", execx.Quote(shown))
	}
	logPath := c.Prefix + ".lock.log"
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer outR.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, outW, log
	// Its own session: the terminal's Ctrl-C reaches the steps, and the
	// run releases the lock itself when it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	outW.Close()
	if err != nil {
		return &Error{Err: fmt.Errorf("deploy lock: %w", err)}
	}

	type answer struct {
		lines []string
		err   error
	}
	got := make(chan answer, 1)
	go func() {
		var a answer
		r := bufio.NewReader(outR)
		for {
			l, err := r.ReadString('\n')
			l = strings.TrimSuffix(l, "\n")
			if answer, ok := strings.CutPrefix(l, mark); ok && a.lines == nil {
				a.lines = []string{answer}
			} else if a.lines != nil && (l != "" || err == nil) {
				a.lines = append(a.lines, l)
			}
			if len(a.lines) == 1 && a.lines[0] == "ok" {
				break // the holder keeps its session: do not wait for more
			}
			if err != nil {
				if err != io.EOF {
					a.err = err
				}
				break
			}
		}
		got <- a
	}()
	var a answer
	select {
	case a = <-got:
	case <-ctx.Done():
		cmd.Process.Kill()
		cmd.Wait()
		return ctx.Err()
	}
	if len(a.lines) > 0 && a.lines[0] == "ok" {
		os.WriteFile(c.Prefix+".lock.holder", []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
		cmd.Process.Release()
		return nil
	}
	werr := cmd.Wait()
	switch {
	case a.err != nil:
		return a.err
	case len(a.lines) > 0 && a.lines[0] == "ours" && werr == nil:
		return nil
	case len(a.lines) > 0 && a.lines[0] == "activation" && werr == nil:
		p := &PendingError{Target: name}
		if len(a.lines) > 3 {
			p.ID, p.Status, p.Run = clean(a.lines[1]), clean(a.lines[2]), clean(a.lines[3])
		}
		return p
	case len(a.lines) > 0 && a.lines[0] == "held" && werr == nil:
		dir := RootDir
		if len(a.lines) > 1 {
			dir = clean(a.lines[1])
		}
		return &HeldError{Target: name, Holder: parseHolder(a.lines[2:]), Dir: dir}
	}
	msg, _ := os.ReadFile(logPath)
	return scriptError(name, werr, string(msg))
}

// scriptError explains a holder that failed before answering.
func scriptError(host string, werr error, stderr string) error {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "Warning: Permanently added") {
			lines = append(lines, strings.TrimPrefix(l, "lollypops: "))
		}
	}
	why := strings.Join(lines, "; ")
	if why == "" {
		why = fmt.Sprint(werr)
	}
	hint := "the deploy lock keeps other runs off " + host + " while this one deploys it"
	switch {
	case strings.Contains(why, "flock") && strings.Contains(why, "not found"),
		strings.Contains(why, "timeout") && strings.Contains(why, "not found"):
		hint = "the deploy lock runs flock (util-linux) and timeout (coreutils) on the host; NixOS has both"
	case strings.Contains(why, "lock directory"):
		hint = "lollypops keeps its deploy lock there; it refuses a directory another user could change"
	case sudopw.Hint(why) != "":
		// The lock is the first command through sudo a run sends.
		hint = sudopw.Hint(why)
	}
	return &Error{Err: fmt.Errorf("deploy lock on %s: %s", host, why), hint: hint}
}

// parseHolder reads the record the holder script printed; words that came
// from another deployer are shown without control characters.
func parseHolder(lines []string) Holder {
	field := func(i int) string {
		if i < len(lines) {
			return clean(lines[i])
		}
		return ""
	}
	return Holder{Run: field(0), User: field(1), Host: field(2), PID: field(3), Since: field(4)}
}

// clean replaces control characters, so a record (or a deployer's host or
// user name) is always one line of plain text.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// Self is this run's record: the deployer's host and user, the pid of its
// lollypops process, and its run id (deployer host and run directory).
func Self(run *rundir.Dir, pid int) Holder {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = "uid " + strconv.Itoa(os.Getuid())
	}
	return Holder{
		Run:  RunID(run),
		User: clean(name),
		Host: clean(host),
		PID:  strconv.Itoa(pid),
	}
}

// peerPID is the pid of the process at the other end: the run's lollypops.
func peerPID(c *net.UnixConn) (int, error) {
	p, err := peercred.Of(c)
	if err != nil {
		return 0, err
	}
	if p.PID <= 0 {
		return 0, errors.New("no peer process")
	}
	return p.PID, nil
}

// holding reports whether this run's holder of the host's lock still runs
// here: the ssh process that started it (recorded by the step that took
// the lock) is alive, is that holder's (its command line names the
// holder's script), and the host's shared connection answers. The holder
// ends when its session does, so a live session is a held lock; whatever
// cannot be told (no /proc: a darwin deployer) asks the host instead.
// localTurn takes the flock of path, on this machine, waiting while
// another step of the run has it (or until ctx ends); unlock gives it up.
func localTurn(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func holding(c *ssh.Client) bool {
	data, err := os.ReadFile(c.Prefix + ".lock.holder")
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "lollypops-lock") {
		return false
	}
	return c.Alive()
}
