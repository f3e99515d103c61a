// Command benchnix measures the Nix side of lollypops: how long, and how
// much memory, evaluating a fleet's hosts takes before the first deploy can
// start, on a synthetic module set shaped like NixOS's under the real
// nixpkgs lib, for fleets of 1 to 1000 hosts. It writes its table into a
// block of docs/benchmarks.md. `make bench-nix` runs it. It is not a test:
// it asserts nothing, and it is not part of `make test` (it is slow).
//
//	benchnix [--bin DIR] [--out FILE] [--fleets 1,10,100,1000] [--reps N] [--modules N]
//
// It needs LOLLYPOPS_NIXPKGS_LIB (a nix-community/nixpkgs.lib checkout) and
// skips with one line without it.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lollypops/lollypops/go/dev/benchfmt"
)

func main() {
	bin := flag.String("bin", "", "directory with the lollypops runner; without it, or when it has no --flake, only today's inventory evaluation is measured")
	out := flag.String("out", "", "write the table into this Markdown file's benchnix block (default: stdout only)")
	fleets := flag.String("fleets", "1,10,100,1000", "fleet sizes")
	reps := flag.Int("reps", 3, "runs per measurement of fleets under 100 hosts (larger ones: 1; --dry host1: at least 5 at every size)")
	modules := flag.Int("modules", 1500, "modules in the synthetic set")
	capGiB := flag.Int64("cap-gib", 6, "kill a run whose process tree's RSS passes this many GiB (the machine is shared)")
	timeout := flag.Duration("timeout", 30*time.Minute, "kill a run that takes longer")
	repo := flag.String("repo", "..", "the lollypops repository (the fleets' lollypops input)")
	keep := flag.Bool("keep", false, "keep the generated fleets (their directory is printed)")
	toFirst := flag.Bool("all-to-first-step", false, "interrupt `all` when its first step starts, instead of letting every host be evaluated and fail (for a runner that starts no host before all are evaluated: the rest is then a few seconds)")
	flag.Parse()

	lib := os.Getenv("LOLLYPOPS_NIXPKGS_LIB")
	if lib == "" {
		fmt.Println("benchnix: skipped: set LOLLYPOPS_NIXPKGS_LIB to a nix-community/nixpkgs.lib checkout")
		return
	}
	b := &bench{refs: map[string]string{}, lib: lib, reps: *reps, modules: *modules, capKiB: *capGiB << 20, timeout: *timeout, keep: *keep}
	var err error
	if b.repo, err = filepath.Abs(*repo); err != nil {
		fail(err)
	}
	for _, f := range strings.Split(*fleets, ",") {
		var n int
		if _, err := fmt.Sscanf(f, "%d", &n); err != nil || n < 1 {
			fail(fmt.Errorf("--fleets: %q is not a number of hosts", f))
		}
		b.sizes = append(b.sizes, n)
	}
	if *bin != "" {
		// Absolute: the runner runs in each fleet's directory.
		if b.runner, err = filepath.Abs(filepath.Join(*bin, "lollypops")); err != nil {
			fail(err)
		}
		help, _ := exec.Command(b.runner, "--help").CombinedOutput()
		b.hasFlake = bytes.Contains(help, []byte("--flake"))
		// Each run evaluates from scratch: the runner's own evaluation
		// cache (docs/eval-cache.md) is off too.
		if bytes.Contains(help, []byte("--no-eval-cache")) {
			b.runnerArgs = []string{"--no-eval-cache"}
			b.warm = true
		}
	}
	b.out = *out
	b.allToFirstStep = *toFirst
	stopOnSignal(b)
	rep, err := b.run()
	if err != nil {
		fail(err)
	}
	fmt.Print(rep.markdown())
}

// stopOnSignal ends the run on SIGINT/SIGTERM: the command being measured
// (its process group) and the generated fleets go with it.
func stopOnSignal(b *bench) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-sigs
		stopMeasuring()
		if b.dir != "" && !b.keep {
			os.RemoveAll(b.dir)
		}
		fmt.Fprintln(os.Stderr, "benchnix: interrupted")
		os.Exit(130)
	}()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchnix:", err)
	os.Exit(1)
}

