package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/x/ansi"
	"golang.org/x/term"

	"github.com/lollypops/lollypops/go/internal/output"
	"github.com/lollypops/lollypops/go/internal/progress"
	"github.com/lollypops/lollypops/go/internal/report"
	"github.com/lollypops/lollypops/go/internal/taskrun"
)

// How often the live view is drawn, and how often, at least, it reads the
// steps' records: every recordTicks ticks, one more tick per hostsPerTick
// hosts, as every read reads every record of the run.
const (
	viewTick     = 100 * time.Millisecond
	recordTicks  = 3
	hostsPerTick = 100
)

// wantView reports whether a real run shows the live view: stdout is a
// terminal that can move its cursor, and the user asked neither for every
// command (--verbose), nor for an output style (-o, TASK_OUTPUT), nor for
// prompts (--interactive). Otherwise go-task's prefixed lines are printed
// as they come.
func wantView(f *taskrun.Flags, stdout io.Writer) bool {
	file, ok := stdout.(*os.File)
	if !ok || !term.IsTerminal(int(file.Fd())) {
		return false
	}
	t := os.Getenv("TERM")
	return t != "" && t != "dumb" && !f.Verbose && f.Output == "" && !f.Interactive
}

// view draws the live progress of a run on a terminal (internal/progress)
// and keeps everything else that is printed meanwhile above it.
type view struct {
	mu      sync.Mutex
	tty     io.Writer
	size    func() (width, height int)
	model   *progress.Model
	results string // the run's records (report.ReadAll)
	color   bool
	drawn   int // lines of the view now on screen
	tick    int
	// recordEvery is how many ticks apart the records are read.
	recordEvery int
	active      bool
	stdout      *lineWriter // go-task's output
	stderr      *lineWriter
	flush       []*lineWriter
	out         *output.Sink // registered with, until stop
	done        chan struct{}
	stopped     chan struct{}
	stopOnce    sync.Once
}

// startView starts the view of a run of hosts. go-task's output goes to
// its stdout and stderr writers; it registers with out, so lollypops' own
// messages and Nix's are printed above it while it is on screen.
func startView(out *output.Sink, tty *os.File, color bool, stderr io.Writer, results string, hosts map[string][]string) *view {
	v := newView(tty, func() (int, int) {
		w, h, err := term.GetSize(int(tty.Fd()))
		if err != nil || w <= 0 || h <= 0 {
			return 80, 24
		}
		return w, h
	}, hosts, results, color && os.Getenv("NO_COLOR") == "")
	errLines := &lineWriter{line: func(l string) { v.Above(stderr, l+"\n") }}
	v.stderr = errLines
	v.flush = append(v.flush, errLines)
	v.out = out
	out.Register(v)
	v.start()
	return v
}

// plan sets a host's steps once they are known (progress.Model.Plan).
func (v *view) plan(host string, steps []string) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.model.Plan(host, steps)
}

// newView returns a view that draws on tty, of the size size returns.
// Colour is the caller's decision: NO_COLOR and --color=false turn it off.
func newView(tty io.Writer, size func() (int, int), hosts map[string][]string, results string, color bool) *view {
	v := &view{
		tty:         tty,
		size:        size,
		model:       progress.New(hosts),
		results:     results,
		recordEvery: recordTicks + len(hosts)/hostsPerTick,
		color:       color,
		active:      true,
		done:        make(chan struct{}),
		stopped:     make(chan struct{}),
	}
	v.stdout = &lineWriter{line: v.taskLine}
	v.flush = []*lineWriter{v.stdout}
	return v
}

// start hides the cursor, draws the view and keeps redrawing it.
func (v *view) start() {
	io.WriteString(v.tty, ansi.HideCursor)
	v.mu.Lock()
	v.draw()
	v.mu.Unlock()
	go v.loop()
}

// loop redraws the view a few times a second, reading the records every
// few ticks, until stop.
func (v *view) loop() {
	defer close(v.stopped)
	t := time.NewTicker(viewTick)
	defer t.Stop()
	for {
		select {
		case <-v.done:
			return
		case <-t.C:
		}
		v.mu.Lock()
		v.tick++
		if v.tick%v.recordEvery == 0 {
			v.readRecords()
		}
		v.draw()
		v.mu.Unlock()
	}
}

// stop draws the final view, leaves it on screen, and prints the whole
// output of each failed host, as go-task printed it, below. Afterwards
// everything is printed as it comes.
func (v *view) stop() {
	if v == nil {
		return
	}
	v.stopOnce.Do(v.finish)
}

func (v *view) finish() {
	close(v.done)
	<-v.stopped
	for _, w := range v.flush {
		w.Flush()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.readRecords()
	v.drawFrame(true)
	v.active = false
	v.drawn = 0
	var b bytes.Buffer
	b.WriteString(ansi.ShowCursor)
	for _, h := range v.model.Failed() {
		for _, l := range v.model.Output(h) {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	v.tty.Write(b.Bytes())
	if v.out != nil {
		v.out.Register(nil)
	}
}

func (v *view) readRecords() {
	// A record being replaced is renamed into place: a read sees the old
	// one or the new one. Should a read fail, the next one will do.
	if recs, err := report.ReadAll(v.results); err == nil {
		v.model.Apply(recs)
	}
}

// taskLine takes one line of go-task's output.
func (v *view) taskLine(l string) {
	v.mu.Lock()
	known := v.active && v.model.Feed(l, time.Now())
	v.mu.Unlock()
	if !known {
		v.Above(v.tty, l+"\n")
	}
}

// Above prints text to w, above the view when it is on screen
// (output.Above).
func (v *view) Above(w io.Writer, text string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.active {
		io.WriteString(w, text)
		return
	}
	v.erase()
	io.WriteString(w, text)
	v.draw()
}

// erase removes the view from the screen; the cursor is left where its
// first line was.
func (v *view) erase() {
	if v.drawn > 0 {
		io.WriteString(v.tty, "\r"+ansi.CursorUp(v.drawn)+ansi.EraseScreenBelow)
		v.drawn = 0
	}
}

func (v *view) draw() { v.drawFrame(false) }

// drawFrame draws the view over the one on screen, in one write.
func (v *view) drawFrame(final bool) {
	w, h := v.size()
	lines := v.model.Render(progress.Frame{Now: time.Now(), Width: w, Height: h,
		Color: v.color, Tick: v.tick, Final: final})
	var b strings.Builder
	if v.drawn > 0 {
		b.WriteString("\r" + ansi.CursorUp(v.drawn))
	}
	for _, l := range lines {
		b.WriteString(ansi.EraseEntireLine + l + "\n")
	}
	b.WriteString(ansi.EraseScreenBelow)
	io.WriteString(v.tty, b.String())
	v.drawn = len(lines)
}

// lineWriter hands each complete line written to it, without its "\n",
// to line; Flush hands over what is left.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.line(l)
	}
}

// Flush hands over a last line that has no "\n".
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		l := string(w.buf)
		w.buf = nil
		w.line(l)
	}
}
