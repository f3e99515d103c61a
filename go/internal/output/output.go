// Package output is where every line the runner shows the user goes
// through. Its rules:
//
//  1. lollypops' own messages are one line each, "lollypops: " and a
//     lowercase message, optionally followed by "lollypops: hint: ..." (Error);
//     a message and its hint are written together, in one write, so that no
//     other line comes between them;
//  2. text that came from outside — names from the flake, Nix's warnings and
//     errors, the hosts' output, the step binary's lines, go-task's output —
//     passes termtext before it is shown: control characters and escape
//     sequences arrive as visible escapes (only go-task's colours are kept,
//     Colour);
//  3. while the live view is on screen, it is registered (Register), and
//     every write goes above it, so that the view's count of the lines it
//     drew stays true;
//  4. the run's machine-readable output (--json, listings) goes to stdout
//     directly; everything in this package goes to stderr, apart from the
//     task output a caller hands it.
package output

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/termtext"
)

// Prefix starts each of lollypops' own lines.
const Prefix = "lollypops: "

// Above is a live view that keeps what is printed above itself.
type Above interface {
	// Above writes text, whole lines, to w above the view.
	Above(w io.Writer, text string)
}

// Sink is the user's terminal, or whatever stderr is.
type Sink struct {
	mu    sync.Mutex
	w     io.Writer
	above Above
}

// New returns a Sink that writes to w (stderr).
func New(w io.Writer) *Sink { return &Sink{w: w} }

// Register sends every later line above the view; nil unregisters it.
func (s *Sink) Register(a Above) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.above = a
}

func (s *Sink) emit(w io.Writer, text string) {
	s.mu.Lock()
	a := s.above
	s.mu.Unlock()
	if a != nil {
		a.Above(w, text)
		return
	}
	io.WriteString(w, text)
}

// Printf writes one of lollypops' messages.
func (s *Sink) Printf(format string, args ...any) {
	s.emit(s.w, line(fmt.Sprintf(format, args...)))
}

// Error writes err and its hint (fault.HintOf) together. An error already
// reported (fault.Reported) writes nothing.
func (s *Sink) Error(err error) {
	if err == nil || fault.Reported(err) {
		return
	}
	text := line(err.Error())
	if h := fault.HintOf(err); h != "" {
		text += line("hint: " + h)
	}
	s.emit(s.w, text)
}

// HostError writes a host's error and its hint together, each line naming
// the host.
func (s *Sink) HostError(host string, err error) {
	text := line(host + ": " + err.Error())
	if h := fault.HintOf(err); h != "" {
		text += line("hint: " + h)
	}
	s.emit(s.w, text)
}

// Lines writes text from outside (a report's lines, prefixed already by
// the caller's renderer), cleaned.
func (s *Sink) Lines(text string) { s.emit(s.w, termtext.Text(text)) }

// Foreign is a writer for text from outside lollypops (Nix's messages):
// cleaned, whole lines, above the view.
func (s *Sink) Foreign() io.Writer { return &foreign{s: s} }

type foreign struct {
	mu  sync.Mutex
	s   *Sink
	buf []byte
}

func (f *foreign) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, p...)
	last := -1
	for i, c := range f.buf {
		if c == '\n' {
			last = i
		}
	}
	if last >= 0 {
		f.s.emit(f.s.w, termtext.Text(string(f.buf[:last+1])))
		f.buf = f.buf[last+1:]
	}
	return len(p), nil
}

// Tasks wraps a stream of go-task's output (its own colours kept, the
// commands' text cleaned) on its way to w.
func Tasks(w io.Writer) *termtext.Writer { return termtext.NewColourWriter(w) }

func line(msg string) string { return termtext.Text(Prefix+msg) + "\n" }

// Lines is a writer that passes on whole lines only: each write to the
// writer beneath is one or more complete lines. lollypops runs a go-task
// executor per host, all writing to one stream, and go-task writes a
// prefixed line in pieces ("[", the prefix, "] ", the text): a line of one
// host must not take in the pieces of another's. Flush passes on an
// unfinished last line.
type Lines struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewLines returns a Lines writer to w.
func NewLines(w io.Writer) *Lines { return &Lines{w: w} }

func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	i := bytes.LastIndexByte(l.buf, '\n')
	if i < 0 {
		return len(p), nil
	}
	_, err := l.w.Write(l.buf[:i+1])
	l.buf = append(l.buf[:0:0], l.buf[i+1:]...)
	return len(p), err
}

// Flush writes what is left of an unfinished line.
func (l *Lines) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.w.Write(l.buf)
	l.buf = nil
	return err
}
