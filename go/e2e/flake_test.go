package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// The runner evaluating a flake's hosts itself (--flake, as the app runs
// it): only the hosts a command needs, and a host that does not evaluate
// fails alone. The flake's hosts stand in for NixOS configurations that
// import lollypops' module: each offers the inventory entry the module
// would (config.lollypops.inventory-entry), with the fake host's system.

// entryConfig is the `config` of a host whose lollypops options project to
// h, as the module's inventory-entry would.
func entryConfig(t *testing.T, h *config.Host) string {
	t.Helper()
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return "{ lollypops.inventory-entry = { name, flake }: builtins.fromJSON " + nixStr(string(data)) + " // { inherit flake; }; }"
}

func nixStr(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `${`, `\${`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// flakeRunner writes a flake with the hosts' systems and configs and
// returns a runner that passes --flake, as the app does.
func flakeRunner(t *testing.T, systems map[string]fakehost.System, configs map[string]string) *runner {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "fleet")
	if err := fakehost.WriteFlakeWithConfig(src, systems, configs); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	os.Mkdir(work, 0o755)
	return &runner{t: t, dir: work, flake: src}
}

// evalFleet: host1 and host2 deploy; "trap" throws when evaluated;
// "plain" does not import lollypops' module.
func evalFleet(t *testing.T) (*fakehost.Fleet, *runner) {
	f := newFleet(t, hosts("host1", "host2")...)
	systems, configs := tokenHosts(t, f)
	configs["trap"] = `{ lollypops.inventory-entry = { name, flake }: throw "trap was evaluated"; }`
	configs["plain"] = `{ services = { }; }`
	return f, flakeRunner(t, systems, configs)
}

// tokenHosts are the fleet's hosts in a flake: the flake's system, and
// one secret, /run/keys/token = "token-of-<host>".
func tokenHosts(t *testing.T, f *fakehost.Fleet) (map[string]fakehost.System, map[string]string) {
	t.Helper()
	systems := map[string]fakehost.System{}
	configs := map[string]string{}
	for _, h := range f.Hosts() {
		systems[h.Name] = fakehost.System{Kernel: deployedKernel}
		c := host(f, h.Name)
		c.Secrets.Files = []config.Secret{secret("token", "echo token-of-"+h.Name, "/run/keys/token")}
		configs[h.Name] = entryConfig(t, c)
	}
	return systems, configs
}

// gated makes a host's evaluation wait for url, fetched as a fixed-output
// file of hash sum (allowed in a pure evaluation).
func gated(config, url string, sum [32]byte) string {
	gate := fmt.Sprintf(`builtins.readFile (builtins.fetchurl { url = %s; sha256 = "%x"; })`, nixStr(url), sum)
	return strings.Replace(config, "{ name, flake }: ", "{ name, flake }: builtins.seq ("+gate+") ", 1)
}

