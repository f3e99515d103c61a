package progress

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/lollypops/lollypops/go/internal/report"
)

var t0 = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

func TestParseLine(t *testing.T) {
	for _, c := range []struct {
		line, task, text string
		ok               bool
	}{
		{"[host1:rebuild] building the system\n", "host1:rebuild", "building the system", true},
		// go-task colours the prefix on a terminal.
		{"[\x1b[33mhost1:rebuild\x1b[0m] activating", "host1:rebuild", "activating", true},
		{"[host1:rebuild] [nested] brackets", "host1:rebuild", "[nested] brackets", true},
		{"[host1:rebuild] \x1b[1mbold\x1b[0m text", "host1:rebuild", "bold text", true},
		{"[host1:rebuild]", "host1:rebuild", "", true},
		{"task: \"host1:rebuild\" failed", "", "", false},
		{"", "", "", false},
		{"[unterminated", "", "", false},
	} {
		task, text, ok := ParseLine(c.line)
		if task != c.task || text != c.text || ok != c.ok {
			t.Errorf("ParseLine(%q) = %q, %q, %v; want %q, %q, %v", c.line, task, text, ok, c.task, c.text, c.ok)
		}
	}
}

func TestDisplayText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                    "plain",
		"  padded  ":               "padded",
		"10%\r50%\r100%":           "100%",
		"done\r":                   "done",
		"a\tb":                     "a    b",
		"bell\a and \x1b escape":   "bell and  escape",
		"copying 1 paths...\r\r\r": "copying 1 paths...",
	} {
		if got := displayText(in); got != want {
			t.Errorf("displayText(%q) = %q, want %q", in, got, want)
		}
	}
}

func newModel() *Model {
	return New(map[string][]string{
		"host10": {"deploy-flake", "rebuild"},
		"host2":  {"deploy-flake", "rebuild"},
		"host1":  {"deploy-flake", "rebuild", "notify"},
	})
}

func TestFeedAndApply(t *testing.T) {
	m := newModel()
	var names []string
	for _, h := range m.Hosts() {
		names = append(names, h.Name)
	}
	if want := []string{"host1", "host2", "host10"}; !slices.Equal(names, want) {
		t.Fatalf("hosts %v, want natural order %v", names, want)
	}
	if m.Feed("[host3:rebuild] not ours", t0) || m.Feed("[host1] umbrella", t0) || m.Feed("task: x", t0) {
		t.Error("a line of no planned step was taken")
	}
	if !m.Feed("[host1:deploy-flake] copying 1 paths...", t0) {
		t.Fatal("a step's line was not taken")
	}
	h1 := m.Host("host1")
	if h1.State != Running || h1.Step != "deploy-flake" || h1.Last != "copying 1 paths..." || !h1.Start.Equal(t0) {
		t.Errorf("after output: %+v", h1)
	}
	m.Feed("[host1:deploy-flake] ", t0.Add(time.Second))
	if h1.Last != "copying 1 paths..." {
		t.Errorf("an empty line replaced the last line: %q", h1.Last)
	}

	recs := map[string]map[string]report.Record{
		"host1": {
			"deploy-flake": {Host: "host1", Step: "deploy-flake", Status: report.OK, Start: t0.Add(-time.Second), End: t0.Add(2 * time.Second)},
			"rebuild":      {Host: "host1", Step: "rebuild", Status: report.Running, Start: t0.Add(3 * time.Second)},
		},
		"host2": {
			"deploy-flake": {Host: "host2", Step: "deploy-flake", Status: report.Failed, Start: t0, End: t0.Add(time.Second), Error: "cannot connect"},
		},
		"host10": {
			"deploy-flake": {Host: "host10", Step: "deploy-flake", Status: report.OK, Start: t0, End: t0.Add(time.Second)},
			"rebuild":      {Host: "host10", Step: "rebuild", Status: report.OK, Start: t0.Add(time.Second), End: t0.Add(5 * time.Second)},
		},
	}
	m.Apply(recs)
	if h1.State != Running || h1.Step != "rebuild" || !h1.Start.Equal(t0.Add(-time.Second)) {
		t.Errorf("host1 running rebuild: %+v", h1)
	}
	if h2 := m.Host("host2"); h2.State != Failed || h2.Step != "deploy-flake" || h2.Error != "cannot connect" || !h2.End.Equal(t0.Add(time.Second)) {
		t.Errorf("host2 failed: %+v", h2)
	}
	if h10 := m.Host("host10"); h10.State != OK || h10.Step != "rebuild" || !h10.End.Equal(t0.Add(5*time.Second)) {
		t.Errorf("host10 ok: %+v", h10)
	}
	// The extra task "notify" has output, then records its end only.
	recs["host1"]["rebuild"] = report.Record{Host: "host1", Step: "rebuild", Status: report.OK, Start: t0.Add(3 * time.Second), End: t0.Add(4 * time.Second)}
	m.Apply(recs)
	if h1.State != Running || h1.Step != "deploy-flake" {
		// The last output came from deploy-flake: between two steps the
		// view keeps the step it last heard of.
		t.Errorf("host1 between steps: %+v", h1)
	}
	m.Feed("[host1:notify] sent", t0.Add(5*time.Second))
	if h1.State != Running || h1.Step != "notify" || h1.Last != "sent" {
		t.Errorf("host1 in its extra task: %+v", h1)
	}
	recs["host1"]["notify"] = report.Record{Host: "host1", Step: "notify", Status: report.OK, End: t0.Add(6 * time.Second)}
	m.Apply(recs)
	if h1.State != OK || h1.Step != "notify" || !h1.End.Equal(t0.Add(6*time.Second)) {
		t.Errorf("host1 done: %+v", h1)
	}
	if got := m.Failed(); !slices.Equal(got, []string{"host2"}) {
		t.Errorf("Failed() = %v", got)
	}
}

