package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
	"github.com/creack/pty"

	"github.com/lollypops/lollypops/go/internal/output"
	"github.com/lollypops/lollypops/go/internal/report"
	"github.com/lollypops/lollypops/go/internal/taskrun"
)

// The view draws over itself; what else is printed meanwhile goes above
// it; when it stops, the failed host's output follows it, and then
// everything is printed as it comes.
func TestView(t *testing.T) {
	const cols, rows = 60, 12
	dir := t.TempDir()
	var tty bytes.Buffer
	v := newView(&tty, func() (int, int) { return cols, rows },
		map[string][]string{"ahorn": {"rebuild"}, "birne": {"rebuild"}}, dir, false)
	sink := output.New(&tty)
	v.out = sink
	sink.Register(v)
	v.start()

	fmt.Fprint(v.stdout, "[ahorn:rebuild] building\n[birne:rebuild] oops: ")
	fmt.Fprint(v.stdout, "it broke\n[not-a-step] passed through\n")
	sink.Printf("interrupt: stopping")
	// Nix's messages go above the view too, cleaned.
	nix := sink.Foreign()
	fmt.Fprint(nix, "warning: in\x1b[2J")
	fmt.Fprint(nix, " two writes\n")
	now := time.Now()
	for host, st := range map[string]string{"ahorn": report.OK, "birne": report.Failed} {
		rec := report.Record{Host: host, Step: "rebuild", Status: st, Start: now.Add(-2 * time.Second), End: now.Add(-time.Second)}
		if st == report.Failed {
			rec.Error = "exit status 1"
		}
		if err := report.Write(dir, rec); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprint(v.stdout, "[birne:rebuild] no newline at the end")
	v.stop()
	sink.Printf("summary")

	emu := vt.NewEmulator(cols, rows)
	emu.Write(bytes.ReplaceAll(tty.Bytes(), []byte("\n"), []byte("\r\n")))
	var screen []string
	for _, l := range strings.Split(strings.TrimRight(emu.String(), " \n"), "\n") {
		screen = append(screen, strings.TrimRight(l, " "))
	}
	want := []string{
		"[not-a-step] passed through",
		"lollypops: interrupt: stopping",
		`warning: in\x1b[2J two writes`,
		"✓ ahorn  done        1.0s  building",
		"✗ birne  rebuild     1.0s  failed: exit status 1",
		"[birne:rebuild] oops: it broke",
		"[birne:rebuild] no newline at the end",
		"lollypops: summary",
	}
	if strings.Join(screen, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s\nwritten: %q", strings.Join(screen, "\n"), strings.Join(want, "\n"), tty.String())
	}
	if regexp.MustCompile(`\x1b\[[0-9;]*m`).Match(tty.Bytes()) {
		t.Errorf("colour without colour: %q", tty.String())
	}
	if i, j := bytes.LastIndex(tty.Bytes(), []byte("\x1b[?25l")), bytes.LastIndex(tty.Bytes(), []byte("\x1b[?25h")); i < 0 || j < i {
		t.Errorf("the cursor is left hidden: %q", tty.String())
	}
}

// The view is for a terminal, and only when the user asked for no output
// style of their own.
func TestWantView(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, c := range []struct {
		name  string
		term  string
		out   io.Writer
		flags taskrun.Flags
		want  bool
	}{
		{"terminal", "xterm", tty, taskrun.Flags{}, true},
		{"buffer", "xterm", &bytes.Buffer{}, taskrun.Flags{}, false},
		{"/dev/null", "xterm", null, taskrun.Flags{}, false},
		{"TERM=dumb", "dumb", tty, taskrun.Flags{}, false},
		{"no TERM", "", tty, taskrun.Flags{}, false},
		{"--verbose", "xterm", tty, taskrun.Flags{Verbose: true}, false},
		{"-o prefixed", "xterm", tty, taskrun.Flags{Output: "prefixed"}, false},
		{"-o group", "xterm", tty, taskrun.Flags{Output: "group"}, false},
		{"--interactive", "xterm", tty, taskrun.Flags{Interactive: true}, false},
	} {
		t.Setenv("TERM", c.term)
		if got := wantView(&c.flags, c.out); got != c.want {
			t.Errorf("%s: view %v, want %v", c.name, got, c.want)
		}
	}
}
