//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// lollypops plan writes a plan (0600, no value, no plain checksum) and
// prints it; lollypops apply deploys it to the hosts that still match it
// and refuses, alone, a host whose system changed in the flake, whose
// secret's value changed, or that someone deployed since the plan;
// --confirm answered no applies nothing.
func TestPlanApply(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2")...)
	h1, h2 := f.Host("host1"), f.Host("host2")
	dir := t.TempDir()
	value := func(host, v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, host), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	inventory := func(flakePath string) map[string]*config.Host {
		inv := map[string]*config.Host{}
		for _, n := range []string{"host1", "host2"} {
			c := host(f, n)
			c.Flake = flakePath
			s := secret("key", "cat "+filepath.Join(dir, n), "/run/keys/key")
			s.RestartUnits, s.ReloadUnits = []string{"app.service"}, []string{"sshd.service"}
			c.Secrets.Files = []config.Secret{s}
			inv[n] = c
		}
		return inv
	}
	// Made for this run: no file of the repository holds them.
	n := rand.Uint64()
	values := []string{fmt.Sprintf("PLAN-%x-ONE", n), fmt.Sprintf("PLAN-%x-TWO", n), fmt.Sprintf("PLAN-%x-THREE", n)}
	value("host1", values[0])
	value("host2", values[1])
	r := newRunner(t, inventory(flake))
	plans := t.TempDir()
	noSecrets := func(what, text string) {
		t.Helper()
		for _, v := range values {
			sum := fmt.Sprintf("%x", sha256.Sum256([]byte(v)))
			if strings.Contains(text, v) || strings.Contains(text, sum) {
				t.Errorf("%s holds the value %q or its plain checksum", what, v)
			}
		}
	}
	before1, before2 := systemOf(t, h1), systemOf(t, h2)

	// Neither a value nor its plain checksum is in any process's argv or
	// environment, or in a run directory, while plan and apply run.
	leaks := []*leakWatch{watchLeaks(values[1], ""), watchLeaks(fmt.Sprintf("%x", sha256.Sum256([]byte(values[1]))), "")}
	defer func() {
		for _, w := range leaks {
			if found, scans := w.done(); len(found) > 0 || scans < 2 {
				t.Errorf("a value or its checksum leaked (%d scans): %q", scans, found)
			}
		}
	}()

	// The plan: written 0600, printed, nothing activated.
	p1 := filepath.Join(plans, "plan.json")
	res := r.run("plan", "host1", "host2", "-o", p1)
	if res.code != 0 {
		t.Fatalf("plan: %s", res)
	}
	fi, err := os.Stat(p1)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("plan file: %v %v", fi, err)
	}
	data, _ := os.ReadFile(p1)
	noSecrets("the plan", string(data))
	noSecrets("plan's output", res.output())
	var doc struct {
		Version int
		Action  string
		Hosts   map[string]struct {
			System, Current string
			Secrets         []struct {
				Name, Checksum string
				Changes        bool
			}
			RestartUnits []string `json:"restart_units"`
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("plan: %v\n%s", err, data)
	}
	p2 := doc.Hosts["host2"]
	if doc.Version != 1 || doc.Action != "switch" || len(doc.Hosts) != 2 || p2.Current != before2.current || p2.System == before2.current ||
		len(p2.Secrets) != 1 || !p2.Secrets[0].Changes || !strings.HasPrefix(p2.Secrets[0].Checksum, "hmac-sha256:") ||
		strings.Join(p2.RestartUnits, ",") != "app.service" {
		t.Errorf("plan: %s", data)
	}
	for _, want := range []string{
		"host1: switch, new system, new kernel or initrd (in use after a reboot)\n",
		"  running  " + before2.current + "\n",
		"  + curl: 8.5.0\n",
		`  secrets: 1, 1 change: "key" (/run/keys/key)` + "\n",
		"  restarts (if running): app.service\n",
		"  reloads (if running): sshd.service\n",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("the plan's rendering lacks %q:\n%s", want, res)
		}
	}
	for _, c := range []struct {
		h      *fakehost.Host
		before system
	}{{h1, before1}, {h2, before2}} {
		if after := systemOf(t, c.h); after.current != c.before.current || len(activations(t, c.h)) != 0 {
			t.Errorf("%s: the plan activated something", c.h.Name)
		}
	}

	// host1's system changes in the flake: apply refuses host1 alone and
	// deploys host2, exactly as planned.
	changed := map[string]fakehost.System{
		"host1": {Kernel: deployedKernel, Packages: []string{"hello-2.12.1"}},
		"host2": {Kernel: deployedKernel, Packages: diffPackages},
	}
	src := filepath.Join(t.TempDir(), "source")
	if err := fakehost.WriteFlake(src, changed); err != nil {
		t.Fatal(err)
	}
	flake2, err := storeAdd(src)
	if err != nil {
		t.Fatal(err)
	}
	r2 := newRunner(t, inventory(flake2))
	res = r2.run("apply", p1)
	if res.code != 3 {
		t.Fatalf("apply after the flake changed: %s", res)
	}
	if !strings.Contains(res.stderr, "lollypops: host1: refused: the new system (") || !strings.Contains(res.stderr, "differs from the plan") ||
		!strings.Contains(res.stderr, "run lollypops plan again") {
		t.Errorf("host1 not refused with its reason:\n%s", res)
	}
	if l := summaryLine(res, "host1"); !strings.Contains(l, "failed") || !strings.Contains(l, "plan") {
		t.Errorf("host1's summary: %q\n%s", l, res)
	}
	if l := summaryLine(res, "host2"); !strings.HasPrefix(l, "host2 ok") {
		t.Errorf("host2's summary: %q\n%s", l, res)
	}
	if got := systemOf(t, h2).current; got != p2.System {
		t.Errorf("host2 runs %s, the plan's system is %s", got, p2.System)
	}
	if got := sh(t, h2, "cat /run/keys/key"); got != values[1] {
		t.Errorf("host2's secret: %q", got)
	}
	if after := systemOf(t, h1); after.current != before1.current || len(activations(t, h1)) != 0 {
		t.Errorf("host1 changed: %+v", after)
	}
	if got := sh(t, h1, "ls /run/keys 2>/dev/null || true"); got != "" {
		t.Errorf("host1 got secrets: %q", got)
	}
	noSecrets("apply's output", res.output())

	// host1's secret changes after its plan: refused, nothing written.
	p3 := filepath.Join(plans, "host1.json")
	if res = r.run("plan", "--on", "host1", "-o", p3); res.code != 0 {
		t.Fatalf("plan host1: %s", res)
	}
	value("host1", values[2])
	res = r.run("apply", p3)
	if res.code != 3 || !strings.Contains(res.output(), `refused: secret "key" differs from the plan; nothing was written`) ||
		!strings.Contains(res.output(), "never matches a plan") {
		t.Errorf("apply after the secret changed: %s", res)
	}
	if after := systemOf(t, h1); after.current != before1.current || len(activations(t, h1)) != 0 {
		t.Errorf("host1 changed: %+v", after)
	}
	if got := sh(t, h1, "ls /run/keys 2>/dev/null || true"); got != "" {
		t.Errorf("host1 got secrets: %q", got)
	}
	noSecrets("apply's output", res.output())

	// --confirm answered no: nothing applied, nothing asked before the
	// checks.
	value("host1", values[0])
	if res = r.run("plan", "host1", "-o", p3); res.code != 0 {
		t.Fatalf("plan host1: %s", res)
	}
	// A secret added to host1's configuration since: refused before any
	// step.
	more := inventory(flake)
	more["host1"].Secrets.Files = append(more["host1"].Secrets.Files, secret("extra", "echo extra", "/run/keys/extra"))
	res = newRunner(t, more).run("apply", p3)
	if res.code != 3 || !strings.Contains(res.stderr, `lollypops: host1: refused: secret "extra" (/run/keys/extra) is not in the plan`) ||
		strings.Contains(res.output(), "[host1:") {
		t.Errorf("apply after a secret was added: %s", res)
	}

	code, screen := r.answer("n\n", "apply", "--confirm", p3)
	if code != 1 || !strings.Contains(screen, "lollypops: apply the plan to 1 host (host1)? [y/N]") ||
		!strings.Contains(screen, "not confirmed: nothing was applied") {
		t.Errorf("--confirm, no: exit %d\n%s", code, screen)
	}
	if after := systemOf(t, h1); after.current != before1.current || len(activations(t, h1)) != 0 {
		t.Errorf("host1 changed after no: %+v", after)
	}

	// Someone deploys host1 after the plan: refused.
	if res = r.run("host1"); res.code != 0 {
		t.Fatalf("deploy: %s", res)
	}
	res = r.run("apply", p3)
	if res.code != 3 || !strings.Contains(res.stderr, "lollypops: host1: refused: the system the host runs (") {
		t.Errorf("apply after a deploy: %s", res)
	}

	// --confirm without a terminal: nothing applied.
	if res = r.run("plan", "host1", "-o", p3); res.code != 0 {
		t.Fatalf("plan host1: %s", res)
	}
	deployed, acts := systemOf(t, h1).current, len(activations(t, h1))
	cmd := exec.Command(filepath.Join(bin, "lollypops"), append(r.source(), "apply", "--confirm", p3)...)
	cmd.Dir, cmd.Env = r.dir, append(os.Environ(), "XDG_CACHE_HOME="+r.cacheHome())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no controlling terminal
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(stderr.String(), "lollypops: apply --confirm: no terminal to ask on") {
		t.Errorf("--confirm without a terminal: %v\n%s", err, stderr.String())
	}
	if systemOf(t, h1).current != deployed || len(activations(t, h1)) != acts {
		t.Errorf("host1 changed after --confirm without a terminal")
	}

	// --confirm answered yes applies; the report names the plan.
	report := filepath.Join(t.TempDir(), "run.json")
	// On a terminal, apply shows a deploy's live view.
	if code, screen := r.answer("y\n", "apply", "--confirm", "--report", report, p3); code != 0 ||
		!strings.Contains(screen, "summary: 1 of 1 hosts ok") || !strings.Contains(screen, "✓\x1b[m host1  done") {
		t.Errorf("--confirm, yes: exit %d\n%q", code, screen)
	}
	data, _ = os.ReadFile(p3)
	rep, _ := os.ReadFile(report)
	if want := fmt.Sprintf(`"plan": "sha256:%x"`, sha256.Sum256(data)); !strings.Contains(string(rep), want) {
		t.Errorf("the report lacks %s:\n%s", want, rep)
	}
	if got := sh(t, h1, "cat /run/keys/key"); got != values[0] {
		t.Errorf("host1's secret: %q", got)
	}
}