func TestOutputKeepsLinesAsPrinted(t *testing.T) {
	m := newModel()
	lines := []string{"[\x1b[33mhost2:rebuild\x1b[0m] one", "[host2:rebuild] two\r"}
	for _, l := range lines {
		m.Feed(l, t0)
	}
	m.Feed("[host1:rebuild] other host", t0)
	if got := m.Output("host2"); !slices.Equal(got, []string{lines[0], "[host2:rebuild] two"}) {
		t.Errorf("Output = %q", got)
	}
	for i := range MaxLines + 2 {
		m.Feed(fmt.Sprintf("[host10:rebuild] %d", i), t0)
	}
	got := m.Output("host10")
	if len(got) != MaxLines+1 || got[0] != "[host10] … 2 earlier lines not kept" || got[1] != "[host10:rebuild] 2" {
		t.Errorf("Output of a long run: %d lines, starting %q", len(got), got[:2])
	}
}

// rendered is a model in every state, at t0+90s.
func rendered() *Model {
	m := newModel()
	m.Feed("[host1:rebuild] building the system configuration...", t0.Add(time.Second))
	m.Apply(map[string]map[string]report.Record{
		"host1": {"deploy-flake": {Status: report.OK, Start: t0.Add(-3 * time.Second), End: t0}},
		"host2": {"deploy-flake": {Status: report.Failed, Start: t0, End: t0.Add(1500 * time.Millisecond), Error: "cannot connect to root@host2"}},
	})
	return m
}

