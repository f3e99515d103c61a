// Package progress is the model and the renderer of lollypops' live view
// on a terminal: one line per host with its current step, the time since
// it started and its last output line.
//
// It is pure: the caller feeds it go-task's prefixed output lines
// ("[host1:rebuild] text") and the steps' records (internal/report), and
// asks for the lines to draw at a given time, width and height. The
// terminal itself (cursor movement, timing, signals) is the caller's.
package progress

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/report"
)

// State is where a host is in its run.
type State int

const (
	Waiting State = iota // nothing of the host has started
	Running              // a step runs, or the next one is about to
	OK                   // every planned step succeeded
	Failed               // a step failed
)

// MaxLines is how many output lines a host keeps for the replay of a
// failed host; older lines are counted, not kept.
const MaxLines = 20000

// Host is what the view knows of one host.
type Host struct {
	Name    string
	Planned []string // the steps the run is to run, in order
	State   State
	Step    string    // the current step, or the failed or last one
	Start   time.Time // when its first step started; zero while waiting
	End     time.Time // when its last step ended, once it is OK or failed
	Last    string    // the last non-empty output line, as plain text
	Error   string    // the failed step's error

	output  []string // raw prefixed lines, as go-task wrote them
	dropped int      // lines not kept (MaxLines)
	// outStep is the step whose output came last.
	outStep string
}

// Model is every host of a run.
type Model struct {
	hosts  []*Host // natural order
	byName map[string]*Host
	tasks  map[string]taskRef // go-task task name → host and step
}

type taskRef struct{ host, step string }

// New returns the model of a run that runs steps[host] on each host (the
// selection's plan.Graph.HostSteps).
func New(steps map[string][]string) *Model {
	m := &Model{byName: map[string]*Host{}, tasks: map[string]taskRef{}}
	names := make([]string, 0, len(steps))
	for h := range steps {
		names = append(names, h)
	}
	plan.SortNatural(names)
	for _, name := range names {
		h := &Host{Name: name, Planned: steps[name]}
		m.hosts = append(m.hosts, h)
		m.byName[name] = h
		for _, s := range steps[name] {
			m.tasks[plan.TaskName(name, s)] = taskRef{name, s}
		}
	}
	return m
}

// Plan sets the steps a host is to run, once they are known: a flake's
// host is shown evaluating until its plan exists.
func (m *Model) Plan(host string, steps []string) {
	h := m.byName[host]
	if h == nil {
		h = &Host{Name: host}
		m.byName[host] = h
		m.hosts = append(m.hosts, h)
		slices.SortFunc(m.hosts, func(a, b *Host) int { return plan.CompareNatural(a.Name, b.Name) })
	}
	h.Planned = steps
	for _, s := range steps {
		m.tasks[plan.TaskName(host, s)] = taskRef{host, s}
	}
}

// Hosts returns the hosts in natural order.
func (m *Model) Hosts() []*Host { return m.hosts }

// Host returns the named host, or nil.
func (m *Model) Host(name string) *Host { return m.byName[name] }

// ParseLine splits one line of go-task's prefixed output into its task
// name and text. go-task may colour the prefix; the text is returned as
// plain text. ok is false for a line without a "[task] " prefix.
func ParseLine(line string) (task, text string, ok bool) {
	plain := ansi.Strip(strings.TrimRight(line, "\r\n"))
	if !strings.HasPrefix(plain, "[") {
		return "", "", false
	}
	i := strings.Index(plain, "] ")
	if i < 0 {
		if strings.HasSuffix(plain, "]") { // an empty line of output
			return plain[1 : len(plain)-1], "", true
		}
		return "", "", false
	}
	return plain[1:i], plain[i+2:], true
}

// Feed takes one line of go-task's output at time now. It returns false
// for a line that belongs to no host's step: the caller shows it as is.
func (m *Model) Feed(line string, now time.Time) bool {
	task, text, ok := ParseLine(line)
	if !ok {
		return false
	}
	ref, ok := m.tasks[task]
	if !ok {
		return false
	}
	h := m.byName[ref.host]
	if len(h.output) >= MaxLines {
		h.output = h.output[1:]
		h.dropped++
	}
	h.output = append(h.output, strings.TrimRight(line, "\r\n"))
	if t := displayText(text); t != "" {
		h.Last = t
	}
	h.outStep = ref.step
	if h.Start.IsZero() {
		h.Start = now
	}
	if h.State == Waiting || h.State == Running {
		h.State, h.Step = Running, ref.step
	}
	return true
}

// displayText makes an output line fit one row: what a carriage return
// overwrote goes, tabs become spaces, control characters are dropped.
func displayText(s string) string {
	if i := strings.LastIndexByte(strings.TrimRight(s, "\r"), '\r'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.ReplaceAll(s, "\t", "    ")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// Apply updates the hosts from the steps' records (report.ReadAll), which
// say when a built-in step starts and how every step ends.
func (m *Model) Apply(records map[string]map[string]report.Record) {
	for _, h := range m.hosts {
		recs := records[h.Name]
		if len(recs) == 0 {
			continue
		}
		// The planned step names the record: a record's own Step field
		// is not needed.
		var running, failed string
		var runStart time.Time
		done := 0
		var lastDone string
		var end time.Time
		for _, s := range h.Planned {
			r, ok := recs[s]
			if !ok {
				continue
			}
			if !r.Start.IsZero() && (h.Start.IsZero() || r.Start.Before(h.Start)) {
				h.Start = r.Start
			}
			if r.End.After(end) {
				end = r.End
			}
			switch r.Status {
			case report.OK:
				done++
				lastDone = s
			case report.Failed:
				if failed == "" {
					failed, h.Error = s, r.Error
				}
			case report.Running:
				if running == "" || r.Start.After(runStart) {
					running, runStart = s, r.Start
				}
			default: // a state of a later version: the step is over
				done++
				lastDone = s
			}
		}
		if h.Start.IsZero() && !end.IsZero() {
			h.Start = end // an extra task records its end only
		}
		switch {
		case failed != "":
			h.State, h.Step, h.End = Failed, failed, end
		case done == len(h.Planned):
			h.State, h.Step, h.End = OK, lastDone, end
		case running != "":
			h.State, h.Step = Running, running
		case done > 0 || h.outStep != "":
			h.State = Running
			if h.outStep != "" {
				h.Step = h.outStep
			} else {
				h.Step = lastDone
			}
		}
	}
}

// Output returns the lines go-task printed for the host's steps, as it
// printed them, with a first line saying how many were not kept.
func (m *Model) Output(host string) []string {
	h := m.byName[host]
	if h == nil {
		return nil
	}
	if h.dropped == 0 {
		return h.output
	}
	note := "[" + host + "] … " + strconv.Itoa(h.dropped) + " earlier lines not kept"
	return append([]string{note}, h.output...)
}

// Failed returns the hosts that failed, in natural order.
func (m *Model) Failed() []string {
	var out []string
	for _, h := range m.hosts {
		if h.State == Failed {
			out = append(out, h.Name)
		}
	}
	return out
}
