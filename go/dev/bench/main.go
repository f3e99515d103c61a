// Command bench measures lollypops against a lower bound and against the
// original lollypops' command shape, on fake hosts, in one run, and writes
// the table to docs/benchmarks.md. `make bench` builds the binaries and
// runs it as root. It is not a test: it asserts nothing.
//
//	bench --bin DIR [--out FILE] [--reps N] [--quick]
//	bench proxy PORT LOG     (internal: the byte-counting ProxyCommand)
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/lollypops/lollypops/go/dev/benchfmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/lollypops/lollypops/go/dev/fakehost"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "proxy" {
		if err := runProxy(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench proxy:", err)
			os.Exit(1)
		}
		return
	}
	bin := flag.String("bin", "", "directory with lollypops and lollypops-step (required)")
	out := flag.String("out", "", "write the Markdown report here (default: stdout only)")
	reps := flag.Int("reps", 5, "runs per measurement (the original shape runs fewer for large fleets)")
	quick := flag.Bool("quick", false, "skip the slowest measurements: only 1×10 and 20×50 (unless --scenarios), 3 runs (unless --reps), no original shape and no counting run from 1000 secrets in all, no planning at 5000 hosts")
	only := flag.String("scenarios", "1x0,1x10,1x50,5x0,5x10,5x50,20x0,20x10,20x50,20x200", "deploy sizes, HOSTSxSECRETS (20 hosts at most); empty: none")
	sizes := flag.String("fleets", "10,100,1000,5000", "planning fleet sizes; empty: none")
	flag.Parse()
	if *quick {
		// Under ten minutes: two sizes, three runs each, unless asked
		// otherwise.
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["scenarios"] {
			*only = "1x10,20x50"
		}
		if !set["reps"] {
			*reps = 3
		}
	}
	if err := run(*bin, *out, *reps, *quick, *only, *sizes); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

func run(bin, outPath string, reps int, quick bool, only, fleets string) error {
	var scenarios []scenario
	for _, f := range strings.FieldsFunc(only, func(r rune) bool { return r == ',' }) {
		var sc scenario
		if _, err := fmt.Sscanf(f, "%dx%d", &sc.hosts, &sc.secrets); err != nil || sc.hosts < 1 || sc.hosts > 20 {
			return fmt.Errorf("--scenarios: %q is not HOSTSxSECRETS with 1 to 20 hosts", f)
		}
		scenarios = append(scenarios, sc)
	}
	var sizes []int
	for _, f := range strings.FieldsFunc(fleets, func(r rune) bool { return r == ',' }) {
		var n int
		if _, err := fmt.Sscanf(f, "%d", &n); err != nil || n < 1 {
			return fmt.Errorf("--fleets: %q is not a number of hosts", f)
		}
		if !quick || n <= 1000 {
			sizes = append(sizes, n)
		}
	}
	if bin == "" {
		return fmt.Errorf("--bin is required")
	}
	if err := fakehost.Available(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "lollypops-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	progress := func(s string) { fmt.Fprintf(os.Stderr, "bench: %s\n", s) }

	b := &bench{ctx: context.Background(), dir: dir, bin: bin, self: self}
	_, err = exec.LookPath("strace")
	b.haveTrace = err == nil
	progress("building the task CLI of the pinned go-task")
	b.task = filepath.Join(dir, "task")
	build := exec.Command("go", "build", "-o", b.task, "github.com/go-task/task/v3/cmd/task")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building go-task's CLI: %v\n%s", err, out)
	}

	progress("bringing up 20 fake hosts")
	var specs []fakehost.HostSpec
	for i := 1; i <= 20; i++ {
		specs = append(specs, fakehost.HostSpec{Name: fmt.Sprintf("host%d", i)})
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	b.fleet, err = fakehost.New(ctx, filepath.Join(dir, "fleet"), specs)
	cancel()
	if err != nil {
		return err
	}
	defer b.fleet.Close()

	rep := &report{date: time.Now(), reps: reps, quick: quick, traced: b.haveTrace, flags: benchFlags()}
	rep.machine = machine()
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/go-task/task/v3").Output(); err == nil {
		rep.goTask = strings.TrimSpace(string(out))
	}
	for _, sc := range scenarios {
		r := map[string]int{vLollypops: reps, vLower: reps, vOriginal: reps, vGuarded: reps, vLowerGuarded: reps}
		switch work := sc.hosts * max(sc.secrets, 1); {
		case work >= 4000:
			r[vOriginal] = 1
		case work >= 1000:
			r[vOriginal] = 2
		case work >= 200:
			r[vOriginal] = 3
		}
		counts := true
		if quick && sc.hosts*sc.secrets >= 1000 {
			// Under ten minutes: no original shape (minutes a run), no
			// counting run; the others as many runs as the small sizes,
			// whose medians this shared machine needs.
			r[vOriginal] = 0
			counts = false
		}
		res, err := b.runDeploy(sc, r, counts, progress)
		if err != nil {
			return err
		}
		rep.deploys = append(rep.deploys, res)
	}

	for _, n := range sizes {
		res, err := b.runPlanning(n, 3, 5*time.Minute, progress)
		if err != nil {
			return err
		}
		rep.plans = append(rep.plans, res...)
	}

	text := rep.markdown()
	fmt.Print(text)
	if outPath != "" {
		return os.WriteFile(outPath, []byte(text+nixBlock(outPath)), 0o644)
	}
	return nil
}

// benchFlags is the command line's flags, but --bin and --out (make
// bench's own), as BENCH_FLAGS would give them.
func benchFlags() string {
	var out []string
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "bin" && f.Name != "out" {
			if f.Value.String() == "true" {
				out = append(out, "--"+f.Name)
			} else {
				out = append(out, "--"+f.Name+" "+f.Value.String())
			}
		}
	})
	return strings.Join(out, " ")
}

// nixBlock is the block that benchnix (`make bench-nix`) wrote into the file
// at path, if any, and what follows it (the evaluation cache's figures,
// measured by hand): this benchmark rewrites the file and keeps them, whose
// figures take another hour to measure.
func nixBlock(path string) string {
	old, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	text := string(old)
	i := strings.Index(text, "<!-- benchnix: begin")
	if j := strings.Index(text, "<!-- benchnix: end -->"); i < 0 || j < i {
		return ""
	}
	return "\n" + text[i:]
}

// machine describes where the benchmark ran.
func machine() string {
	cpu, version := benchfmt.CPU(), benchfmt.Version
	return fmt.Sprintf("%d cores (%s), %s; %s; %s; %s", runtime.NumCPU(), cpu, runtime.Version(),
		version("ssh", "-V"), version("nix", "--version"), version("uname", "-sr"))
}
