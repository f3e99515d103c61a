package termtext

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLineAndText(t *testing.T) {
	for _, c := range []struct{ in, line, text string }{
		{"host1", "host1", "host1"},
		{"café ☕ 日本 👍", "café ☕ 日本 👍", "café ☕ 日本 👍"},
		{"a\tb\nc", `a\tb\nc`, "a\tb\nc"},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`, `\x1b]0;pwned\x07`},
		{"\x1b[2K\rlollypops: host1 ok", `\x1b[2K\rlollypops: host1 ok`, `\x1b[2K\rlollypops: host1 ok`},
		{"one\r\ntwo\r\n", `one\r\ntwo\r\n`, "one\ntwo\n"},
		{"\u009b31m\u0085", `\u009b31m\u0085`, `\u009b31m\u0085`},
		{"abc\u202egnp.exe", `abc\u202egnp.exe`, `abc\u202egnp.exe`},
		{"bad\xff\xfe byte\xe2\x82", `bad\xff\xfe byte\xe2\x82`, `bad\xff\xfe byte\xe2\x82`},
		{"nul\x00del\x7f", `nul\x00del\x7f`, `nul\x00del\x7f`},
		{`back\slash "q" 'q' $(x)`, `back\slash "q" 'q' $(x)`, `back\slash "q" 'q' $(x)`},
	} {
		if got := Line(c.in); got != c.line {
			t.Errorf("Line(%q) = %q, want %q", c.in, got, c.line)
		}
		if got := Text(c.in); got != c.text {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.text)
		}
		if Printable(c.in) != (Text(c.in) == c.in) {
			t.Errorf("Printable(%q) = %v", c.in, Printable(c.in))
		}
	}
}

// Whatever comes in, what goes out has no byte a terminal acts on but
// newline and tab, and is valid UTF-8.
func FuzzText(f *testing.F) {
	f.Add([]byte("\x1b[31mred\x1b[0m\r\n\xc2\x9b\xe2\x80\xae"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, out := range []string{Text(string(in)), Line(string(in))} {
			if !Printable(out) {
				t.Fatalf("%q -> %q", in, out)
			}
		}
		var b bytes.Buffer
		w := NewWriter(&b)
		for i := 0; i < len(in); i += 3 {
			w.Write(in[i:min(i+3, len(in))])
		}
		w.Flush()
		if !Printable(b.String()) {
			t.Fatalf("writer: %q -> %q", in, b.String())
		}
	})
}

// The writer gives the same text as Text on the whole stream, however the
// stream is cut into writes.
func TestWriterSplits(t *testing.T) {
	in := "ok é 日本 👍\r\nnext\x1b[2J\r\n\xffend\r"
	want := Text(in)
	for size := 1; size <= len(in); size++ {
		var b bytes.Buffer
		w := NewWriter(&b)
		for i := 0; i < len(in); i += size {
			if n, err := w.Write([]byte(in[i:min(i+size, len(in))])); err != nil || n != min(size, len(in)-i) {
				t.Fatalf("write: %d %v", n, err)
			}
		}
		w.Flush()
		if b.String() != want {
			t.Errorf("writes of %d: %q, want %q", size, b.String(), want)
		}
	}
}

func TestPrintable(t *testing.T) {
	if !Printable("a\tb\nc é") || Printable("a\x1bb") || Printable("\xff") || Printable("a\rb") {
		t.Error("Printable")
	}
	if !strings.Contains(Text("\x9b"), `\x9b`) || utf8.ValidString("\x9b") {
		t.Error("a lone 0x9b byte is not UTF-8 and is escaped")
	}
}

func TestColourKeepsColoursOnly(t *testing.T) {
	for in, want := range map[string]string{
		"\x1b[32mok\x1b[0m":        "\x1b[32mok\x1b[0m",
		"\x1b[1;31mfail\x1b[m":     "\x1b[1;31mfail\x1b[m",
		"\x1b[8mhidden\x1b[0m":     `\x1b[8mhidden` + "\x1b[0m",
		"\x1b[2Jcleared":           `\x1b[2Jcleared`,
		"\x1b]0;title\x07text":     `\x1b]0;title\x07text`,
		"a\rb\n":                   `a\rb` + "\n",
		"\x1b[31;8mred hidden\x1b": `\x1b[31;8mred hidden\x1b`,
	} {
		if got := Colour(in); got != want {
			t.Errorf("Colour(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestColourWriterKeepsSplitSequences(t *testing.T) {
	var b strings.Builder
	w := NewColourWriter(&b)
	for _, part := range []string{"x\x1b", "[3", "2mgreen\x1b[0m\n", "\x1b[2J"} {
		w.Write([]byte(part))
	}
	w.Flush()
	if want := "x\x1b[32mgreen\x1b[0m\n" + `\x1b[2J`; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
