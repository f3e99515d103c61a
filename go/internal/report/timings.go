package report

import (
	"fmt"
	"io"
	"time"
)

// RenderTimings writes the run's time breakdown (--timings): for each host,
// each step and the stages within it, when it began (seconds since start,
// the run's start) and how long it took. The stages of a step are
// indented under it; time a step spent outside its stages is its own.
func RenderTimings(w io.Writer, hosts []Host, start time.Time, prefix string) {
	type row struct{ host, name, start, dur string }
	rows := []row{{"host", "step / stage", "start", "duration"}}
	since := func(t time.Time) string { return fmt.Sprintf("%.2f", t.Sub(start).Seconds()) }
	secs := func(ms int64) string { return fmt.Sprintf("%.2f", float64(ms)/1000) }
	for _, h := range hosts {
		for _, s := range h.Steps {
			if s.Start == nil {
				continue
			}
			d := int64(0)
			if s.DurationMS != nil {
				d = *s.DurationMS
			}
			rows = append(rows, row{h.Name, s.Name, since(*s.Start), secs(d)})
			for _, st := range s.Stages {
				rows = append(rows, row{h.Name, "  " + st.Name, since(st.Start), secs(st.DurationMS)})
			}
		}
	}
	var wh, wn, ws, wd int
	for _, r := range rows {
		wh, wn, ws, wd = max(wh, len(r.host)), max(wn, len(r.name)), max(ws, len(r.start)), max(wd, len(r.dur))
	}
	fmt.Fprintf(w, "%stimings (seconds since the run started):\n", prefix)
	for _, r := range rows {
		fmt.Fprintf(w, "%s  %-*s  %-*s  %*s  %*s\n", prefix, wh, r.host, wn, r.name, ws, r.start, wd, r.dur)
	}
}