func TestFlakeEvaluatesOnlyWhatTheCommandNeeds(t *testing.T) {
	f, r := evalFleet(t)
	res := r.run("host1")
	if res.code != 0 {
		t.Fatalf("host1 alone should deploy without evaluating the others:\n%s", res)
	}
	if strings.Contains(res.output(), "trap") || strings.Contains(res.output(), "plain") {
		t.Errorf("deploying host1 evaluated other hosts:\n%s", res)
	}
	h1, h2 := f.Host("host1"), f.Host("host2")
	if got := sh(t, h1, "cat /run/keys/token"); got != "token-of-host1\n" {
		t.Errorf("host1's secret: %q", got)
	}
	if k := systemOf(t, h1).kernel; k != deployedKernel {
		t.Errorf("host1 runs kernel %q, want the flake's %q", k, deployedKernel)
	}
	// The flake deployed is the flake's own copy in the store, which the
	// runner locked: the host's config-dir points at it.
	link := strings.TrimSpace(sh(t, h1, "readlink /var/src/lollypops/flake"))
	if !strings.HasPrefix(link, "/nix/store/") || sh(t, h1, "test -e "+link+"/flake.nix && echo yes") != "yes\n" {
		t.Errorf("config-dir/flake -> %q, want the flake's store path", link)
	}
	if sh(t, h2, "test -e /run/keys/token && echo yes || echo no") != "no\n" {
		t.Error("host2 was deployed too")
	}

	// A step of one host, and a selection by name and glob: the same.
	for _, args := range [][]string{{"host2:deploy-secrets"}, {"--on", "host*", "deploy-secrets"}, {"--dry", "host1"}} {
		res := r.run(args...)
		if res.code != 0 || strings.Contains(res.output(), "trap") {
			t.Errorf("%q should not evaluate the trap:\n%s", args, res)
		}
	}
	if got := sh(t, h2, "cat /run/keys/token"); got != "token-of-host2\n" {
		t.Errorf("host2's secret: %q", got)
	}

	// Listing evaluates every host: the trap is reported, the others are
	// listed, the host without the module is left out with a warning.
	res = r.run("--list-all")
	if res.code != 3 {
		t.Errorf("--list-all with a host that does not evaluate: exit %d, want 3\n%s", res.code, res)
	}
	for _, want := range []string{"host1:deploy-secrets", "host2:rebuild"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("--list-all lacks %q:\n%s", want, res)
		}
	}
	for _, want := range []string{"lollypops: trap: not evaluated: trap was evaluated",
		"nixosConfigurations.plain does not import lollypops.nixosModules.lollypops"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("--list-all should say %q:\n%s", want, res)
		}
	}
}

