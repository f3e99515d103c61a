package lock

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/shelltest"
)

// The holder script, run here as the host would run it (this test's user
// is root or not: both choose their directory the same way as on a host).

type holder struct {
	cmd   *exec.Cmd
	stdin *os.File // the keeper's side; closing it ends the holder
	out   *bufio.Reader
	err   strings.Builder
}

func startHolder(t *testing.T, sh []string, root, ttl, run string) *holder {
	t.Helper()
	return startHolderMode(t, sh, root, ttl, "join", run)
}

func startHolderMode(t *testing.T, sh []string, root, ttl, mode, run string) *holder {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	h := &holder{stdin: w}
	argv := append(append([]string(nil), sh...), "-c", holderScript, "lollypops-lock", root, ttl, mode, run, "alice", "laptop", "1234")
	h.cmd = exec.Command(argv[0], argv[1:]...)
	h.cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(root))
	h.cmd.Stdin = r
	h.cmd.Stderr = &h.err
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.out = bufio.NewReader(out)
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() { w.Close(); h.cmd.Process.Kill(); h.cmd.Wait() })
	return h
}

// line returns the holder's answer, without its mark.
func (h *holder) line(t *testing.T) string {
	t.Helper()
	l, err := h.out.ReadString('\n')
	if err != nil && l == "" {
		h.cmd.Wait()
		t.Fatalf("no answer from the holder: %v; stderr: %s", err, h.err.String())
	}
	answer, ok := strings.CutPrefix(strings.TrimSuffix(l, "\n"), mark)
	if !ok {
		t.Fatalf("unmarked answer %q", l)
	}
	return answer
}

func (h *holder) rest(t *testing.T) []string {
	t.Helper()
	var lines []string
	for {
		l, err := h.out.ReadString('\n')
		if l != "" {
			lines = append(lines, strings.TrimSuffix(l, "\n"))
		}
		if err != nil {
			break
		}
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("holder: %v; stderr: %s", err, h.err.String())
	}
	return lines
}

func lockDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock (util-linux) is not installed")
	}
	base := t.TempDir()
	if os.Getuid() == 0 {
		return filepath.Join(base, "lollypops")
	}
	return filepath.Join(base, UserDirName) // $HOME is set to base
}

// eachShell runs f under the sh a host may have that can run the holder:
// bash (sh on NixOS), dash and busybox sh. (mksh closes the descriptors
// flock needs on exec; see holder.sh.)
func eachShell(t *testing.T, f func(t *testing.T, sh []string)) {
	shelltest.EachOf(t, []string{"bash", "dash", "busybox"}, f)
}

func TestHolderScript(t *testing.T) {
	eachShell(t, func(t *testing.T, shell []string) {
		{
			dir := lockDir(t)
			a := startHolder(t, shell, dir, "60", "laptop:/tmp/run-a")
			if got := a.line(t); got != "ok" {
				t.Fatalf("first holder: %q; stderr: %s", got, a.err.String())
			}
			if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("lock directory: %v %v", st.Mode(), err)
			}
			// Another step of the same run joins it.
			same := startHolder(t, shell, dir, "60", "laptop:/tmp/run-a")
			if got := same.line(t); got != "ours" {
				t.Errorf("same run: %q", got)
			}
			same.rest(t)
			// Another run is refused, with the record.
			b := startHolder(t, shell, dir, "60", "laptop:/tmp/run-b")
			if got := b.line(t); got != "held" {
				t.Fatalf("second run: %q", got)
			}
			rec := b.rest(t)
			if len(rec) != 7 || rec[0] != dir || rec[1] != "laptop:/tmp/run-a" || rec[2] != "alice" ||
				rec[3] != "laptop" || rec[4] != "1234" || !strings.HasSuffix(rec[5], " UTC") || rec[6] != fmt.Sprint(a.cmd.Process.Pid) {
				t.Errorf("record: %q", rec)
			}
			// The keeper's side ends: the holder leaves, and takes its record.
			a.stdin.Close()
			a.rest(t)
			if _, err := os.Stat(filepath.Join(dir, "holder")); !os.IsNotExist(err) {
				t.Errorf("record left after release: %v", err)
			}
			c := startHolder(t, shell, dir, "60", "laptop:/tmp/run-c")
			if got := c.line(t); got != "ok" {
				t.Errorf("after release: %q; stderr: %s", got, c.err.String())
			}
		}
	})
}

// A holder that hears nothing for its TTL gives the lock up, although its
// stdin never ends (a hung connection); heartbeats keep it.
func TestHolderTTL(t *testing.T) {
	dir := lockDir(t)
	a := startHolder(t, []string{"sh"}, dir, "2", "run-a")
	if got := a.line(t); got != "ok" {
		t.Fatalf("%q; stderr: %s", got, a.err.String())
	}
	stop := make(chan struct{})
	beats := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				beats <- n
				return
			case <-time.After(200 * time.Millisecond):
				if _, err := a.stdin.Write([]byte{'.'}); err == nil {
					n++
				}
			}
		}
	}()
	// While heartbeats come, another run is refused.
	for i := 0; i < 3; i++ {
		b := startHolder(t, []string{"sh"}, dir, "2", "run-b")
		if got := b.line(t); got != "held" {
			t.Fatalf("held lock taken: %q", got)
		}
		b.rest(t)
		time.Sleep(time.Second)
	}
	close(stop)
	<-beats
	// Silence: the holder leaves by itself, stdin still open.
	done := make(chan []string)
	go func() { done <- a.rest(t) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the holder kept the lock for a minute without heartbeats")
	}
	b := startHolder(t, []string{"sh"}, dir, "2", "run-b")
	if got := b.line(t); got != "ok" {
		t.Errorf("after the TTL: %q", got)
	}
}

