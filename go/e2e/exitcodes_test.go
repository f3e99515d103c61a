package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
)

// readmeExitCodes reads the table under "## Exit codes" in README.md:
// code → meaning.
func readmeExitCodes(t *testing.T) map[int]string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Exit codes\n")
	if !ok {
		t.Fatal(`README.md has no "## Exit codes" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	codes := map[int]string{}
	for _, m := range regexp.MustCompile(`(?m)^\| (\d+) \| (.+) \|$`).FindAllStringSubmatch(section, -1) {
		n, _ := strconv.Atoi(m[1])
		codes[n] = m[2]
	}
	if len(codes) < 5 {
		t.Fatalf("README.md's exit codes: %v", codes)
	}
	return codes
}

// Every command form exits with the code README.md's table gives for what
// happened: the same situation, the same code, whether the hosts are
// named, selected with --on, dry-run, listed or reached by exec.
func TestExitCodes(t *testing.T) {
	table := readmeExitCodes(t)
	f := newFleet(t, hosts("host1")...)
	down := host(f, "host1")
	// Nothing listens on port 1: the host cannot be reached.
	down.Deployment.SSH.Host = "127.0.0.1"
	down.Deployment.SSH.Opts = []string{"-p", "1", "-o", "ConnectTimeout=5"}
	good := newRunner(t, map[string]*config.Host{"host1": host(f, "host1"), "host2": down})

	// One inventory with a host it cannot decode: nothing is deployed,
	// whatever the command line (the "ahorn").
	bad := newRunner(t, map[string]*config.Host{"host1": host(f, "host1")})
	data, _ := os.ReadFile(bad.inv)
	os.WriteFile(bad.inv, bytes.Replace(data, []byte(`"deploy-method": "copy"`), []byte(`"deploy-method": "rsync"`), 1), 0o600)

	planFile := filepath.Join(t.TempDir(), "plan.json")
	seen := map[int]bool{}
	for _, c := range []struct {
		r    *runner
		args []string
		code int
	}{
		// Success.
		{good, []string{"host1:deploy-secrets"}, 0},
		{good, []string{"--on", "host1", "deploy-secrets"}, 0},
		{good, []string{"--dry", "host1"}, 0},
		{good, []string{"--on", "host1", "--dry"}, 0},
		{good, []string{"--list-all"}, 0},
		{good, []string{"exec", "--on", "host1", "--", "true"}, 0},
		{good, []string{"--version"}, 0},
		{good, []string{"plan", "host1", "-o", planFile}, 0},
		{good, []string{"apply", planFile}, 0},
		// Nothing deployed: the inventory is invalid.
		{bad, []string{"host1"}, 1},
		{bad, []string{"host1:deploy-secrets"}, 1},
		{bad, []string{"--dry", "host1"}, 1},
		{bad, []string{"--on", "host1"}, 1},
		{bad, []string{"--on", "host1", "--dry"}, 1},
		{bad, []string{"--list-all"}, 1},
		{bad, []string{"exec", "--on", "host1", "--", "true"}, 1},
		{bad, []string{"plan", "host1", "-o", planFile}, 1},
		{good, []string{"apply", planFile + ".none"}, 1},
		// Usage: an unknown task, host, step or flag, a bad value.
		{good, []string{"hots1"}, 2},
		{good, []string{"--dry", "hots1"}, 2},
		{good, []string{"--on", "hots1"}, 2},
		{good, []string{"--on", "host1", "deploy-secret"}, 2},
		{good, []string{"host1:deploy-secret"}, 2},
		{good, []string{"exec", "--on", "hots1", "--", "true"}, 2},
		{good, []string{"plan", "hots1", "-o", planFile}, 2},
		{good, []string{"apply"}, 2},
		{good, []string{"--frobnicate", "host1"}, 2},
		{good, []string{"host1", "REBUILD_ACTION=swtich"}, 2},
		{good, []string{"--batch", "x", "all"}, 2},
		{bad, []string{"--frobnicate", "host1"}, 2},
		// A host failed; the others ran.
		{good, []string{"host2:deploy-secrets"}, 3},
		{good, []string{"-p", "host1:deploy-secrets", "host2:deploy-secrets"}, 3},
		{good, []string{"--on", "host*", "deploy-secrets"}, 3},
		{good, []string{"--batch", "1", "--on", "host*", "deploy-secrets"}, 3},
		{good, []string{"exec", "--on", "host2", "--", "true"}, 3},
		{good, []string{"plan", "host2", "-o", planFile}, 3},
		{good, []string{"apply", planFile}, 3}, // host1 runs another system now
		// -x: the failed command's own exit status.
		{good, []string{"exec", "-x", "--on", "host1", "--", "sh", "-c", "exit 7"}, 7},
	} {
		res := c.r.run(c.args...)
		if res.code != c.code {
			t.Errorf("%q: exit %d, want %d\n%s", c.args, res.code, c.code, res)
			continue
		}
		if c.code != 7 {
			seen[c.code] = true
			if _, ok := table[c.code]; !ok {
				t.Errorf("%q: exit %d, which README.md's table lacks", c.args, c.code)
			}
		}
	}

	// Interrupted.
	res := good.runCtx(t.Context(), func(cmd *exec.Cmd) {
		go func() {
			time.Sleep(2 * time.Second)
			syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		}()
	}, "exec", "--on", "host1", "--", "sleep", "30")
	if res.code != 130 {
		t.Errorf("interrupted exec: exit %d, want 130\n%s", res.code, res)
	}
	seen[res.code] = true
	for code, meaning := range table {
		if !seen[code] {
			t.Errorf("README.md's exit code %d (%s) was never seen", code, meaning)
		}
	}
}
