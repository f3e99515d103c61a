package plan

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSelectHosts(t *testing.T) {
	fleet := []HostTags{
		{"web-1", []string{"web", "eu"}}, {"web-2", []string{"web", "us"}}, {"web-10", []string{"web"}},
		{"db-1", []string{"db", "eu"}}, {"mail", nil},
	}
	for _, c := range []struct {
		on, exclude string
		want        []string
		err         string
	}{
		{"@web", "", []string{"web-1", "web-2", "web-10"}, ""},
		{"web-*", "", []string{"web-1", "web-2", "web-10"}, ""},
		{"@eu", "", []string{"db-1", "web-1"}, ""},
		{"mail,@db", "", []string{"db-1", "mail"}, ""},
		{"@web", "web-1?", []string{"web-1", "web-2"}, ""},
		{"@web", "@us", []string{"web-1", "web-10"}, ""},
		{"", "@web", []string{"db-1", "mail"}, ""},
		{"@wbe", "", nil, `--on @wbe matches no host`},
		{"web-3", "", nil, `--on web-3 matches no host`},
		{"@db", "db-*", nil, `matches no host`},
	} {
		var on, ex Selector
		var err error
		if c.on != "" {
			if on, err = ParseSelector("--on", c.on); err != nil {
				t.Fatal(err)
			}
		}
		if c.exclude != "" {
			if ex, err = ParseSelector("--exclude", c.exclude); err != nil {
				t.Fatal(err)
			}
		}
		got, err := SelectHosts(fleet, on, ex, "--on")
		switch {
		case c.err == "" && (err != nil || !slices.Equal(got, c.want)):
			t.Errorf("--on %q --exclude %q = %q, %v; want %q", c.on, c.exclude, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("--on %q --exclude %q: error %v, want %q", c.on, c.exclude, err, c.err)
		}
	}
	_, err := SelectHosts(fleet, Selector{"@wbe"}, nil, "--on")
	var nm *NoMatchError
	if !errors.As(err, &nm) || nm.Hint() != `did you mean "@web"? hosts: db-1, mail, web-1, web-2, web-10; tags: @db, @eu, @us, @web` {
		t.Errorf("hint: %v: %q", err, nm.Hint())
	}
	for _, bad := range []string{"", "a,,b", "@", "web-[", " , "} {
		if _, err := ParseSelector("--on", bad); err == nil {
			t.Errorf("ParseSelector(%q) accepted", bad)
		}
	}
}
