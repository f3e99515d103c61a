package shellword

import (
	"slices"
	"strings"
	"testing"
)

func TestLiteral(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string // nil: not literal
	}{
		{"cat /etc/hostname", []string{"cat", "/etc/hostname"}},
		{`cat '/a b' "c d" ef`, []string{"cat", "/a b", "c d", "ef"}},
		{`cat e\ f`, nil},
		{`sh -c 'x'"'"'y'`, []string{"sh", "-c", "x'y"}},
		{"a | b", nil},
		{"$HOME", nil},
		{`"$HOME"`, nil},
		{"$(id)", nil},
		{"`id`", nil},
		{"/etc/*", nil},
		{"a?", nil},
		{"~/x", nil},
		{"a=b c", nil},
		{"a > b", nil},
		{"a; b", nil},
		{"a && b", nil},
		{"a &", nil},
		{"! a", nil},
		{"if a; then b; fi", nil},
		{"'open", nil},
		{"", nil},
	} {
		got, ok := Literal(c.line)
		if ok != (c.want != nil) || !slices.Equal(got, c.want) {
			t.Errorf("Literal(%q) = %q, %v; want %q", c.line, got, ok, c.want)
		}
	}
}

func TestPrograms(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string // nil with ok false: cannot be told
		ok   bool
	}{
		{"pass hosts/db", []string{"pass"}, true},
		{"umask 077; pass x", []string{"pass"}, true},
		{"unset X; pass x", []string{"pass"}, true},
		{"pass x | tr -d '\\n'", []string{"pass", "tr"}, true},
		{"pass x && bw get password y", []string{"pass", "bw"}, true},
		{"echo -n value", nil, true},
		{"printf %s x", nil, true},
		{"cat \"$HOME/x\"", []string{"cat"}, true},
		{"$TOOL get x", nil, true},
		{"FOO=1 pass x", []string{"pass"}, true},
		{"if test -f x; then cat x; else pass y; fi", []string{"cat", "pass"}, true},
		{"source ./env && pass x", nil, false},
		{". ./env; pass x", nil, false},
		{"PATH=/opt/bin:$PATH mytool", nil, false},
		{"export PATH=/opt/bin; mytool", nil, false},
		{"cd /srv && ./get-secret", nil, false},
		{"f() { pass x; }; f", nil, false},
		{"eval \"$CMD\"", nil, false},
		{"'unterminated", nil, false},
	} {
		got, ok := Programs(c.line)
		if ok != c.ok || !slices.Equal(got, c.want) {
			t.Errorf("Programs(%q) = %q, %v; want %q, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// The secret step runs a line without a shell exactly when it is one
// program's words; check-vars then looks for that program.
func TestProgramAgreesWithPrograms(t *testing.T) {
	for _, line := range []string{"pass x", "umask 077", "echo x", "cat 'a b'", "cat a | tr b c", "test -f x"} {
		words, direct := Program(line)
		progs, ok := Programs(line)
		if direct && (!ok || len(progs) != 1 || progs[0] != words[0]) {
			t.Errorf("%q: runs %q directly, but Programs says %q, %v", line, words[0], progs, ok)
		}
		if strings.HasPrefix(line, "umask") && (direct || len(progs) != 0) {
			t.Errorf("%q: a builtin taken for a program: %q %q", line, words, progs)
		}
	}
}
