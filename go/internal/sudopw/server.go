package sudopw

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lollypops/lollypops/go/internal/peercred"
	"github.com/lollypops/lollypops/go/internal/ssh"
	"github.com/lollypops/lollypops/go/internal/termtext"
)

// Server holds the run's sudo password and the hosts' root sessions, and
// answers the steps on the run's socket (to processes of its own user
// only: SO_PEERCRED).
type Server struct {
	ln     net.Listener
	pw     []byte
	target func(host string) (*ssh.Client, error)

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
}

// StartTimeout bounds how long sudo may take to ask for the password or to
// start the root session.
var StartTimeout = 2 * time.Minute

// Serve starts serving on the socket in runDir. target gives a host's
// ssh client (its shared connection, which the run's steps open).
func Serve(runDir string, pw []byte, target func(host string) (*ssh.Client, error)) (*Server, error) {
	path := Socket(runDir)
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, pw: pw, target: target, sessions: map[string]*session{}}
	go s.loop()
	return s, nil
}

func (s *Server) loop() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.serve(conn)
	}
}

func (s *Server) serve(conn net.Conn) {
	defer conn.Close()
	if !sameUser(conn) {
		return
	}
	var req request
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&req); err != nil {
		return
	}
	var rep reply
	if err := s.handle(req); err != nil {
		rep.Error = err.Error()
	}
	json.NewEncoder(conn).Encode(rep)
}

func (s *Server) handle(req request) error {
	ss, err := s.session(req.Host)
	if err != nil {
		return err
	}
	switch req.Op {
	case "root":
		return ss.open(s.pw)
	case "exec":
		if len(req.Argv) == 0 || req.P <= 0 {
			return errors.New("a request without a command or its process")
		}
		if err := ss.open(s.pw); err != nil {
			return err
		}
		return ss.run(req.P, req.Argv)
	}
	return fmt.Errorf("unknown request %q", req.Op)
}

// session returns the host's root session, made (not opened) on first use.
func (s *Server) session(host string) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("the run is ending")
	}
	if ss := s.sessions[host]; ss != nil {
		return ss, nil
	}
	c, err := s.target(host)
	if err != nil {
		return nil, err
	}
	ss := &session{host: host, client: c}
	s.sessions[host] = ss
	return ss, nil
}

// Close stops serving, ends the root sessions and forgets the password.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	sessions := s.sessions
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.close()
	}
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

// session is one host's root session (relay.sh under sudo).
type session struct {
	host   string
	client *ssh.Client

	mu      sync.Mutex // one request at a time; guards the fields below
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  *bufio.Reader
	dead    chan struct{} // closed when the session's ssh ended
	refused error         // sticky: the password was refused, never tried again
}

// open starts the root session unless it runs: sudo authenticates, with
// the password when it asks for it.
func (ss *session) open(pw []byte) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.refused != nil {
		return ss.refused
	}
	if ss.cmd != nil {
		select {
		case <-ss.dead:
			ss.cmd = nil // the connection ended (a reboot): a new one authenticates anew
		default:
			return nil
		}
	}
	return ss.start(pw)
}

// promptMark starts the prompt lollypops gives sudo; the run's nonce and
// the user whose password sudo wants (sudo's %p) follow.
const promptMark = "[lollypops-sudo "

func (ss *session) start(pw []byte) error {
	sudo := &ss.client.Host.Deployment.Sudo
	nonce := randomHex()
	prompt := promptMark + nonce + " %p]"
	words := append([]string{"exec", sudo.Command, "-S", "-p", prompt}, sudo.Opts...)
	words = append(words, "sh", "-c", relayScript, "lollypops-root", nonce)
	line, err := ssh.Command(nil, words...)
	if err != nil {
		return err
	}
	argv := ss.client.RemoteArgs(line)
	cmd := exec.Command(argv[0], argv[1:]...)
	// Not the terminal's: the run ends the session itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("the root session on %s: %s: %w", ss.host, argv[0], err)
	}
	dead := make(chan struct{})
	w := &promptWatch{mark: promptMark + nonce + " ", pw: pw, stdin: stdin, log: ss.client.Prefix + ".root.log"}
	errDone := make(chan struct{})
	go func() { w.watch(stderr); close(errDone) }()
	ready := make(chan error, 1)
	out := bufio.NewReader(stdout)
	go func() {
		want := "lollypops-root ready " + nonce
		for {
			l, err := out.ReadString('\n')
			if strings.TrimSuffix(l, "\n") == want && err == nil {
				ready <- nil
				return
			}
			if err != nil {
				ready <- err
				return
			}
		}
	}()
	go func() {
		<-errDone
		cmd.Wait()
		close(dead)
	}()
	timer := time.NewTimer(StartTimeout)
	defer timer.Stop()
	var readyErr error
	select {
	case readyErr = <-ready:
	case <-timer.C:
		readyErr = fmt.Errorf("sudo did not answer within %s", StartTimeout)
	}
	if readyErr == nil {
		ss.cmd, ss.stdin, ss.stdout, ss.dead = cmd, stdin, out, dead
		return nil
	}
	stdin.Close()
	cmd.Process.Kill()
	<-dead
	prompts, user, said := w.result()
	if said == "" {
		said = readyErr.Error()
	}
	if prompts > 0 {
		// The password was tried: never again in this run, whatever
		// failed. sudo refused it when it asked again, or ended without
		// starting the root session (which says why when it fails).
		ss.refused = fmt.Errorf("the root session on %s: %s", ss.host, said)
		if prompts > 1 || !strings.Contains(said, "lollypops:") {
			who := ""
			if user != "" {
				who = " (user " + termtext.Line(user) + ")"
			}
			ss.refused = errors.New(Refused + who)
		}
		return ss.refused
	}
	return fmt.Errorf("the root session on %s: %s", ss.host, said)
}

