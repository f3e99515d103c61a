package execx

import (
	"slices"
	"testing"
)

// A script handed to a shell is shown by its name wherever the shell
// sits in argv; other -c arguments stay as they are.
func TestShown(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"ssh", "host", "sudo", "sh", "-c", "set -u; ...", "lollypops-guard", "run"},
			[]string{"ssh", "host", "sudo", "sh", "-c", "<lollypops-guard script>", "lollypops-guard", "run"}},
		{[]string{"systemd-run", "--", "/bin/sh", "-c", "...", "lollypops-watch"},
			[]string{"systemd-run", "--", "/bin/sh", "-c", "<lollypops-watch script>", "lollypops-watch"}},
		{[]string{"sh", "-c", "echo hi", "x"}, []string{"sh", "-c", "echo hi", "x"}},
		{[]string{"sh", "-c"}, []string{"sh", "-c"}},
	} {
		if got := Shown(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Shown(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