// The directory must be the acting user's own: another user's, a symlink,
// or one others may write to is refused, naming it.
func TestHolderRefusesUnsafeDirectory(t *testing.T) {
	cases := map[string]func(dir string) error{
		"symlink": func(dir string) error {
			target := filepath.Join(filepath.Dir(dir), "elsewhere")
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			return os.Symlink(target, dir)
		},
		"writable": func(dir string) error {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			return os.Chmod(dir, 0o777)
		},
		"others": func(dir string) error {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			return os.Chown(dir, 4242, 4242)
		},
		"file": func(dir string) error { return os.WriteFile(dir, nil, 0o600) },
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			if name == "others" && os.Getuid() != 0 {
				t.Skip("chown needs root")
			}
			dir := lockDir(t)
			if err := setup(dir); err != nil {
				t.Fatal(err)
			}
			h := startHolder(t, []string{"sh"}, dir, "60", "run-a")
			l, _ := h.out.ReadString('\n')
			err := h.cmd.Wait()
			if l != "" || err == nil || !strings.Contains(h.err.String(), "lollypops: lock directory: "+dir) {
				t.Errorf("answer %q, %v, stderr %q", l, err, h.err.String())
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "elsewhere", "lock")); err == nil {
				t.Error("lock created through the symlink")
			}
		})
	}
}

// A run that reconnected takes the lock over from its earlier holder,
// which is going (its connection is gone) or lingers: it never answers
// "ours" on the strength of a record whose holder is leaving.
func TestHolderTakeOver(t *testing.T) {
	eachShell(t, func(t *testing.T, shell []string) {
		{
			dir := lockDir(t)
			a := startHolder(t, shell, dir, "60", "run-a")
			if got := a.line(t); got != "ok" {
				t.Fatalf("%q; stderr: %s", got, a.err.String())
			}
			// The old connection is gone: its holder leaves while the
			// new one takes over.
			go func() { time.Sleep(300 * time.Millisecond); a.stdin.Close() }()
			b := startHolderMode(t, shell, dir, "60", "take", "run-a")
			if got := b.line(t); got != "ok" {
				t.Fatalf("take over a leaving holder: %q; stderr: %s", got, b.err.String())
			}
			a.rest(t)
			// The new holder holds it: another run is refused, and its
			// record names the new holder.
			c := startHolder(t, shell, dir, "60", "run-c")
			if got := c.line(t); got != "held" {
				t.Fatalf("another run: %q", got)
			}
			if rec := c.rest(t); len(rec) < 7 || rec[6] != fmt.Sprint(b.cmd.Process.Pid) {
				t.Errorf("record %q, want holder pid %d", rec, b.cmd.Process.Pid)
			}
			// A holder that lingers (its connection hangs) is ended.
			d := startHolderMode(t, shell, dir, "60", "take", "run-a")
			if got := d.line(t); got != "ok" {
				t.Fatalf("take over a lingering holder: %q; stderr: %s", got, d.err.String())
			}
			b.stdin.Close() // its orphaned reader ends with it
			if err := b.cmd.Wait(); err == nil || !strings.Contains(err.Error(), "terminated") {
				t.Errorf("the lingering holder: %v", err)
			}
		}
	})
}

// An activation of another run that is not final, whose guard runs,
// keeps every other run off the host; the run's own does not.
func TestHolderRefusesDuringAnotherRunsActivation(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("activations are root's")
	}
	eachShell(t, func(t *testing.T, shell []string) {
		{
			dir := lockDir(t)
			bin := t.TempDir()
			os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\n[ \"$3\" = lollypops-activation-abc ]\n"), 0o755)
			act := filepath.Join(dir, "activation", "abc")
			os.MkdirAll(act, 0o700)
			os.WriteFile(filepath.Join(act, "status"), []byte("activated\n"), 0o600)
			os.WriteFile(filepath.Join(act, "run"), []byte("run-a\n"), 0o600)
			start := func(run string) *holder {
				h := startHolder(t, shell, dir, "60", run)
				return h
			}
			t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
			b := start("run-b")
			if got := b.line(t); got != "activation" {
				t.Fatalf("another run: %q; stderr: %s", got, b.err.String())
			}
			if rest := b.rest(t); len(rest) != 3 || rest[0] != "abc" || rest[1] != "activated" || rest[2] != "run-a" {
				t.Errorf("answer %q", rest)
			}
			a := start("run-a")
			if got := a.line(t); got != "ok" {
				t.Errorf("the activation's own run: %q", got)
			}
			a.stdin.Close()
			a.rest(t)
			// Final, or its guard gone: no longer in the way.
			os.WriteFile(filepath.Join(act, "status"), []byte("confirmed\n"), 0o600)
			c := start("run-c")
			if got := c.line(t); got != "ok" {
				t.Errorf("after the activation: %q", got)
			}
		}
	})
}
