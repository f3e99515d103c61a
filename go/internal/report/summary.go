package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Detail is the summary's account of a host: its steps and their notes
// when it succeeded, else what failed and what did not run.
func (h *Host) Detail() string {
	if h.Text != "" {
		return h.Text
	}
	var done, failed, missing []string
	for _, s := range h.Steps {
		switch s.Status {
		case StepOK:
			label := s.Name
			if s.Note != "" {
				label += " (" + s.Note + ")"
			}
			done = append(done, label)
		case StepFailed:
			failed = append(failed, s.Name+": "+s.Error)
		case StepInterrupted:
			failed = append(failed, s.Name+": interrupted")
		default:
			missing = append(missing, s.Name)
		}
	}
	switch h.Status {
	case HostFailed:
		d := strings.Join(failed, "; ")
		if len(missing) > 0 {
			d += "; not run: " + strings.Join(missing, ", ")
		}
		return d
	case HostOK:
		return strings.Join(done, ", ")
	case HostIncomplete:
		return "done: " + strings.Join(done, ", ") + "; not run: " + strings.Join(missing, ", ")
	}
	return ""
}

// Render writes the summary as an aligned table.
func Render(w io.Writer, hosts []Host, prefix string) {
	ok := 0
	for _, h := range hosts {
		if h.Status == HostOK {
			ok++
		}
	}
	fmt.Fprintf(w, "%ssummary: %d of %d hosts ok\n", prefix, ok, len(hosts))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, h := range hosts {
		d := "-"
		if h.Duration > 0 {
			d = h.Duration.Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s  %s\t%s\t%s\t%s\n", prefix, h.Name, h.Status, d, h.Detail())
	}
	tw.Flush()
}