// run hands one command to the root session.
func (ss *session) run(p int, argv []string) error {
	line, err := encodeCommand(argv)
	if err != nil {
		return err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.cmd == nil {
		return fmt.Errorf("the root session on %s is not open", ss.host)
	}
	if _, err := fmt.Fprintf(ss.stdin, "run %d\n%s\n", p, line); err != nil {
		return fmt.Errorf("the root session on %s ended", ss.host)
	}
	answer, err := ss.stdout.ReadString('\n')
	if err != nil {
		return fmt.Errorf("the root session on %s ended", ss.host)
	}
	answer = strings.TrimSuffix(answer, "\n")
	if answer == "ok" {
		return nil
	}
	return fmt.Errorf("the root session on %s: %s", ss.host, termtext.Line(strings.TrimPrefix(answer, "err ")))
}

func (ss *session) close() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.cmd == nil {
		return
	}
	ss.stdin.Close()
	select {
	case <-ss.dead:
	case <-time.After(5 * time.Second):
		ss.cmd.Process.Kill()
		<-ss.dead
	}
	ss.cmd = nil
}

// promptWatch reads sudo's standard error while the root session starts:
// at sudo's first prompt it writes the password, at a second one (sudo
// refused it) it closes sudo's input, so that sudo gives up without
// another try. What else is said is kept for errors, and logged.
type promptWatch struct {
	mark  string
	pw    []byte
	stdin io.WriteCloser
	log   string

	mu      sync.Mutex
	prompts int
	user    string
	said    bytes.Buffer
}

func (w *promptWatch) watch(r io.Reader) {
	log, _ := os.OpenFile(w.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if log != nil {
		defer log.Close()
	}
	mark := []byte(w.mark)
	var pending []byte
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		pending = append(pending, buf[:n]...)
		partial := false
		for {
			i := bytes.Index(pending, mark)
			if i < 0 {
				break
			}
			end := bytes.IndexByte(pending[i+len(mark):], ']')
			if end < 0 && len(pending)-i < 4096 {
				// The rest of the prompt is still to come.
				w.keep(pending[:i], log)
				pending = append(pending[:0], pending[i:]...)
				partial = true
				break
			}
			if end < 0 {
				end = 0
			}
			w.keep(pending[:i], log)
			w.prompt(string(pending[i+len(mark) : i+len(mark)+end]))
			pending = append(pending[:0], pending[i+len(mark)+end+1:]...)
		}
		// What cannot be the start of a prompt is text.
		if cut := len(pending) - (len(mark) - 1); !partial && cut > 0 {
			w.keep(pending[:cut], log)
			pending = append(pending[:0], pending[cut:]...)
		}
		if err != nil {
			w.keep(pending, log)
			return
		}
	}
}

func (w *promptWatch) prompt(user string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prompts++
	w.user = user
	if w.prompts == 1 {
		line := append(append(make([]byte, 0, len(w.pw)+1), w.pw...), '\n')
		w.stdin.Write(line)
		clear(line)
		return
	}
	// Sudo asks again: it did not take the password. With no more input
	// it gives up, having counted one failed attempt.
	w.stdin.Close()
}

func (w *promptWatch) keep(b []byte, log *os.File) {
	if len(b) == 0 {
		return
	}
	if log != nil {
		log.Write(b)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.said.Len() < 16<<10 {
		w.said.Write(b)
	}
}

// result says how often sudo asked (the password was sent at the first
// time), the user it asked for, and what it said otherwise (cleaned, one
// line).
func (w *promptWatch) result() (prompts int, user, said string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(w.said.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "Warning: Permanently added") {
			lines = append(lines, termtext.Line(l))
		}
	}
	return w.prompts, w.user, strings.Join(lines, "; ")
}
