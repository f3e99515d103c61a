package steps

import (
	"strings"
	"testing"
)

// A failed build's error ends with nix's last error line, else its last
// line.
func TestLastLines(t *testing.T) {
	var l lastLines
	if got := l.last(); got != "" {
		t.Errorf("nothing written: %q", got)
	}
	l.Write([]byte("building '/nix/store/x.drv'...\nerror: builder for '/nix/store/x.drv' failed with exit code 1;\n"))
	l.Write([]byte("       last 1 log lines:\n       > oops\n       For full logs, run 'nix log /nix/store/x.drv'.\n\n"))
	if got := l.last(); got != "error: builder for '/nix/store/x.drv' failed with exit code 1;" {
		t.Errorf("last line %q", got)
	}
	l.Write([]byte(strings.Repeat("x", 10000) + "\nthe end\n"))
	if got := l.last(); got != "the end" || len(l.buf) > 8192 {
		t.Errorf("after much output: %q (%d bytes kept)", got, len(l.buf))
	}
}
