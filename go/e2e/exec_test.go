package e2e

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// execFleet starts fake hosts and an inventory that reaches them.
func execFleet(t *testing.T, names ...string) (*fakehost.Fleet, map[string]*config.Host) {
	t.Helper()
	f := newFleet(t, hosts(names...)...)
	hs := map[string]*config.Host{}
	for _, h := range f.Hosts() {
		hs[h.Name] = host(f, h.Name)
	}
	return f, hs
}

// linesOf returns the lines of out that start with "[host] ", without it.
func linesOf(out, host string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "["+host+"] "); ok {
			lines = append(lines, rest)
		}
	}
	return lines
}

// noSessions waits until the host has no ssh session left: lollypops
// closed its shared connection (left alone, it would stay ControlPersist,
// 60 s, longer than waitFor waits).
func noSessions(t *testing.T, h *fakehost.Host) {
	t.Helper()
	waitFor(t, func() bool {
		return strings.TrimSpace(sh(t, h, "pgrep -af '^sshd: [a-z_]' || true")) == ""
	})
}

// A command runs on every selected host, its stdout and stderr prefixed
// with the host, each on its own stream; a command failing on one host
// fails the run with 3 and the summary gives its exit status, the others
// succeed. Each host authenticates once.
func TestExecFailingOnOneHost(t *testing.T) {
	f, hs := execFleet(t, "host1", "host2", "host3")
	r := newRunner(t, hs)
	res := r.run("exec", "--on", "*", "--", "sh", "-c",
		`echo "out $(hostname)"; echo "err $(hostname)" >&2; printf 'no newline'; test "$(hostname)" != host2 || exit 7`)
	if res.code != 3 {
		t.Fatalf("exit %d, want 3\n%s", res.code, res)
	}
	for _, h := range f.Hosts() {
		if got, want := linesOf(res.stdout, h.Name), []string{"out " + h.Name, "no newline"}; !slices.Equal(got, want) {
			t.Errorf("%s: stdout lines %q, want %q\n%s", h.Name, got, want, res)
		}
		if got, want := linesOf(res.stderr, h.Name), []string{"err " + h.Name}; !slices.Equal(got, want) {
			t.Errorf("%s: stderr lines %q, want %q\n%s", h.Name, got, want, res)
		}
		want := h.Name + " ok"
		if h.Name == "host2" {
			want = "host2 failed"
		}
		got := summaryLine(res, h.Name)
		if !strings.HasPrefix(got, want) {
			t.Errorf("summary: %q, want %q...\n%s", got, want, res)
		}
		if wantExit := map[bool]string{true: "exit 7", false: "exit 0"}[h.Name == "host2"]; !strings.HasSuffix(got, wantExit) {
			t.Errorf("summary: %q, want ...%q", got, wantExit)
		}
		if n := authCount(t, h); n != 1 {
			t.Errorf("%s: %d ssh logins, want 1", h.Name, n)
		}
		noSessions(t, h)
	}
	if !strings.Contains(res.stderr, "summary: 2 of 3 hosts ok") {
		t.Errorf("summary header:\n%s", res.stderr)
	}
	// With -x, the failed command's own exit status.
	res = r.run("exec", "--on", "host[12]", "-x", "--", "sh", "-c", `test "$(hostname)" != host2 || exit 7`)
	if res.code != 7 {
		t.Errorf("-x: exit %d, want 7\n%s", res.code, res)
	}
	res = r.run("exec", "--on", "host1,host3", "--", "true")
	if res.code != 0 || !strings.Contains(res.stderr, "summary: 2 of 2 hosts ok") || summaryLine(res, "host2") != "" {
		t.Errorf("host1,host3: %s", res)
	}

	// By default every host runs at once: each waits (at most 30 s) until
	// all three have started. (The hosts share /tmp with this machine.)
	dir := t.TempDir()
	res = r.run("exec", "--on", "*", "--", "sh", "-c",
		`touch "$1/$(hostname)"; i=0; while [ "$(ls "$1" | wc -l)" -lt 3 ]; do i=$((i+1)); [ $i -lt 300 ] || exit 9; sleep 0.1; done`, "sh", dir)
	if res.code != 0 {
		t.Errorf("all at once: %s", res)
	}
	// -C 1: one host after the other, never two in the critical section.
	res = r.run("exec", "--on", "*", "-C", "1", "--", "sh", "-c",
		`mkdir "$1/busy" || exit 9; sleep 0.5; rmdir "$1/busy"`, "sh", dir)
	if res.code != 0 {
		t.Errorf("-C 1: %s", res)
	}
}

