package output

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/termtext"
)

type view struct {
	mu    sync.Mutex
	calls []string
}

func (v *view) Above(w io.Writer, text string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, text)
	io.WriteString(w, text)
}

// The rules of the package comment, one by one.
func TestSink(t *testing.T) {
	var b strings.Builder
	s := New(&b)
	s.Printf("%s is left out: %s", "nixosConfigurations.\x1b]0;pwned\x07", "bad name")
	s.Error(&fault.Error{K: fault.Usage, Msg: "unknown task \"x\"", Advice: "did you mean \"y\"?"})
	s.Error(&fault.Error{K: fault.HostsFailed}) // reported already: nothing
	s.Error(nil)
	s.HostError("host1", fmt.Errorf("cannot connect: %w", &fault.Error{Msg: "refused", Advice: "is sshd running?"}))
	fmt.Fprint(s.Foreign(), "warning: \x1b[31mred\x1b[0m from nix\r\nno newline yet")
	want := `lollypops: nixosConfigurations.\x1b]0;pwned\x07 is left out: bad name
lollypops: unknown task "x"
lollypops: hint: did you mean "y"?
lollypops: host1: cannot connect: refused
lollypops: hint: is sshd running?
warning: \x1b[31mred\x1b[0m from nix
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if !termtext.Printable(b.String()) {
		t.Error("a line reached the terminal raw")
	}

	// Registered, the view gets every write, each message with its hint
	// in one piece.
	v := &view{}
	b.Reset()
	s.Register(v)
	s.Error(errors.Join(&fault.Error{Msg: "one", Advice: "fix it"}))
	s.Lines("lollypops: summary\x1b[2J\n")
	s.Register(nil)
	s.Printf("after")
	if len(v.calls) != 2 || v.calls[0] != "lollypops: one\nlollypops: hint: fix it\n" || v.calls[1] != `lollypops: summary\x1b[2J`+"\n" {
		t.Errorf("above the view: %q", v.calls)
	}
	if !strings.HasSuffix(b.String(), "lollypops: after\n") {
		t.Errorf("after the view: %q", b.String())
	}
}

// go-task's output keeps its colours; the commands' text is cleaned.
func TestTasks(t *testing.T) {
	var b strings.Builder
	w := Tasks(&b)
	fmt.Fprint(w, "\x1b[32mtask: [host1:rebuild] ok\x1b[0m\n[host1:rebuild] \x1b[2J\x1b[8mhidden\n")
	w.Flush()
	if want := "\x1b[32mtask: [host1:rebuild] ok\x1b[0m\n[host1:rebuild] " + `\x1b[2J\x1b[8mhidden` + "\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// Two hosts' executors write their lines in pieces at once: through Lines,
// every line arrives whole.
func TestLinesKeepsLinesWhole(t *testing.T) {
	var mu sync.Mutex
	var got bytes.Buffer
	shared := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return got.Write(p)
	})
	var wg sync.WaitGroup
	var writers []*Lines
	for _, host := range []string{"host1", "host2", "host3"} {
		w := NewLines(shared)
		writers = append(writers, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				for _, piece := range []string{"[", host + ":rebuild", "] ", fmt.Sprintf("line %d of %s\n", i, host)} {
					w.Write([]byte(piece))
				}
			}
			w.Write([]byte("[" + host + "] unfinished"))
		}()
	}
	wg.Wait()
	if strings.Contains(got.String(), "unfinished") {
		t.Fatal("an unfinished line was written before Flush")
	}
	for _, w := range writers {
		w.Flush()
		got.WriteString("\n")
	}
	lines := strings.SplitAfter(got.String(), "\n")
	n := 0
	for _, l := range lines {
		if strings.HasSuffix(l, "unfinished\n") || l == "" {
			continue // the unfinished lines, flushed last
		}
		var host string
		var i int
		if _, err := fmt.Sscanf(l, "[%5s:rebuild] line %d of", &host, &i); err != nil || !strings.HasSuffix(l, " of "+host+"\n") {
			t.Fatalf("a line mixed with another: %q", l)
		}
		n++
	}
	if n != 3*2000 {
		t.Errorf("%d whole lines, want %d", n, 3*2000)
	}
	if c := strings.Count(got.String(), "unfinished"); c != 3 {
		t.Errorf("%d unfinished lines flushed, want 3", c)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
