package secrets

import (
	"os/exec"
	"slices"
	"testing"
)

func TestCommandArgv(t *testing.T) {
	progs := programs{}
	for _, c := range []struct {
		cmd  string
		want []string
	}{
		{"cat /etc/hostname", []string{"cat", "/etc/hostname"}},
		{"cat '/etc/host name' \"x y\"", []string{"cat", "/etc/host name", "x y"}},
		{"cat /etc/hostname | tr a b", nil},
		{"cat $HOME/x", nil},
		{"cat \"$HOME\"", nil},
		{"cat $(echo x)", nil},
		{"cat /etc/*", nil},
		{"cat ~/x", nil},
		{"FOO=1 cat x", nil},
		{"cat x > y", nil},
		{"cat x; cat y", nil},
		{"cat x && cat y", nil},
		{"echo x", nil},
		{"printf %s x", nil},
		{"exit 3", nil},
		{"lollypops-no-such-program x", nil},
		{"if true; then cat x; fi", nil},
		{"cat 'unterminated", nil},
	} {
		got, program := commandArgv(c.cmd, progs)
		want := c.want
		if want == nil {
			want = []string{"sh", "-c", c.cmd}
		}
		if !slices.Equal(got, want) {
			t.Errorf("commandArgv(%q) = %q, want %q", c.cmd, got, want)
		}
		if p, err := exec.LookPath(want[0]); err != nil || program != p {
			t.Errorf("commandArgv(%q): program %q, want %q (%v)", c.cmd, program, p, err)
		}
	}
}