// answer runs lollypops on a pseudo-terminal, as from an interactive
// shell, and types input once it asks [y/N]. It returns the exit code and
// everything written to the terminal.
func (r *runner) answer(input string, args ...string) (int, string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "lollypops"), append(r.source(), args...)...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+r.cacheHome(), "TERM=xterm-256color")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: ptyCols, Rows: ptyRows})
	if err != nil {
		r.t.Fatal(err)
	}
	var buf bytes.Buffer
	typed := false
	chunk := make([]byte, 4096)
	for {
		n, rerr := tty.Read(chunk)
		buf.Write(chunk[:n])
		if !typed && strings.Contains(buf.String(), "[y/N]") {
			typed = true
			io.WriteString(tty, input)
		}
		if rerr != nil {
			if !errors.Is(rerr, syscall.EIO) && !errors.Is(rerr, io.EOF) {
				r.t.Fatalf("reading the terminal: %v", rerr)
			}
			break
		}
	}
	werr := cmd.Wait()
	tty.Close()
	code := 0
	if ee, ok := werr.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if werr != nil {
		r.t.Fatal(werr)
	}
	return code, strings.ReplaceAll(buf.String(), "\r\n", "\n")
}

// With the hosts of a flake (--flake, as the app runs): the flake's
// source changes for every host when one host's configuration changes,
// and only that host is refused.
func TestPlanApplyFlake(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2")...)
	systems, configs := tokenHosts(t, f)
	r := flakeRunner(t, systems, configs)
	p := filepath.Join(t.TempDir(), "plan.json")
	res := r.run("plan", "all", "-o", p)
	if res.code != 0 || !strings.Contains(res.stdout, `secrets: 1, 1 change: "token" (/run/keys/token)`) {
		t.Fatalf("plan all: %s", res)
	}
	systems["host1"] = fakehost.System{Kernel: deployedKernel, Packages: []string{"hello-2.12.1"}}
	if err := fakehost.WriteFlakeWithConfig(r.flake, systems, configs); err != nil {
		t.Fatal(err)
	}
	res = r.run("apply", p)
	if res.code != 3 || !strings.Contains(res.stderr, "lollypops: host1: refused: the new system (") ||
		!strings.HasPrefix(summaryLine(res, "host2"), "host2 ok") {
		t.Errorf("apply after host1 changed in the flake: %s", res)
	}
	if got := sh(t, f.Host("host2"), "cat /run/keys/token"); got != "token-of-host2\n" {
		t.Errorf("host2's secret: %q", got)
	}
	if got := sh(t, f.Host("host1"), "cat /run/keys/token 2>/dev/null || true"); got != "" {
		t.Errorf("host1 got its secret: %q", got)
	}
}
