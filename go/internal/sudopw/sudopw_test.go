package sudopw

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/shelltest"
	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

func eachShell(t *testing.T, f func(t *testing.T, sh []string)) { shelltest.Each(t, f) }

// The scripts are POSIX sh, clean under shellcheck, and hold no backslash
// (fish's single quotes, in which a login shell may get them, change some).
func TestScripts(t *testing.T) {
	for name, s := range map[string]string{"relay.sh": relayFile, "waiter.sh": waiterFile} {
		if strings.Contains(s, `\`) {
			t.Errorf("%s has a backslash", name)
		}
		if strings.Contains("\n"+stripComments(s), "\n#") {
			t.Errorf("%s: a comment is left in what is sent", name)
		}
	}
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed (apt-get install shellcheck)")
	}
	if out, err := exec.Command(sc, "-s", "sh", "relay.sh", "waiter.sh").CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// relayProc is the root session script, run here without sudo: the test's
// own uid stands for SUDO_UID, which /proc lets it act as.
type relayProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	errch bytes.Buffer
}

func startRelay(t *testing.T, sh []string) *relayProc {
	t.Helper()
	r := &relayProc{cmd: exec.Command(sh[0], append(sh[1:], "-c", relayScript, "lollypops-root", "n0nce")...)}
	r.cmd.Env = append(os.Environ(), "SUDO_UID="+strconv.Itoa(os.Getuid()))
	r.cmd.Stderr = &r.errch
	r.in, _ = r.cmd.StdinPipe()
	out, _ := r.cmd.StdoutPipe()
	r.out = bufio.NewReader(out)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.in.Close(); r.cmd.Wait() })
	if l, _ := r.out.ReadString('\n'); l != "lollypops-root ready n0nce\n" {
		t.Fatalf("ready line %q; stderr %s", l, r.errch.String())
	}
	return r
}

func (r *relayProc) request(t *testing.T, head string, argv []string) string {
	t.Helper()
	line, err := encodeCommand(argv)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(r.in, "%s\n%s\n", head, line)
	answer, err := r.out.ReadString('\n')
	if err != nil {
		t.Fatalf("no answer: %v; stderr %s", err, r.errch.String())
	}
	return strings.TrimSuffix(answer, "\n")
}

// waiterProc is waiter.sh as an ssh session runs it: its stdio are the
// command's.
type waiterProc struct {
	cmd      *exec.Cmd
	out, err bytes.Buffer
	errDone  chan struct{}
	p        int
}

func startWaiter(t *testing.T, sh []string, stdin string) *waiterProc {
	t.Helper()
	w := &waiterProc{cmd: exec.Command(sh[0], append(sh[1:], "-c", waiterScript, "lollypops-root", "wn")...)}
	w.cmd.Stdin = strings.NewReader(stdin)
	w.cmd.Stdout = &w.out
	pr, err := w.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(pr)
	l, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscanf(l, waiterMark+"wn %d\n", &w.p); err != nil || w.p != w.cmd.Process.Pid {
		t.Fatalf("waiter line %q (pid %d): %v", l, w.cmd.Process.Pid, err)
	}
	w.errDone = make(chan struct{})
	go func() { io.Copy(&w.err, br); close(w.errDone) }()
	return w
}

func (w *waiterProc) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { <-w.errDone; done <- w.cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		w.cmd.Process.Kill()
		t.Fatal("the waiter did not end")
	}
	return -1
}

// The root session runs each command exactly as given (every word, byte
// for byte, nothing expanded), with the waiter's standard input, output
// and error, and the waiter exits with its code; several at once.
func TestRootSession(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		r := startRelay(t, sh)
		canary := filepath.Join(t.TempDir(), "canary")
		hostile := []string{
			"it's", `"q"`, "$(touch " + canary + ")", "`touch " + canary + "`", "a\nb", "\n", "-n", "--",
			"", " ", "\\", "\\'", "'\\''", "$nl", "\"$nl\"", "\xff\xfe", "\x1b[2J", "*", "~", "{a,b}", "a\tb\r",
		}
		argv := append([]string{"sh", "-c", `cat; for a do printf '[%s]' "$a"; done; echo err >&2; exit 7`, "sh"}, hostile...)
		var ws []*waiterProc
		for i := range 3 {
			w := startWaiter(t, sh, fmt.Sprintf("input %d\n", i))
			if a := r.request(t, fmt.Sprintf("run %d", w.p), argv); a != "ok" {
				t.Fatalf("answer %q", a)
			}
			ws = append(ws, w)
		}
		var want strings.Builder
		for _, a := range hostile {
			fmt.Fprintf(&want, "[%s]", a)
		}
		for i, w := range ws {
			if code := w.wait(t); code != 7 {
				t.Errorf("exit %d, want 7; stderr %q", code, w.err.String())
			}
			if got := w.out.String(); got != fmt.Sprintf("input %d\n", i)+want.String() {
				t.Errorf("stdout %q", got)
			}
			if got := w.err.String(); got != "err\n" {
				t.Errorf("stderr %q", got)
			}
		}
		if _, err := os.Stat(canary); err == nil {
			t.Error("a word ran as a command")
		}
	})
}

// It refuses a request for a process that is not a waiter of the user's
// (another user's, descriptors that are not pipes), and a malformed one.
func TestRootSessionRefuses(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		r := startRelay(t, sh)
		w := startWaiter(t, sh, "")
		defer w.cmd.Process.Kill()
		for head, want := range map[string]string{
			"run " + strconv.Itoa(os.Getpid()): "not all pipes", // the test: a terminal or files
			"run x":                            "bad process id",
			"run 1 2":                          "bad request",
			"rm -rf /":                         "bad request",
			"run 999999999":                    "is gone",
		} {
			if got := r.request(t, head, []string{"true"}); !strings.HasPrefix(got, "err ") || !strings.Contains(got, want) {
				t.Errorf("%q: %q, want err ... %s", head, got, want)
			}
		}
		other := exec.Command("sleep", "60")
		other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if os.Getuid() == 0 && other.Start() == nil {
			defer other.Process.Kill()
			if got := r.request(t, "run "+strconv.Itoa(other.Process.Pid), []string{"true"}); !strings.Contains(got, "is not uid") {
				t.Errorf("another user's process: %q", got)
			}
		}
		// The waiter is still there, and still works.
		if a := r.request(t, fmt.Sprintf("run %d", w.p), []string{"sh", "-c", "exit 4"}); a != "ok" || w.wait(t) != 4 {
			t.Errorf("after the refusals: %q", a)
		}
	})
}

// fakeHost is a "host" on this machine: an ssh that runs its command line
// with sh, and a sudo that asks for a password (or not), logs what it
// does, and copies what the root session reads to a file.
type fakeHost struct {
	dir, log, stdin string
	client          *ssh.Client
}

func newFakeHost(t *testing.T, mode, password string) *fakeHost {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	dir := t.TempDir()
	h := &fakeHost{dir: dir, log: dir + "/sudo.log", stdin: dir + "/stdin.log"}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	os.WriteFile(dir+"/password", []byte(password+"\n"), 0o600)
	fakeSSH := write("ssh", "#!/bin/sh\nfor last do :; done\nexec sh -c \"$last\"\n")
	fakeSudo := write("sudo", `#!/bin/bash
log=`+h.log+`
echo invoked >>"$log"
[ "$1" = -S ] && [ "$2" = -p ] || { echo "fake sudo: $*" >&2; exit 2; }
prompt=${3//%p/deploy}
shift 3
if [ "`+mode+`" = password ]; then
	for try in 1 2 3; do
		printf 'a lecture\n%s' "$prompt" >&2
		IFS= read -r got || { echo "sudo: no password was provided" >&2; exit 1; }
		[ "$got" = "$(cat `+dir+`/password)" ] && { echo authenticated >>"$log"; break; }
		echo attempt >>"$log"
		echo "Sorry, try again." >&2
		[ "$try" = 3 ] && exit 1
	done
fi
SUDO_UID=$(id -u) exec "$@" < <(exec tee -a `+h.stdin+`)
`)
	h.client = &ssh.Client{Prefix: dir + "/h1", Host: &config.Host{Name: "h1", Deployment: config.Deployment{
		SSH:  config.SSH{Host: "h1", Command: fakeSSH, Opts: []string{}},
		Sudo: config.Sudo{Enable: true, Command: fakeSudo, Opts: []string{}},
	}}}
	return h
}

func (h *fakeHost) count(t *testing.T, what string) int {
	t.Helper()
	b, _ := os.ReadFile(h.log)
	return strings.Count(string(b), what+"\n")
}

func serve(t *testing.T, h *fakeHost, pw string) string {
	t.Helper()
	run := t.TempDir()
	srv, err := Serve(run, []byte(pw), func(host string) (*ssh.Client, error) {
		if host != "h1" {
			return nil, fmt.Errorf("no host %q", host)
		}
		return h.client, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if fi, err := os.Stat(Socket(run)); err != nil || fi.Mode().Perm() != 0o600 || !Available(run) {
		t.Fatalf("socket: %v %v", fi.Mode(), err)
	}
	return run
}

func execOn(t *testing.T, run string, h *fakeHost, input string, argv ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Exec(run, h.client, argv, strings.NewReader(input), &out, &errOut)
	return code, out.String(), errOut.String()
}

// A sudo that asks gets the password once, at its prompt, and every
// command of the run goes through that one authentication. The password
// is on no command's input.
func TestPasswordOnlyWhenAskedAndOnce(t *testing.T) {
	const pw = "pa ss'w\"rd"
	h := newFakeHost(t, "password", pw)
	run := serve(t, h, pw)
	for i := range 4 {
		code, out, errOut := execOn(t, run, h, fmt.Sprintf("in%d\n", i), "sh", "-c", "cat; id -u; exit 3")
		if code != 3 || out != fmt.Sprintf("in%d\n%d\n", i, os.Getuid()) {
			t.Errorf("exit %d: %q %q", code, out, errOut)
		}
	}
	if n := h.count(t, "invoked"); n != 1 {
		t.Errorf("sudo ran %d times, want once for the connection", n)
	}
	if n := h.count(t, "authenticated"); n != 1 {
		t.Errorf("%d authentications, want 1", n)
	}
	if b, _ := os.ReadFile(h.stdin); bytes.Contains(b, []byte(pw)) || bytes.Contains(b, []byte("pa ss")) {
		t.Errorf("the password reached the root session's input: %q", b)
	}
}

// A sudo that does not ask (NOPASSWD) never receives the password.
func TestPasswordNotSentWhenNotAsked(t *testing.T) {
	const pw = "never-sent-4711"
	h := newFakeHost(t, "nopasswd", "")
	run := serve(t, h, pw)
	for range 2 {
		if code, out, errOut := execOn(t, run, h, "", "echo", "hi"); code != 0 || out != "hi\n" {
			t.Errorf("exit %d: %q %q", code, out, errOut)
		}
	}
	if b, _ := os.ReadFile(h.stdin); bytes.Contains(b, []byte(pw)) {
		t.Errorf("the password went to a sudo that never asked: %q", b)
	}
	if n := h.count(t, "invoked"); n != 1 {
		t.Errorf("sudo ran %d times", n)
	}
}

// A wrong password is tried once: at sudo's second prompt the session
// ends, sudo counts one failed attempt, and later commands fail at once,
// without asking sudo again.
func TestWrongPasswordTriedOnce(t *testing.T) {
	h := newFakeHost(t, "password", "right")
	run := serve(t, h, "wrong")
	for range 3 {
		code, out, errOut := execOn(t, run, h, "", "touch", h.dir+"/ran")
		if code == 0 || out != "" || !strings.Contains(errOut, "lollypops: sudo refused the password (user deploy)\n") {
			t.Errorf("exit %d: %q %q", code, out, errOut)
		}
		if Hint(errOut) == "" {
			t.Errorf("no hint for %q", errOut)
		}
	}
	if n := h.count(t, "attempt"); n != 1 {
		t.Errorf("%d failed attempts, want 1", n)
	}
	if n := h.count(t, "invoked"); n != 1 {
		t.Errorf("sudo ran %d times, want 1", n)
	}
	if _, err := os.Stat(h.dir + "/ran"); err == nil {
		t.Error("the command ran")
	}
}

func TestEncodeCommand(t *testing.T) {
	got, err := encodeCommand([]string{"a b", "it's", "x\ny", ""})
	if want := `'a b' 'it'\''s' 'x'"$nl"'y' ''`; err != nil || got != want {
		t.Errorf("%q %v, want %q", got, err, want)
	}
	if _, err := encodeCommand([]string{"a\x00b"}); err == nil {
		t.Error("NUL accepted")
	}
}