func TestFlakeHostThatDoesNotEvaluateBlocksNoOther(t *testing.T) {
	f, r := evalFleet(t)
	report := filepath.Join(r.dir, "report.json")
	res := r.run("--report", report, "all")
	t.Logf("all:\n%s", res)
	if res.code != 3 {
		t.Fatalf("all with a broken host: exit %d, want 3\n%s", res.code, res)
	}
	for _, h := range f.Hosts() {
		if line := summaryLine(res, h.Name); !strings.HasPrefix(line, h.Name+" ok") {
			t.Errorf("%s should deploy although trap does not evaluate: %q\n%s", h.Name, line, res)
		}
		if got := sh(t, h, "cat /run/keys/token"); got != "token-of-"+h.Name+"\n" {
			t.Errorf("%s's secret: %q", h.Name, got)
		}
	}
	if line := summaryLine(res, "trap"); !strings.HasPrefix(line, "trap failed") || !strings.Contains(res.stderr, "trap was evaluated") {
		t.Errorf("trap's summary should say it failed with Nix's message: %q\n%s", line, res)
	}
	if summaryLine(res, "plain") != "" {
		t.Errorf("a host without lollypops' module is no target of all:\n%s", res)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Hosts []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			Steps  []struct {
				Name   string `json:"name"`
				Status string `json:"status"`
				Error  string `json:"error"`
			} `json:"steps"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, h := range rep.Hosts {
		if h.Name == "trap" {
			found = len(h.Steps) == 1 && h.Steps[0].Name == "evaluate" && h.Steps[0].Status == "failed" &&
				strings.Contains(h.Steps[0].Error, "trap was evaluated")
		}
	}
	if !found {
		t.Errorf("the report should have trap failed at its evaluation:\n%s", data)
	}

	// Named on the command line, with a host that deploys: the same, in
	// order; the host without the module is an error of its own.
	res = r.run("host1", "trap", "plain")
	if res.code != 3 || !strings.HasPrefix(summaryLine(res, "host1"), "host1 ok") ||
		!strings.HasPrefix(summaryLine(res, "trap"), "trap failed") || !strings.HasPrefix(summaryLine(res, "plain"), "plain failed") ||
		!strings.Contains(res.stderr, "does not import lollypops.nixosModules.lollypops") {
		t.Errorf("host1 trap plain: want host1 ok, trap and plain failed:\n%s", res)
	}
}

// A host starts deploying as soon as its own evaluation is done, while the
// others are still being evaluated: host2's evaluation cannot end before
// host1 has been deployed to. It fetches (a fixed-output fetch, allowed in
// a pure evaluation) from a local server that answers only once host1 has
// its secret. A runner that evaluated every host before deploying any
// would wait for the server's give-up instead, and host2 would then fail
// its evaluation (the answer would not match its hash).
func TestFlakeHostDeploysWhileOthersEvaluate(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2")...)
	h1 := f.Host("host1")
	// What the gate answers, at a URL of its own: new for every run, or
	// Nix answers from its store or its download cache.
	var released atomic.Value
	var sawSecret atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			if out, err := h1.Exec(context.Background(), "cat", "/run/keys/token"); err == nil && string(out) == "token-of-host1\n" {
				sawSecret.Store(true)
				io.WriteString(w, released.Load().(string))
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		io.WriteString(w, "gave up waiting for host1\n")
	}))
	defer srv.Close()

	for _, jobs := range []string{"1", "2"} {
		content := fmt.Sprintf("released %d\n", time.Now().UnixNano())
		released.Store(content)
		sawSecret.Store(false)
		systems, configs := tokenHosts(t, f)
		sum := sha256.Sum256([]byte(content))
		configs["host2"] = gated(configs["host2"], fmt.Sprintf("%s/gate/%x", srv.URL, sum), sum)
		r := flakeRunner(t, systems, configs)
		sh(t, h1, "rm -f /run/keys/token")
		res := r.run("--eval-jobs", jobs, "all")
		if res.code != 0 {
			t.Fatalf("--eval-jobs %s all: host1 should deploy while host2 is evaluated:\n%s", jobs, res)
		}
		if !sawSecret.Load() {
			t.Errorf("--eval-jobs %s: host2's evaluation ended before host1 was deployed to", jobs)
		}
	}
}

// An interrupt while hosts are still being evaluated: the evaluations
// stop, and nothing new starts.
func TestFlakeInterruptStopsTheEvaluations(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2")...)
	h1 := f.Host("host1")
	// host2's evaluation waits for this server, which never answers
	// before the test ends.
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { <-done }))
	defer srv.Close()
	defer close(done)

	systems, configs := tokenHosts(t, f)
	configs["host2"] = gated(configs["host2"], fmt.Sprintf("%s/never/%d", srv.URL, time.Now().UnixNano()), sha256.Sum256([]byte("never")))
	r := flakeRunner(t, systems, configs)

	res := r.runCtx(t.Context(), func(cmd *exec.Cmd) {
		go func() {
			// Ctrl-C once host1 has its secret: it is deploying.
			for range 600 {
				if out, err := h1.Exec(context.Background(), "cat", "/run/keys/token"); err == nil && string(out) == "token-of-host1\n" {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		}()
	}, "all")
	if res.code != 130 {
		t.Fatalf("interrupted run: exit %d, want 130\n%s", res.code, res)
	}
	// host1 got the terminal's Ctrl-C too: its step stops where it can
	// (as without a flake); it had started.
	if line := summaryLine(res, "host1"); line == "" || strings.HasPrefix(line, "host1 not") {
		t.Errorf("host1 was deploying: %q\n%s", line, res)
	}
	// The run ended although host2's evaluation would never have: it was
	// stopped, and host2 never started.
	if line := summaryLine(res, "host2"); !strings.HasPrefix(line, "host2 not run") {
		t.Errorf("host2, still being evaluated, should not start: %q\n%s", line, res)
	}
	if out := sh(t, f.Host("host2"), "test -e /run/keys/token && echo yes || echo no"); out != "no\n" {
		t.Error("host2 was deployed after the interrupt")
	}
}
