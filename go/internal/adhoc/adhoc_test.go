package adhoc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The command reaches the host's shell as one quoted argv behind the
// watcher script, which receives it as "$@".
func TestRemoteArgv(t *testing.T) {
	got := RemoteArgv([]string{"echo", "a b"})
	if len(got) != 6 || got[0] != "sh" || got[1] != "-c" || got[3] != "sh" || got[4] != "echo" || got[5] != "a b" {
		t.Errorf("%q", got)
	}
	if strings.Contains(watch, "\n") {
		t.Error("the watcher script is one line, for --verbose")
	}
}

// The watcher script, run by the shells a host may have as sh: the
// command's words arrive as given, its stdin is empty, its exit status is
// the script's, and the end of the script's stdin ends the command.
func TestWatcher(t *testing.T) {
	for _, shell := range []string{"dash", "bash", "busybox"} {
		path, err := exec.LookPath(shell)
		if err != nil {
			continue
		}
		t.Run(shell, func(t *testing.T) {
			start := func(argv ...string) (*exec.Cmd, *os.File, *syncBuffer) {
				argv = RemoteArgv(argv)
				args := argv[1:]
				if shell == "busybox" {
					args = append([]string{"sh"}, args...)
				}
				cmd := exec.Command(path, args...)
				// sshd starts each session in its own process group.
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				out := &syncBuffer{}
				cmd.Stdin, cmd.Stdout, cmd.Stderr = r, out, out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				r.Close()
				return cmd, w, out
			}
			// A watcher that fails hangs: fail instead after a while.
			wait := func(cmd *exec.Cmd) error {
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case err := <-done:
					return err
				case <-time.After(30 * time.Second):
					t.Error("the script did not end")
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					return <-done
				}
			}
			cmd, w, out := start("sh", "-c", `printf '<%s>' "$@"; cat; exit 7`, "x", "a b", "$HOME", "'")
			err := wait(cmd)
			w.Close()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
				t.Errorf("exit: %v", err)
			}
			if out.String() != `<a b><$HOME><'>` {
				t.Errorf("output %q", out.String())
			}
			// Ended by the end of stdin, with its children.
			cmd, w, out = start("sh", "-c", `sleep 1000 & echo started; wait`)
			for !strings.Contains(out.String(), "started") {
				time.Sleep(10 * time.Millisecond)
			}
			w.Close()
			err = wait(cmd)
			if ee, ok := err.(*exec.ExitError); !ok || ee.Success() {
				t.Errorf("not stopped: %v %q", err, out.String())
			}
			// The group's processes got SIGTERM: they are gone soon.
			for deadline := time.Now().Add(30 * time.Second); syscall.Kill(-cmd.Process.Pid, 0) == nil; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					ps, _ := exec.Command("ps", "-o", "pid,stat,args", "-g", fmt.Sprint(cmd.Process.Pid)).CombinedOutput()
					t.Errorf("processes of the group left:\n%s", ps)
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					break
				}
			}
		})
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