func TestRender(t *testing.T) {
	m := rendered()
	got := m.Render(Frame{Now: t0.Add(9 * time.Second), Width: 100, Height: 24, Tick: 3})
	want := []string{
		"⠸ host1   rebuild         12.0s  building the system configuration...",
		"✗ host2   deploy-flake     1.5s  failed: cannot connect to root@host2",
		"· host10  waiting",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Render:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	final := m.Render(Frame{Now: t0.Add(9 * time.Second), Width: 100, Height: 24, Tick: 3, Final: true})
	if !strings.HasPrefix(final[0], "- host1 ") {
		t.Errorf("a host still running in the final frame: %q", final[0])
	}
}

func TestRenderFitsTheWidth(t *testing.T) {
	m := rendered()
	m.Feed("[host10:rebuild] 漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字", t0)
	for _, width := range []int{120, 60, 40, 20, 5, 2} {
		for _, color := range []bool{false, true} {
			lines := m.Render(Frame{Now: t0.Add(time.Minute), Width: width, Height: 24, Color: color})
			if len(lines) != 3 {
				t.Fatalf("width %d: %d lines", width, len(lines))
			}
			for _, l := range lines {
				if w := ansi.StringWidth(l); w > width-1 {
					t.Errorf("width %d, colour %v: %q is %d cells wide", width, color, l, w)
				}
				if !color && strings.ContainsRune(l, '\x1b') {
					t.Errorf("escape sequence without colour: %q", l)
				}
			}
		}
	}
	if lines := m.Render(Frame{Now: t0, Width: 1, Height: 24}); lines != nil {
		t.Errorf("a terminal one column wide: %q", lines)
	}
}

func TestRenderColour(t *testing.T) {
	m := rendered()
	lines := m.Render(Frame{Now: t0.Add(9 * time.Second), Width: 100, Height: 24, Color: true})
	if !strings.HasPrefix(lines[1], "\x1b[31m✗\x1b[m") {
		t.Errorf("failed host: %q", lines[1])
	}
	for i, l := range lines {
		if plain := m.Render(Frame{Now: t0.Add(9 * time.Second), Width: 100, Height: 24})[i]; ansi.Strip(l) != plain {
			t.Errorf("with colour %q, without %q", ansi.Strip(l), plain)
		}
	}
}

func TestRenderMoreHostsThanRows(t *testing.T) {
	steps := map[string][]string{}
	for i := 1; i <= 30; i++ {
		steps[fmt.Sprintf("web%d", i)] = []string{"rebuild"}
	}
	m := New(steps)
	recs := map[string]map[string]report.Record{}
	for i := 1; i <= 10; i++ { // web1..web10 done, web7 failed
		st := report.OK
		if i == 7 {
			st = report.Failed
		}
		recs[fmt.Sprintf("web%d", i)] = map[string]report.Record{"rebuild": {Status: st, Start: t0, End: t0}}
	}
	for i := 25; i <= 30; i++ { // web25..web30 running
		recs[fmt.Sprintf("web%d", i)] = map[string]report.Record{"rebuild": {Status: report.Running, Start: t0}}
	}
	m.Apply(recs)
	lines := m.Render(Frame{Now: t0, Width: 80, Height: 10})
	if len(lines) != 9 {
		t.Fatalf("%d lines for 9 rows:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	var names []string
	for _, l := range lines[:8] {
		names = append(names, strings.Fields(l)[1])
	}
	// The failed host and the running ones first, then waiting ones, in
	// natural order.
	if want := []string{"web7", "web11", "web25", "web26", "web27", "web28", "web29", "web30"}; !slices.Equal(names, want) {
		t.Errorf("shown %v, want %v", names, want)
	}
	if want := "  22 more: 13 waiting, 9 done"; lines[8] != want {
		t.Errorf("last line %q, want %q", lines[8], want)
	}
	if lines := m.Render(Frame{Now: t0, Width: 80, Height: 2}); len(lines) != 1 || !strings.HasPrefix(lines[0], "  30 more: 6 running, 14 waiting, 10 done (1 failed)") {
		t.Errorf("two rows: %q", lines)
	}
}

func TestElapsed(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                "0.0s",
		0:                           "0.0s",
		12340 * time.Millisecond:    "12.3s",
		59999 * time.Millisecond:    "59.9s",
		time.Minute + 5*time.Second: "1m05s",
		time.Hour + 2*time.Minute + 59*time.Second: "1h02m",
	} {
		if got := Elapsed(d); got != want {
			t.Errorf("Elapsed(%v) = %q, want %q", d, got, want)
		}
	}
}

// A record in a state this version does not know (a later one may add
// some) ends its step: the host is not shown running for ever.
func TestApplyUnknownState(t *testing.T) {
	m := New(map[string][]string{"host1": {"deploy-flake", "rebuild"}})
	m.Apply(map[string]map[string]report.Record{"host1": {
		"deploy-flake": {Status: "skipped", End: t0},
		"rebuild":      {Status: report.OK, Start: t0, End: t0.Add(time.Second)},
	}})
	if h := m.Host("host1"); h.State != OK {
		t.Errorf("host1: %+v", h)
	}
}
