package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
	"github.com/creack/pty"

	"github.com/lollypops/lollypops/go/internal/config"
)

// The size of the pseudo-terminal the progress tests run lollypops on.
const ptyCols, ptyRows = 120, 50

// ptyResult is a run on a pseudo-terminal: everything written to it, and
// the screen it leaves, as a terminal shows it.
type ptyResult struct {
	code   int
	raw    string
	screen string
}

func (r ptyResult) String() string {
	raw := strings.ToValidUTF8(strings.ReplaceAll(r.raw, "\x1b", "^["), "?")
	return fmt.Sprintf("exit %d\n--- screen\n%s\n--- raw\n%s", r.code, r.screen, raw)
}

// runPTY runs lollypops with its stdin, stdout and stderr on a new
// pseudo-terminal, as from an interactive shell, with env added to the
// environment (TERM set, NO_COLOR unset unless env sets it).
// started, if set, runs alongside, once lollypops has started.
func (r *runner) runPTY(env []string, started func(*exec.Cmd), args ...string) ptyResult {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "lollypops"), append(r.source(), args...)...)
	cmd.Dir = r.dir
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "NO_COLOR" && k != "TERM" && !strings.HasPrefix(k, "TASK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "TERM=xterm-256color", "XDG_CACHE_HOME="+r.cacheHome()), env...)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: ptyCols, Rows: ptyRows})
	if err != nil {
		r.t.Fatal(err)
	}
	if started != nil {
		go started(cmd)
	}
	// The terminal's output is read until its last writer is gone (EIO).
	raw, rerr := io.ReadAll(tty)
	werr := cmd.Wait()
	tty.Close()
	if rerr != nil && !errors.Is(rerr, syscall.EIO) {
		r.t.Fatalf("reading the terminal: %v", rerr)
	}
	res := ptyResult{raw: string(raw)}
	if ee, ok := werr.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if werr != nil {
		r.t.Fatalf("lollypops: %v\n%s", werr, raw)
	}
	emu := vt.NewEmulator(ptyCols, ptyRows)
	emu.Write(raw)
	res.screen = emu.String()
	return res
}

// progressFleet is three hosts; host2's secret command fails.
func progressFleet(t *testing.T) *runner {
	f := newFleet(t, hosts("host1", "host2", "host3")...)
	hs := map[string]*config.Host{}
	for _, h := range f.Hosts() {
		hs[h.Name] = host(f, h.Name)
	}
	hs["host2"].Secrets.Files = []config.Secret{
		secret("b", "echo 'pass: no such entry' >&2; exit 3", "/run/keys/b"),
	}
	return newRunner(t, hs)
}

// screenLines returns the screen's lines, trailing spaces removed.
func screenLines(screen string) []string {
	var out []string
	for _, l := range strings.Split(screen, "\n") {
		out = append(out, strings.TrimRight(l, " "))
	}
	return out
}

// find returns the index of the first line at or after from that re
// matches, or -1.
func find(lines []string, from int, re *regexp.Regexp) int {
	for i := max(from, 0); i < len(lines); i++ {
		if re.MatchString(lines[i]) {
			return i
		}
	}
	return -1
}

var (
	sgrColour = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	cursorUp  = regexp.MustCompile(`\x1b\[[0-9]*A`)
)

// On a terminal, a run shows one line per host, redrawn in place; when it
// ends, the failed host's whole output, as a plain run prints it, and the
// summary.
func TestProgressView(t *testing.T) {
	r := progressFleet(t)
	res := r.runPTY(nil, nil, "all")
	if res.code != 3 {
		t.Fatalf("exit %d, want 3\n%s", res.code, res)
	}
	t.Logf("the screen at the end:\n%s", res.screen)
	lines := screenLines(res.screen)
	// The final view: one line per host, in order, then nothing else of
	// the hosts' output but host2's.
	view := []*regexp.Regexp{
		regexp.MustCompile(`^✓ host1  done\s+\d+\.\ds\b`),
		regexp.MustCompile(`^✗ host2  deploy-secrets\s+\d+\.\ds  failed: secret "b": command failed \(exit status 3\)`),
		regexp.MustCompile(`^✓ host3  done\s+\d+\.\ds\b`),
	}
	at := find(lines, 0, view[0])
	if at < 0 {
		t.Fatalf("no progress line for host1 on the screen\n%s", res)
	}
	for i, re := range view[1:] {
		if !re.MatchString(lines[at+1+i]) {
			t.Errorf("line %d of the view: %q, want %s\n%s", i+2, lines[at+1+i], re, res)
		}
	}
	// host2's output follows, every line of it, each step's in order
	// (deploy-flake and deploy-secrets run at once: their lines may
	// interleave).
	next := at + len(view)
	checkVars := regexp.MustCompile(`^\[host2:check-vars\] root@host2, flake by copy`)
	if !checkVars.MatchString(lines[next]) {
		t.Errorf("host2's output does not follow the view: %q\n%s", lines[next], res)
	}
	if find(lines, next, regexp.MustCompile(`^\[host2:deploy-flake\] copying `)) < 0 {
		t.Errorf("host2's output lacks its flake copy\n%s", res)
	}
	last := next
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`^\[host2:deploy-secrets\] pass: no such entry$`),
		regexp.MustCompile(`^\[host2:deploy-secrets\] lollypops: secret "b": command failed \(exit status 3\)`),
		regexp.MustCompile(`^\[host2:deploy-secrets\] lollypops: hint: nothing was written on the host`),
	} {
		if last = find(lines, last, re); last < 0 {
			t.Fatalf("host2's output lacks %s\n%s", re, res)
		}
	}
	// The summary comes after all of it.
	for i := next; i < len(lines) && strings.HasPrefix(lines[i], "[host2:"); i++ {
		next = i
	}
	sum := find(lines, next, regexp.MustCompile(`^lollypops: summary: 2 of 3 hosts ok$`))
	if sum < 0 {
		t.Errorf("no summary after the replay\n%s", res)
	}
	for _, h := range []string{"host1", "host3"} {
		if find(lines, sum, regexp.MustCompile(`^lollypops:\s+`+h+`\s+ok\s`)) < 0 {
			t.Errorf("no summary line for %s\n%s", h, res)
		}
	}
	if find(lines, 0, regexp.MustCompile(`^\[host[13]:`)) >= 0 {
		t.Errorf("a host that succeeded has its output replayed\n%s", res)
	}
	// The view was drawn over itself, in colour, and the cursor shown again.
	if !cursorUp.MatchString(res.raw) {
		t.Errorf("the view was never redrawn in place\n%s", res)
	}
	if !strings.Contains(res.raw, "\x1b[31m✗") || !strings.Contains(res.raw, "\x1b[32m✓") {
		t.Errorf("no colour on a terminal\n%s", res)
	}
	if i, j := strings.LastIndex(res.raw, "\x1b[?25l"), strings.LastIndex(res.raw, "\x1b[?25h"); i < 0 || j < i {
		t.Errorf("the cursor is left hidden\n%s", res)
	}
}

