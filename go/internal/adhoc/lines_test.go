package adhoc

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestLineWriter(t *testing.T) {
	for _, c := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"lines", []string{"a\nb\n"}, "[h] a\n[h] b\n"},
		{"split line", []string{"ab", "c\nd", "e\n"}, "[h] abc\n[h] de\n"},
		{"partial last line", []string{"a\nno newline"}, "[h] a\n[h] no newline\n"},
		{"empty lines", []string{"\n\n"}, "[h] \n[h] \n"},
		{"nothing", nil, ""},
		{"crlf", []string{"a\r\n"}, "[h] a\n"},
		// A host's output cannot drive the terminal (package termtext).
		{"escapes", []string{"\x1b]0;title\x07\x1b[2K\rforged\n"}, `[h] \x1b]0;title\x07\x1b[2K\rforged` + "\n"},
	} {
		var b bytes.Buffer
		l := NewLineWriter(NewSink(&b), "[h] ")
		for _, w := range c.writes {
			if n, err := l.Write([]byte(w)); n != len(w) || err != nil {
				t.Errorf("%s: Write = %d, %v", c.name, n, err)
			}
		}
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("%s: %q, want %q", c.name, b.String(), c.want)
		}
	}
}

// A line longer than MaxLine is cut into lines, so memory stays bounded.
func TestLineWriterLongLine(t *testing.T) {
	var b bytes.Buffer
	l := NewLineWriter(NewSink(&b), "> ")
	l.Write(bytes.Repeat([]byte("x"), MaxLine+10))
	l.Write([]byte("y\n"))
	l.Flush()
	want := "> " + strings.Repeat("x", MaxLine) + "\n> " + strings.Repeat("x", 10) + "y\n"
	if b.String() != want {
		t.Errorf("got %d bytes, want %d", b.Len(), len(want))
	}
}

// Concurrent writers sharing a sink never mix their lines, even when they
// write them in pieces.
func TestLineWriterConcurrent(t *testing.T) {
	var b bytes.Buffer
	sink := NewSink(&b)
	var wg sync.WaitGroup
	const writers, lines = 8, 200
	for w := range writers {
		l := NewLineWriter(sink, fmt.Sprintf("[w%d] ", w))
		wg.Go(func() {
			for i := range lines {
				line := fmt.Sprintf("line %d of writer %d\n", i, w)
				for j := 0; j < len(line); j += 3 {
					l.Write([]byte(line[j:min(j+3, len(line))]))
				}
			}
		})
	}
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	next := make([]int, writers)
	for _, line := range got {
		var w, i, w2 int
		if _, err := fmt.Sscanf(line, "[w%d] line %d of writer %d", &w, &i, &w2); err != nil || w != w2 || i != next[w] {
			t.Fatalf("mixed or out of order: %q", line)
		}
		next[w]++
	}
}
