package lock

import (
	"errors"
	"strings"
	"testing"
)

func TestRefusal(t *testing.T) {
	cases := []struct {
		name  string
		lines []string
		msg   string
		hint  string
	}{
		{"record", []string{"laptop:/tmp/lollypops-1", "alice", "laptop", "1234", "2026-12-02 03:40:12 UTC"},
			"host1: being deployed by alice@laptop since 2026-12-02 03:40:12 UTC (pid 1234)",
			"wait for that run to end, or stop it (pid 1234 on laptop); a run that died frees the lock when its ssh session ends, at the latest 90s after its connection went quiet (/run/lollypops/holder on the host names the run)"},
		{"no record", nil, "host1: being deployed by another run", "wait for that run to end, or stop it; "},
		{"control characters", []string{"r", "al\x1b[31mice", "lap\ttop", "1", "now"},
			"host1: being deployed by al?[31mice@lap?top since now (pid 1)", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &HeldError{Target: "host1", Holder: parseHolder(c.lines), Dir: RootDir}
			if e.Error() != c.msg {
				t.Errorf("message:\n got %q\nwant %q", e.Error(), c.msg)
			}
			if !strings.HasPrefix(e.Hint(), c.hint) || strings.Contains(e.Hint(), "\n") {
				t.Errorf("hint: %q", e.Hint())
			}
		})
	}
}

func TestScriptError(t *testing.T) {
	cases := []struct{ stderr, msg, hint string }{
		{"sh: 1: flock: not found\n", "deploy lock on host1: sh: 1: flock: not found", "flock (util-linux)"},
		{"Warning: Permanently added 'x'\nlollypops: lock directory: /run/lollypops has owner uid 1000 and mode drwxrwxrwx; it must be owned by uid 0 and writable by no one else; only lollypops uses /run/lollypops: remove it\n",
			"deploy lock on host1: lock directory: /run/lollypops has owner uid 1000", "refuses a directory another user could change"},
		{"", "deploy lock on host1: ssh: exit status 255", "keeps other runs off host1"},
		{"lollypops: sudo refused the password (user deploy)\n", "deploy lock on host1: sudo refused the password (user deploy)", "tried once there"},
		{"sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper\nsudo: a password is required\n",
			"deploy lock on host1: sudo: a terminal is required", "--ask-sudo-password or --sudo-password-command"},
	}
	for _, c := range cases {
		err := scriptError("host1", errors.New("ssh: exit status 255"), c.stderr)
		var le *Error
		if !errors.As(err, &le) || !strings.HasPrefix(err.Error(), c.msg) || !strings.Contains(le.Hint(), c.hint) {
			t.Errorf("%q: %v (hint %q)", c.stderr, err, le.Hint())
		}
	}
}