// Without a terminal, with -o or --verbose, the output is go-task's
// prefixed lines as they come; with NO_COLOR the view has no colour.
func TestProgressPlain(t *testing.T) {
	r := progressFleet(t)
	// The secrets only: the view and its absence show as well, in less time.
	secretsOnly := []string{"--on", "host*", "deploy-secrets"}
	res := r.run(secretsOnly...)
	if res.code != 3 || !strings.Contains(res.stdout, "[host2:deploy-secrets] pass: no such entry") {
		t.Errorf("not a terminal: %s", res)
	}
	if strings.Contains(res.stdout+res.stderr, "\x1b") {
		t.Errorf("escape sequences without a terminal:\n%q", res.stdout+res.stderr)
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
		view bool
	}{
		{"NO_COLOR", []string{"NO_COLOR=1"}, nil, true},
		{"--color=false", nil, []string{"--color=false"}, true},
		{"-o prefixed", nil, []string{"-o", "prefixed"}, false},
		{"--verbose", nil, []string{"--verbose"}, false},
		{"TERM=dumb", []string{"TERM=dumb"}, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := r.runPTY(c.env, nil, append(c.args, secretsOnly...)...)
			if res.code != 3 {
				t.Fatalf("exit %d, want 3\n%s", res.code, res)
			}
			lines := screenLines(res.screen)
			hasView := find(lines, 0, regexp.MustCompile(`^✗ host2  deploy-secrets`)) >= 0
			if hasView != c.view || cursorUp.MatchString(res.raw) != c.view {
				t.Errorf("view shown: %v, want %v\n%s", hasView, c.view, res)
			}
			if find(lines, 0, regexp.MustCompile(`^\[host2:deploy-secrets\] pass: no such entry$`)) < 0 ||
				find(lines, 0, regexp.MustCompile(`^lollypops: summary: 2 of 3 hosts ok$`)) < 0 {
				t.Errorf("host2's output or the summary is missing\n%s", res)
			}
			// Without the view, go-task's prefixed lines come as they are
			// printed, host1's too; with it, only the failed host's.
			// (go-task writes a prefix in pieces: with --verbose, its own
			// messages on stderr may land inside one.)
			if host1 := strings.Contains(ansi.Strip(res.raw), "host1:check-vars] root@host1"); host1 == c.view {
				t.Errorf("host1's output shown: %v, want %v\n%s", host1, !c.view, res)
			}
			if c.view && sgrColour.MatchString(res.raw) {
				t.Errorf("colour with %s: %q", c.name, sgrColour.FindAllString(res.raw, 5))
			}
		})
	}
}

// An interrupt's message is printed above the view, which goes on below
// it: no stale line of the view stays on the screen.
func TestProgressInterrupt(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2")...)
	hs := map[string]*config.Host{}
	for _, h := range f.Hosts() {
		hs[h.Name] = host(f, h.Name)
		h.SetRebuildSleep(2 * time.Second)
	}
	r := newRunner(t, hs)
	res := r.runPTY(nil, func(cmd *exec.Cmd) {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			c1, _ := f.Host("host1").RebuildCalls()
			c2, _ := f.Host("host2").RebuildCalls()
			if len(c1) > 0 && len(c2) > 0 {
				break
			}
		}
		// The terminal sends SIGINT to its foreground process group;
		// lollypops leads its own session on the pseudo-terminal.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	}, "all")
	if res.code != 130 {
		t.Fatalf("exit %d, want 130\n%s", res.code, res)
	}
	lines := screenLines(res.screen)
	stop := find(lines, 0, regexp.MustCompile(`^lollypops: interrupt: stopping; activations in flight finish`))
	if stop < 0 {
		t.Fatalf("no interrupt message on the screen\n%s", res)
	}
	for i, h := range []string{"host1", "host2"} {
		if !regexp.MustCompile(`^✓ ` + h + `  done\s+\d+\.\ds  `).MatchString(lines[stop+1+i]) {
			t.Errorf("line %d after the message: %q, want %s's final line\n%s", i+1, lines[stop+1+i], h, res)
		}
	}
	if i := find(lines, 0, regexp.MustCompile(`^. host[12]  `)); i != stop+1 {
		t.Errorf("a line of the view at %d, outside the final view at %d\n%s", i, stop+1, res)
	}
	if find(lines, stop, regexp.MustCompile(`^lollypops: summary: 2 of 2 hosts ok$`)) < 0 {
		t.Errorf("no summary\n%s", res)
	}
}
