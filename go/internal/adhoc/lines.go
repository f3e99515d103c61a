package adhoc

import (
	"bytes"
	"io"
	"sync"

	"github.com/lollypops/lollypops/go/internal/termtext"
)

// Sink is a writer shared by concurrent writers: each Write reaches the
// underlying writer whole, never interleaved with another.
type Sink struct {
	mu sync.Mutex
	w  io.Writer
}

// NewSink returns a Sink writing to w.
func NewSink(w io.Writer) *Sink { return &Sink{w: w} }

func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// MaxLine is the longest line kept whole: a longer one is cut into lines of
// this length, so a command printing without newlines cannot fill memory.
const MaxLine = 64 << 10

// LineWriter writes complete lines to a Sink, each behind a prefix. A line
// is written once its newline arrives, in one Write with the other complete
// lines of the same call; Flush writes what is left as a line.
type LineWriter struct {
	mu     sync.Mutex
	sink   *Sink
	prefix []byte
	buf    []byte // the incomplete last line
}

// NewLineWriter returns a LineWriter that puts prefix in front of every line.
func NewLineWriter(sink *Sink, prefix string) *LineWriter {
	return &LineWriter{sink: sink, prefix: []byte(prefix)}
}

func (l *LineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	var out []byte
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.buf = append(l.buf, p...)
			for len(l.buf) >= MaxLine {
				out = l.line(out, l.buf[:MaxLine], true)
				l.buf = append(l.buf[:0], l.buf[MaxLine:]...)
			}
			break
		}
		if len(l.buf) > 0 {
			l.buf = append(l.buf, p[:i+1]...)
			out = l.line(out, l.buf, false)
			l.buf = l.buf[:0]
		} else {
			out = l.line(out, p[:i+1], false)
		}
		p = p[i+1:]
	}
	if len(out) == 0 {
		return n, nil
	}
	if _, err := l.sink.Write(out); err != nil {
		return 0, err
	}
	return n, nil
}

// Flush writes an incomplete last line, ended with a newline.
func (l *LineWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) == 0 {
		return nil
	}
	out := l.line(nil, l.buf, true)
	l.buf = l.buf[:0]
	_, err := l.sink.Write(out)
	return err
}

// line appends one line behind the prefix. What the host printed is
// cleaned for the terminal (package termtext): a cut line may end inside a
// UTF-8 sequence, which is then escaped.
func (l *LineWriter) line(out, line []byte, addNewline bool) []byte {
	out = append(out, l.prefix...)
	out = append(out, termtext.Text(string(line))...)
	if addNewline {
		out = append(out, '\n')
	}
	return out
}
