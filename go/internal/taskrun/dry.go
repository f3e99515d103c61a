package taskrun

import (
	"bytes"
	"io"
	"regexp"
	"sync"
)

// dryWriter gives the lines go-task prints for --dry ("task: [host:step]
// command") the prefix a real run's output carries ("[host:step] …"), so
// the two read alike. Other lines pass unchanged; colour sequences at the
// start of a line are kept.
type dryWriter struct {
	mu  sync.Mutex // go-task writes from each task's goroutine
	w   io.Writer
	buf []byte
}

var dryLine = regexp.MustCompile(`^((?:\x1b\[[0-9;]*m)*)task: \[`)

func (d *dryWriter) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buf = append(d.buf, p...)
	for {
		i := bytes.IndexByte(d.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := dryLine.ReplaceAll(d.buf[:i+1], []byte("${1}["))
		if _, err := d.w.Write(line); err != nil {
			return len(p), err
		}
		d.buf = d.buf[i+1:]
	}
}

// flush writes what is left of an unfinished line.
func (d *dryWriter) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.buf) > 0 {
		d.w.Write(dryLine.ReplaceAll(d.buf, []byte("${1}[")))
		d.buf = nil
	}
}
