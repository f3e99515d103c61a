// Package termtext makes text that came from outside lollypops safe to
// print on a terminal: flake attribute names, Nix's errors, warnings and
// traces, the output of commands on the hosts, the records other deployers
// leave in a host's deploy lock. A terminal obeys control characters and
// escape sequences (OSC retitles the window or sets the clipboard, CSI
// moves the cursor and erases lines, a carriage return overwrites a line),
// so such text could forge lollypops' own lines ("host1 ok") or hide them.
//
// Every control character (C0 but tab and newline where text may have
// several lines, DEL, C1), every bidirectional override or isolate (which
// reorder what is shown) and every byte that is not UTF-8 is written as a
// visible Go-style escape: "\x1b", "\r", "\u009b", "\u202e", "\xff".
// Ordinary UTF-8 text, accents and emoji included, is left as it is. A
// carriage return right before a newline (CRLF line ends) is dropped.
//
// Everything lollypops prints that did not come from lollypops itself goes
// through this package, once: at the point where it is printed (the
// runner's messages, the step binary's output streams, the records of the
// run's summary and report).
package termtext

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// Line returns s as one line of plain text: newlines and tabs are escaped
// too. For single fields: a name, a user, a record's value.
func Line(s string) string { return clean(s, false) }

// Text returns s as plain text that may have several lines: newlines and
// tabs are kept, everything else as Line.
func Text(s string) string { return clean(s, true) }

// Printable reports whether s reaches a terminal as it is: valid UTF-8
// without control characters but newline and tab (Text(s) == s). Tests use
// it on everything lollypops printed.
func Printable(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || escaped(r, true) {
			return false
		}
		i += size
	}
	return true
}

// Colour returns s as Text, but keeps the escape sequences that only set
// colours and weights (SGR: ESC [ digits and semicolons m), as go-task
// colours its own lines. Hiding text (SGR 8, conceal) is no colour: such a
// sequence is escaped like any other.
func Colour(s string) string { return cleanWith(s, true, true) }

// colourLen is the length of the SGR sequence at the start of s, 0 when
// there is none or it conceals text.
func colourLen(s string) int {
	if len(s) < 3 || s[0] != 0x1b || s[1] != '[' {
		return 0
	}
	for i := 2; i < len(s) && i < 64; i++ {
		c := s[i]
		switch {
		case c == 'm':
			for _, p := range strings.Split(s[2:i], ";") {
				if p == "8" || p == "08" {
					return 0
				}
			}
			return i + 1
		case c != ';' && (c < '0' || c > '9'):
			return 0
		}
	}
	return 0
}

func clean(s string, multiline bool) string { return cleanWith(s, multiline, false) }

func cleanWith(s string, multiline, colour bool) string {
	if Printable(s) && (multiline || !strings.ContainsAny(s, "\n\t")) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case multiline && r == '\r' && i+1 < len(s) && s[i+1] == '\n':
			// CRLF: the line end, without the carriage return.
		case colour && r == 0x1b && colourLen(s[i:]) > 0:
			n := colourLen(s[i:])
			b.WriteString(s[i : i+n])
			size = n
		case escaped(r, multiline):
			writeEscape(&b, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// escaped reports whether r must not reach a terminal raw.
func escaped(r rune, multiline bool) bool {
	switch {
	case r == '\n' || r == '\t':
		return !multiline
	case r < 0x20 || r == 0x7f:
		return true
	case r >= 0x80 && r < 0xa0:
		return true // C1 controls: 0x9b is a one-byte CSI on some terminals
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true // bidirectional embeddings, overrides, isolates and marks
	}
	return false
}

func writeEscape(b *strings.Builder, r rune) {
	switch r {
	case '\n':
		b.WriteString(`\n`)
	case '\r':
		b.WriteString(`\r`)
	case '\t':
		b.WriteString(`\t`)
	default:
		if r < 0x80 {
			fmt.Fprintf(b, `\x%02x`, r)
		} else {
			fmt.Fprintf(b, `\u%04x`, r)
		}
	}
}

// Writer passes what is written to it on as Text: a byte stream, such as a
// command's output, cleaned as it comes. A UTF-8 sequence or a CRLF split
// between two writes is kept whole; Flush writes what is held back at the
// end of the stream. It is safe for concurrent use.
type Writer struct {
	mu     sync.Mutex
	w      io.Writer
	colour bool
	tail   []byte // an incomplete UTF-8 or colour sequence, or a CR, from the last write
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// NewColourWriter returns a Writer to w that keeps colours (Colour).
func NewColourWriter(w io.Writer) *Writer { return &Writer{w: w, colour: true} }

func (t *Writer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	data := p
	if len(t.tail) > 0 {
		data = append(t.tail, p...)
		t.tail = nil
	}
	keep := holdBack(data)
	if t.colour {
		keep = max(keep, colourPending(data))
	}
	if keep > 0 {
		t.tail = append([]byte(nil), data[len(data)-keep:]...)
		data = data[:len(data)-keep]
	}
	if len(data) == 0 {
		return n, nil
	}
	if _, err := io.WriteString(t.w, cleanWith(string(data), true, t.colour)); err != nil {
		return 0, err
	}
	return n, nil
}

// Flush writes what the last write held back, cleaned.
func (t *Writer) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.tail) == 0 {
		return nil
	}
	s := Text(string(t.tail))
	t.tail = nil
	_, err := io.WriteString(t.w, s)
	return err
}

// colourPending is the length of an unfinished colour sequence at the end
// of p (ESC, ESC [, ESC [ 1;3), which the next write may complete.
func colourPending(p []byte) int {
	for i := len(p) - 1; i >= 0 && len(p)-i < 64; i-- {
		c := p[i]
		switch {
		case c == 0x1b:
			return len(p) - i
		case c == '[' || c == ';' || c >= '0' && c <= '9':
			continue
		}
		return 0
	}
	return 0
}

// holdBack is how many bytes at the end of p may continue in the next
// write: a CR (the start of a CRLF), or the start of a UTF-8 sequence.
func holdBack(p []byte) int {
	if len(p) > 0 && p[len(p)-1] == '\r' {
		return 1
	}
	for i := 1; i <= 3 && i <= len(p); i++ {
		c := p[len(p)-i]
		if c < 0x80 {
			return 0 // ASCII: nothing pending
		}
		if c >= 0xc0 { // a leading byte: is its sequence complete?
			if need := seqLen(c); need > i {
				return i
			}
			return 0
		}
	}
	return 0
}

func seqLen(c byte) int {
	switch {
	case c >= 0xf0:
		return 4
	case c >= 0xe0:
		return 3
	}
	return 2
}