type bench struct {
	lib, repo, runner string
	hasFlake          bool
	runnerArgs        []string // before the runner's --flake
	sizes             []int
	reps, modules     int
	capKiB            int64
	timeout           time.Duration
	keep              bool
	out               string
	allToFirstStep    bool
	// warm: the runner has an evaluation cache; the cold --list-all
	// fills one per fleet, and the warm variants are measured with it.
	warm bool
	refs map[string]string // fleet directory -> its store reference
	save func() error
	env  []string
	dir  string
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchnix: "+format+"\n", args...)
}

func (b *bench) run() (*report, error) {
	dir, err := os.MkdirTemp("", "lollypops-benchnix-")
	if err != nil {
		return nil, err
	}
	b.dir = dir
	if b.keep {
		progress("fleets in %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	// The same Nix configuration as the tests, with the evaluation cache
	// off: every run of every variant evaluates from scratch (the flakes'
	// sources are in the store after the warm-up, for all alike).
	conf := filepath.Join(dir, "nix-conf")
	if out, err := exec.Command(filepath.Join(b.repo, "tests/nix/nix-conf.sh"), conf).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("tests/nix/nix-conf.sh: %v\n%s", err, out)
	}
	f, err := os.OpenFile(filepath.Join(conf, "nix.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(f, "# benchnix: every run evaluates from scratch.\neval-cache = false")
	f.Close()
	b.env = []string{"NIX_CONF_DIR=" + conf, "NIX_USER_CONF_FILES=" + filepath.Join(conf, "nix.conf"), "NIX_CONFIG="}

	stub, err := os.ReadFile(filepath.Join(b.repo, "tests/nix/stubs/nixos.nix"))
	if err != nil {
		return nil, err
	}
	syn, err := writeSynthetic(filepath.Join(dir, "synthetic"), b.modules, stub)
	if err != nil {
		return nil, err
	}
	port, err := closedPort()
	if err != nil {
		return nil, err
	}
	if err := writeHostModule(syn, port); err != nil {
		return nil, err
	}
	rep := &report{date: time.Now(), machine: machine(), syn: syn, reps: b.reps, capKiB: b.capKiB,
		timeout: b.timeout, hasFlake: b.hasFlake, runner: b.runner, sizes: b.sizes, allToFirstStep: b.allToFirstStep, warm: b.warm}
	// After each measurement, the block holds what was measured so far: a
	// run stopped later leaves it.
	b.save = func() error {
		if b.out == "" {
			return nil
		}
		return writeBlock(b.out, rep.markdown())
	}
	for _, n := range b.sizes {
		res := &result{hosts: n, runs: map[string][]run{}}
		rep.results = append(rep.results, res)
		if err := b.fleet(res, syn); err != nil {
			return nil, err
		}
	}
	if b.hasFlake {
		// --dry host1's target is a ratio between fleet sizes: its runs
		// come last, the sizes taking turns, so that every size sees the
		// same load.
		for i := range max(b.reps, 5) {
			for _, res := range rep.results {
				r, _ := b.measure(vHost1, b.fleetDir(res.hosts))
				res.runs[vHost1] = append(res.runs[vHost1], r)
				progress("%d hosts, %s, run %d: %.2f s, %d MiB, cpu %.2f s, load %.2f%s", res.hosts, vHost1, i+1,
					r.wall.Seconds(), r.peak>>10, r.cpu.Seconds(), r.load, errSuffix(r.err))
				if err := b.save(); err != nil {
					return nil, err
				}
			}
		}
	}
	return rep, nil
}

// The measured variants.
const (
	vInventory = "inventory" // today: the whole inventory, as nix/apps.nix builds it
	vHost1     = "host1"
	vList      = "list"
	vAll       = "all"
	// With the runner's evaluation cache filled by the cold --list-all
	// (docs/eval-cache.md): by directory, and by the store reference the
	// app passes (no nix process at all).
	vListWarm     = "list-warm"
	vListWarmRef  = "list-warm-ref"
	vHost1Warm    = "host1-warm"
	vHost1WarmRef = "host1-warm-ref"
)

var warmVariants = []string{vListWarm, vListWarmRef, vHost1Warm, vHost1WarmRef}

type result struct {
	hosts int
	runs  map[string][]run
	// firstStep is, per `all` run, the time from the runner's start to the
	// earliest step start in its report.
	firstStep []time.Duration
}

func (b *bench) fleet(res *result, syn *synthetic) error {
	n := res.hosts
	dir := b.fleetDir(n)
	if err := writeFleet(dir, n, b.lib, b.repo, syn); err != nil {
		return err
	}
	// Lock once, and put every input in the store (untimed).
	for _, args := range [][]string{
		{"flake", "lock", "--offline"},
		{"eval", "--offline", "--json", ".#nixosConfigurations", "--apply", "builtins.attrNames"},
	} {
		cmd := exec.Command("nix", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), b.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("fleet of %d: nix %s: %v\n%s", n, strings.Join(args, " "), err, out)
		}
	}
	reps := b.reps
	if n >= 100 {
		reps = 1
	}
	// The runner's commands first, today's capped evaluation last.
	var variants []string
	if b.hasFlake {
		variants = append(variants, vAll, vList)
	}
	variants = append(variants, vInventory)
	stopped := map[string]bool{}
	for rep := range reps {
		for _, v := range variants {
			if stopped[v] {
				continue
			}
			r, first := b.measure(v, dir)
			res.runs[v] = append(res.runs[v], r)
			if first > 0 {
				res.firstStep = append(res.firstStep, first)
			}
			line := fmt.Sprintf("%d hosts, %s, run %d: %.2f s, %d MiB, cpu %.2f s, load %.2f", n, v, rep+1,
				r.wall.Seconds(), r.peak>>10, r.cpu.Seconds(), r.load)
			if first > 0 {
				line += fmt.Sprintf(", first step at %.2f s", first.Seconds())
			}
			if r.err != nil {
				line += ": " + strings.SplitN(r.err.Error(), "\n", 2)[0]
				// A run over the cap or the timeout would be again.
				stopped[v] = r.overCap || r.timedOut
			}
			progress("%s", line)
			if err := b.save(); err != nil {
				return err
			}
		}
	}
	if !b.warm || len(res.runs[vList]) == 0 || failed(res.runs[vList]) != nil {
		return nil
	}
	ref, err := storeRef(dir, b.env)
	if err != nil {
		return err
	}
	b.refs[dir] = ref
	for rep := range max(b.reps, 5) {
		for _, v := range warmVariants {
			r, _ := b.measure(v, dir)
			res.runs[v] = append(res.runs[v], r)
			progress("%d hosts, %s, run %d: %.2f s, %d MiB, cpu %.2f s, load %.2f%s", n, v, rep+1,
				r.wall.Seconds(), r.peak>>10, r.cpu.Seconds(), r.load, errSuffix(r.err))
			if err := b.save(); err != nil {
				return err
			}
		}
	}
	return nil
}

// storeRef is the fleet's flake as the app passes it to the runner: its
// source's store path with the narHash.
func storeRef(dir string, env []string) (string, error) {
	cmd := exec.Command("nix", "flake", "metadata", "--offline", "--json", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("nix flake metadata in %s: %v", dir, err)
	}
	var m struct {
		Path   string `json:"path"`
		Locked struct {
			NarHash string `json:"narHash"`
		} `json:"locked"`
	}
	if err := json.Unmarshal(out, &m); err != nil || m.Path == "" || m.Locked.NarHash == "" {
		return "", fmt.Errorf("nix flake metadata in %s: no path or narHash in %.200s", dir, out)
	}
	return "path:" + m.Path + "?narHash=" + m.Locked.NarHash, nil
}

// cacheEnv is the environment of the runs that use the fleet's own
// evaluation cache.
func (b *bench) cacheEnv(dir string) []string {
	return append(slices.Clone(b.env), "XDG_CACHE_HOME="+b.cacheDir(dir))
}

// cacheDir is the fleet's evaluation cache: beside the fleet's directory,
// not in it (the directory is the flake, whose narHash keys the cache).
func (b *bench) cacheDir(dir string) string {
	return dir + ".eval-cache"
}

func (b *bench) fleetDir(n int) string {
	return filepath.Join(b.dir, fmt.Sprintf("fleet-%d", n))
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return ": " + strings.SplitN(err.Error(), "\n", 2)[0]
}

// flake is the runner's command line for the fleet in dir.
func (b *bench) flake(dir string, args ...string) []string {
	return append(append(append([]string{}, b.runnerArgs...), "--flake", dir), args...)
}

// measure runs variant v on the fleet in dir; for `all`, it also returns the
// time to the first step's start.
func (b *bench) measure(v, dir string) (run, time.Duration) {
	switch v {
	case vInventory:
		return measure("nix", []string{"eval", "--offline", "--json", ".#lollypopsInventory"}, b.env, dir, b.capKiB, b.timeout, false), 0
	case vHost1:
		return measure(b.runner, b.flake(dir, "--dry", "host1"), b.env, dir, b.capKiB, b.timeout, false), 0
	case vList:
		if b.warm {
			// Cold with an empty cache, which it fills for the warm runs.
			os.RemoveAll(b.cacheDir(dir))
			return measure(b.runner, []string{"--flake", dir, "--list-all"}, b.cacheEnv(dir), dir, b.capKiB, b.timeout, false), 0
		}
		return measure(b.runner, b.flake(dir, "--list-all"), b.env, dir, b.capKiB, b.timeout, false), 0
	case vListWarm, vListWarmRef, vHost1Warm, vHost1WarmRef:
		flake := dir
		if v == vListWarmRef || v == vHost1WarmRef {
			flake = b.refs[dir]
		}
		args := []string{"--flake", flake, "--list-all"}
		if v == vHost1Warm || v == vHost1WarmRef {
			args = []string{"--flake", flake, "--dry", "host1"}
		}
		return measure(b.runner, args, b.cacheEnv(dir), dir, b.capKiB, b.timeout, false), 0
	}
	// Beside the flake, not in it: a file in the directory would change
	// the flake every run.
	reportPath := dir + ".report.json"
	os.Remove(reportPath)
	// To its end, every host evaluated (and failed: nothing listens), or,
	// with --all-to-first-step, interrupted when the first step starts; the
	// runner writes its report either way, with the steps' starts.
	r := measure(b.runner, b.flake(dir, "--report", reportPath, "all"), b.env, dir, b.capKiB, b.timeout, b.allToFirstStep)
	if r.overCap || r.timedOut {
		return r, 0
	}
	// Interrupted, or every host failed (nothing listens on its port): a
	// non-zero exit is expected; the report says whether a step started.
	first, err := firstStepStart(reportPath)
	if err != nil {
		if r.err == nil {
			r.err = err
		}
		return r, 0
	}
	r.err = nil
	return r, first.Sub(r.start)
}

// firstStepStart reads a run report (docs/report.md) and returns the
// earliest start of any step.
func firstStepStart(path string) (time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, err
	}
	var doc struct {
		Version int
		Error   string
		Hosts   []struct {
			Steps []struct {
				Start *time.Time
			}
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return time.Time{}, fmt.Errorf("%s: %v", path, err)
	}
	if doc.Version < 1 || doc.Version > 2 {
		return time.Time{}, fmt.Errorf("%s: report version %d, not 1 or 2", path, doc.Version)
	}
	var first time.Time
	for _, h := range doc.Hosts {
		for _, s := range h.Steps {
			if s.Start != nil && (first.IsZero() || s.Start.Before(first)) {
				first = *s.Start
			}
		}
	}
	if first.IsZero() {
		if doc.Error != "" {
			return first, fmt.Errorf("%w: %s", errNoSteps, doc.Error)
		}
		return first, errNoSteps
	}
	return first, nil
}

// machine describes where the benchmark ran.
func machine() string {
	cpu, version := benchfmt.CPU(), benchfmt.Version
	mem := "?"
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib int64
		fmt.Sscanf(strings.SplitN(string(data), "\n", 2)[0], "MemTotal: %d kB", &kib)
		mem = fmt.Sprintf("%d GiB", (kib+(1<<19))>>20)
	}
	return fmt.Sprintf("%d cores (%s), %s RAM; %s; %s", runtime.NumCPU(), cpu, mem,
		version("nix", "--version"), version("uname", "-sr"))
}
