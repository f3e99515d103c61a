package shellword

import (
	"slices"
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
