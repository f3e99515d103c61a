package progress

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// Frame is what one drawing of the view depends on besides the model.
type Frame struct {
	Now time.Time
	// Width and Height are the terminal's size in cells; lines are cut to
	// Width-1 (a full last column makes some terminals wrap), and at most
	// Height-1 lines are drawn.
	Width, Height int
	Color         bool
	// Tick turns the spinner of the running hosts; Final draws a mark
	// that does not turn instead, for the frame that stays on screen.
	Tick  int
	Final bool
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// Marks of the states, and of a host still running in the final frame.
const (
	markWaiting = "·"
	markOK      = "✓"
	markFailed  = "✗"
	markStopped = "-"
)

var (
	styleOK      = ansi.NewStyle().ForegroundColor(ansi.Green)
	styleFailed  = ansi.NewStyle().ForegroundColor(ansi.Red)
	styleRunning = ansi.NewStyle().ForegroundColor(ansi.Cyan)
	styleFaint   = ansi.NewStyle().Faint()
)

// Render returns the lines of the view, without line ends: one line per
// host in natural order, or, when the hosts do not fit in the height,
// those that fit (failed and running ones first) and a line counting the
// others.
func (m *Model) Render(f Frame) []string {
	if f.Width < 2 || f.Height < 2 || len(m.hosts) == 0 {
		return nil
	}
	rows := f.Height - 1
	shown := m.hosts
	if len(m.hosts) > rows {
		shown = m.pick(rows - 1)
	}
	nameW, stepW := 0, 0
	for _, h := range shown {
		nameW = max(nameW, ansi.StringWidth(h.Name))
		for _, s := range h.Planned {
			stepW = max(stepW, ansi.StringWidth(s))
		}
	}
	nameW, stepW = min(nameW, 24), max(min(stepW, 20), len("waiting"))
	lines := make([]string, 0, rows)
	for _, h := range shown {
		lines = append(lines, ansi.Truncate(h.line(f, nameW, stepW), f.Width-1, "…"))
	}
	if len(shown) < len(m.hosts) {
		lines = append(lines, ansi.Truncate(m.more(shown, f), f.Width-1, "…"))
	}
	return lines
}

// pick returns n hosts, in natural order, preferring failed, then running,
// then waiting hosts over those that are done.
func (m *Model) pick(n int) []*Host {
	if n <= 0 {
		return nil
	}
	rank := map[State]int{Failed: 0, Running: 1, Waiting: 2, OK: 3}
	order := slices.Clone(m.hosts)
	slices.SortStableFunc(order, func(a, b *Host) int { return rank[a.State] - rank[b.State] })
	keep := map[*Host]bool{}
	for _, h := range order[:n] {
		keep[h] = true
	}
	var out []*Host
	for _, h := range m.hosts {
		if keep[h] {
			out = append(out, h)
		}
	}
	return out
}

// more counts the hosts not shown: "12 more: 3 running, 5 waiting, 4 done (1 failed)".
func (m *Model) more(shown []*Host, f Frame) string {
	in := map[*Host]bool{}
	for _, h := range shown {
		in[h] = true
	}
	count := map[State]int{}
	for _, h := range m.hosts {
		if !in[h] {
			count[h.State]++
		}
	}
	var parts []string
	if n := count[Running]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d running", n))
	}
	if n := count[Waiting]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d waiting", n))
	}
	if n := count[OK] + count[Failed]; n > 0 {
		done := fmt.Sprintf("%d done", n)
		if count[Failed] > 0 {
			done += fmt.Sprintf(" (%d failed)", count[Failed])
		}
		parts = append(parts, done)
	}
	s := fmt.Sprintf("  %d more: %s", len(m.hosts)-len(shown), strings.Join(parts, ", "))
	if f.Color {
		s = styleFaint.Styled(s)
	}
	return s
}

// line is one host's line: mark, name, step, elapsed time, last output.
func (h *Host) line(f Frame, nameW, stepW int) string {
	var mark, step, text string
	var style ansi.Style
	switch h.State {
	case Waiting:
		mark, step, style = markWaiting, "waiting", styleFaint
	case Running:
		mark, step, text, style = spinner[f.Tick%len(spinner)], h.Step, h.Last, styleRunning
		if f.Final {
			mark = markStopped
		}
	case OK:
		mark, step, text, style = markOK, "done", h.Last, styleOK
	case Failed:
		mark, step, style = markFailed, h.Step, styleFailed
		text = "failed"
		if h.Error != "" {
			text += ": " + h.Error
		}
	}
	elapsed := ""
	if !h.Start.IsZero() {
		end := f.Now
		if (h.State == OK || h.State == Failed) && !h.End.IsZero() {
			end = h.End
		}
		elapsed = Elapsed(end.Sub(h.Start))
	}
	cols := []string{
		mark,
		pad(h.Name, nameW),
		pad(step, stepW),
		fmt.Sprintf("%7s", elapsed),
		text,
	}
	if f.Color {
		cols[0] = style.Styled(cols[0])
		if h.State == Failed {
			cols[2] = style.Styled(cols[2])
			cols[4] = style.Styled(cols[4])
		} else if cols[4] != "" {
			cols[4] = styleFaint.Styled(cols[4])
		}
	}
	return strings.TrimRight(cols[0]+" "+strings.Join(cols[1:], "  "), " ")
}

// pad cuts or pads s to w cells.
func pad(s string, w int) string {
	s = ansi.Truncate(s, w, "…")
	return s + strings.Repeat(" ", max(0, w-ansi.StringWidth(s)))
}

// Elapsed formats a duration for the view: "0.4s", "12.3s", "2m05s",
// "1h02m".
func Elapsed(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Truncate(100*time.Millisecond).Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