// The command's words arrive as given: spaces, quotes, $ and globs are not
// interpreted by any shell on the way; stdin is empty.
func TestExecArgumentsArriveLiterally(t *testing.T) {
	_, hs := execFleet(t, "host1")
	r := newRunner(t, hs)
	args := []string{"two words", `it's "quoted"`, "$HOME", "*", "a\\b", "--", "-x", ""}
	res := r.run(append([]string{"exec", "--on", "host1", "--", "printf", "<%s>\\n"}, args...)...)
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	var want []string
	for _, a := range args {
		want = append(want, "<"+a+">")
	}
	if got := linesOf(res.stdout, "host1"); !slices.Equal(got, want) {
		t.Errorf("arguments:\n got %q\nwant %q", got, want)
	}
	// A shell when asked for; stdin is /dev/null, not the caller's.
	res = r.run("exec", "--on", "host1", "--", "sh", "-c", `echo "$(hostname):$((1+2))"; cat; echo end`)
	if got := linesOf(res.stdout, "host1"); res.code != 0 || !slices.Equal(got, []string{"host1:3", "end"}) {
		t.Errorf("shell: %q\n%s", got, res)
	}
}

// A host with sudo enabled runs the command through its sudo, as root,
// logged in as its ssh user.
func TestExecSudo(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "host1", Users: []fakehost.UserSpec{{Name: "deploy", Sudo: true}}},
		fakehost.HostSpec{Name: "host2", Users: []fakehost.UserSpec{{Name: "deploy"}}})
	hs := map[string]*config.Host{}
	for _, h := range f.Hosts() {
		c := host(f, h.Name)
		c.Deployment.SSH.User = ptr("deploy")
		hs[h.Name] = c
	}
	hs["host1"].Deployment.Sudo.Enable = true
	hs["host1"].Deployment.Sudo.Opts = []string{"-n"}
	res := newRunner(t, hs).run("exec", "--on", "host1,host2", "--", "sh", "-c", `echo "$(id -un) ${SUDO_USER:-nosudo}"`)
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	if got := linesOf(res.stdout, "host1"); !slices.Equal(got, []string{"root deploy"}) {
		t.Errorf("host1 (sudo): %q\n%s", got, res)
	}
	if got := linesOf(res.stdout, "host2"); !slices.Equal(got, []string{"deploy nosudo"}) {
		t.Errorf("host2 (no sudo): %q\n%s", got, res)
	}
}

// An unreachable host fails alone, with the connection error and a hint;
// the others run the command.
func TestExecUnreachableHost(t *testing.T) {
	f, hs := execFleet(t, "host1", "host2", "down")
	if err := f.Host("down").Stop(); err != nil {
		t.Fatal(err)
	}
	res := newRunner(t, hs).run("exec", "--on", "*", "--", "hostname")
	if res.code != 3 {
		t.Errorf("exit %d, want 3\n%s", res.code, res)
	}
	for _, name := range []string{"host1", "host2"} {
		if got := linesOf(res.stdout, name); !slices.Equal(got, []string{name}) {
			t.Errorf("%s: %q\n%s", name, got, res)
		}
		if got := summaryLine(res, name); !strings.HasPrefix(got, name+" ok") {
			t.Errorf("summary: %q", got)
		}
	}
	got := summaryLine(res, "down")
	if !strings.HasPrefix(got, "down failed") || !strings.Contains(got, "cannot connect to root@down") {
		t.Errorf("summary: %q\n%s", got, res)
	}
	if !strings.Contains(res.stderr, "lollypops: down: cannot connect to root@down") || !strings.Contains(res.stderr, "lollypops: hint: ") {
		t.Errorf("no error and hint for down:\n%s", res)
	}
}

// An interrupt stops the commands on every host (they do not go on
// running there), closes the connections and exits 130; the summary says
// which hosts were interrupted. The terminal's Ctrl-C reaches the whole
// process group; a SIGTERM only lollypops.
func TestExecInterrupt(t *testing.T) {
	f, hs := execFleet(t, "host1", "host2")
	r := newRunner(t, hs)
	sleeping := func(h *fakehost.Host) bool {
		out, err := h.Exec(context.Background(), "sh", "-c", "pgrep -f '^sleep 1234$' || true")
		if err != nil {
			t.Fatal(err)
		}
		return len(out) > 0
	}
	for _, c := range []struct {
		name  string
		group bool
		sig   syscall.Signal
	}{{"SIGINT to the group", true, syscall.SIGINT}, {"SIGTERM", false, syscall.SIGTERM}} {
		res := r.runCtx(context.Background(), func(cmd *exec.Cmd) {
			waitFor(t, func() bool { return sleeping(f.Host("host1")) && sleeping(f.Host("host2")) })
			pid := cmd.Process.Pid
			if c.group {
				pid = -pid
			}
			syscall.Kill(pid, c.sig)
		}, "exec", "--on", "*", "--", "sleep", "1234")
		if res.code != 130 {
			t.Errorf("%s: exit %d, want 130\n%s", c.name, res.code, res)
		}
		for _, h := range f.Hosts() {
			if got := summaryLine(res, h.Name); !strings.HasPrefix(got, h.Name+" failed") || !strings.HasSuffix(got, "interrupted") {
				t.Errorf("%s: summary: %q\n%s", c.name, got, res)
			}
			waitFor(t, func() bool { return !sleeping(h) })
			noSessions(t, h)
		}
		if !strings.Contains(res.stderr, "lollypops: interrupted: stopping the commands") {
			t.Errorf("%s: %s", c.name, res)
		}
	}
}
