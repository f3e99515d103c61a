package main

import (
	"fmt"
	"github.com/lollypops/lollypops/go/dev/benchfmt"
	"os"
	"slices"
	"strings"
	"time"
)

type report struct {
	date     time.Time
	machine  string
	syn      *synthetic
	reps     int
	capKiB   int64
	timeout  time.Duration
	hasFlake bool
	runner   string
	results  []*result
	sizes    []int // every fleet size the run is to measure
	// allToFirstStep: `all` was interrupted when its first step started.
	allToFirstStep bool
	// warm: the warm-cache variants were measured.
	warm bool
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

var secs = benchfmt.Secs

// failed is the first run's error, if any run failed.
func failed(rs []run) error {
	for _, r := range rs {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

func walls(rs []run) []time.Duration {
	var ds []time.Duration
	for _, r := range rs {
		ds = append(ds, r.wall)
	}
	return ds
}

// timeCell is the median wall time (min–max), or why there is none.
func timeCell(rs []run) string {
	if len(rs) == 0 {
		return "not run"
	}
	for _, r := range rs {
		switch {
		case r.overCap || r.timedOut:
			return fmt.Sprintf("(%s: killed after %s)", r.err, secs(r.wall))
		case r.err != nil:
			return "(failed: " + strings.SplitN(r.err.Error(), "\n", 2)[0] + ")"
		}
	}
	ds := walls(rs)
	if len(ds) == 1 {
		return secs(ds[0])
	}
	return fmt.Sprintf("%s (%s–%s)", secs(median(ds)), secs(slices.Min(ds)), secs(slices.Max(ds)))
}

func peakCell(rs []run) string {
	if len(rs) == 0 {
		return "–"
	}
	var peak int64
	for _, r := range rs {
		peak = max(peak, r.peak)
	}
	s := fmt.Sprintf("%d MiB", peak>>10)
	if failed(rs) != nil {
		s = "> " + s
	}
	return s
}

// cpuUse is the median of (user+sys)/wall.
func cpuUse(rs []run) (float64, bool) {
	if len(rs) == 0 || failed(rs) != nil {
		return 0, false
	}
	var xs []float64
	for _, r := range rs {
		xs = append(xs, r.cpu.Seconds()/r.wall.Seconds())
	}
	slices.Sort(xs)
	if len(xs)%2 == 0 {
		return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2, true
	}
	return xs[len(xs)/2], true
}

func (r *report) loads() string {
	lo, hi := -1.0, -1.0
	for _, res := range r.results {
		for _, rs := range res.runs {
			for _, x := range rs {
				if lo < 0 || x.load < lo {
					lo = x.load
				}
				hi = max(hi, x.load)
			}
		}
	}
	return fmt.Sprintf("%.2f–%.2f", lo, hi)
}

// loadOf is the range of load averages at the start of a fleet's runs.
func (r *report) loadOf(res *result) string {
	lo, hi := -1.0, -1.0
	for _, rs := range res.runs {
		for _, x := range rs {
			if lo < 0 || x.load < lo {
				lo = x.load
			}
			hi = max(hi, x.load)
		}
	}
	if lo == hi {
		return fmt.Sprintf("%.1f", lo)
	}
	return fmt.Sprintf("%.1f–%.1f", lo, hi)
}

const (
	blockBegin = "<!-- benchnix: begin (written by `make bench-nix`; `make bench` keeps this block) -->"
	blockEnd   = "<!-- benchnix: end -->"
)

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("%s\n## Nix evaluation\n\n", blockBegin)
	w("Written by `make bench-nix` on %s UTC, on %s. The machine was shared with other work: the 1-minute load average at the start of the runs was %s (2 is both cores busy).\n\n",
		r.date.UTC().Format("2006-01-02 15:04"), r.machine, r.loads())
	w("Each host is `lib.evalModules` (nixpkgs lib, a nix-community/nixpkgs.lib checkout) of a synthetic module set shaped like NixOS's, lollypops' NixOS module and a host module (ssh to 127.0.0.1 on a port where nothing listens, 5 secrets, 2 tags, a few dozen services and programs enabled): what `lib.nixosSystem` returns (`config`, `options`), without nixpkgs' own modules and packages (`go/dev/benchnix`). The synthetic set has %d modules (plus %d `default.nix` files that only import others) and %d options, counted as NixOS counts them (visible, not internal; a submodule's options once, under `<name>`).\n\n",
		r.syn.Modules, r.syn.Imports, r.syn.Options)
	w("Why that size: NixOS 19.03 had 887 modules and 7,630 options ([nixpkgs#57477](https://github.com/NixOS/nixpkgs/issues/57477)); 20.03 had 10,096 options and 25.05 about 22,000 in its options.json (28,444 with submodules' internal options) ([\"A look at NixOS/Nixpkgs evaluation times over the years\"](https://discourse.nixos.org/t/a-look-at-nixos-nixpkgs-evaluation-times-over-the-years/65114)); a NixOS system imports \"like 1.5k modules\" by default ([NixOS Discourse, 2024](https://discourse.nixos.org/t/nixos-importing-extra-functionality/39753)). So the module count is today's and the option count about half today's: a real host costs more than these. The mix, by module: 40%% services (11 options: `enable`, `str` options whose defaults read other options, `port`, `bool`, an `enum`, `listOf str`, a `submodule` with a `freeformType`; config under `mkIf`/`mkMerge`: users, a systemd unit, an `/etc` file, a firewall port, an assertion), 30%% programs (4), 15%% hardware toggles (3, `ints.between`), 10%% multi-instance services (`attrsOf (submodule ({ name, ... }: …))`, 7), 5%% profiles (`mkDefault` settings of other modules, an `imports` chain of shared helpers); core modules declare `systemd.services`, `environment.etc` (both `attrsOf submodule`), `networking.firewall`, `boot`, …; directories import their members through `default.nix` files. `go/dev/benchnix/gen.go` has the details.\n\n")
	w("Conditions: every fleet is a flake directory whose inputs are `path:` inputs (the nixpkgs lib, this repository as lollypops, the synthetic set), locked once and put in the store by an untimed evaluation; every timed run has the evaluation caches off (Nix's: `eval-cache = false`, with the tests' Nix configuration; the runner's: `--no-eval-cache`, docs/eval-cache.md), so each evaluates from scratch. Times are wall-clock medians (min–max) of %d runs for fleets under 100 hosts, variants taking turns, and of 1 run for larger fleets (their runs take minutes), except `--dry host1`: at least 5 runs at every size, after the other measurements, the fleet sizes taking turns (its target compares sizes, so each size sees the same load). Peak RSS is the largest sum of the RSS of the command's whole process tree, sampled from /proc every %s (the runner evaluates in several `nix` processes at once; the max RSS of wait4 is only the largest single process). CPU is the user+sys time of the process tree (every child waited for), which the machine's load inflates much less than the wall time. A run whose tree passes %d GiB is killed (the machine is shared), as is one over %s.\n\n",
		r.reps, sampleEvery, r.capKiB>>20, r.timeout)
	w("- **today**: `nix eval --json .#lollypopsInventory`, where `lollypopsInventory = import \"${lollypops}/nix/inventory.nix\" { inherit lib; } self`: the inventory of every host in one Nix process, as `nix/apps.nix` baked it into the app for any command until the runner evaluated the hosts itself (issue 11).\n")
	if r.hasFlake {
		w("- **`--dry host1`**: `lollypops --flake DIR --dry host1`: what one host's deploy evaluates and plans, touching no host.\n")
		w("- **`--list-all`**: `lollypops --flake DIR --list-all`.\n")
		if r.allToFirstStep {
			w("- **`all`**: `lollypops --flake DIR --report FILE all`, up to the first deploy starting: the benchmark interrupts the runner (SIGINT) as soon as a `lollypops-step` process (a step) appears in its tree, and the runner writes its report; *first step starts at* is the earliest step start in that report minus the runner's start, the wall time runs to the runner's exit. ")
		} else {
			w("- **`all`**: `lollypops --flake DIR --report FILE all`, to its end: every host evaluated and its deploy failed; *first step starts at* is the earliest step start in its report minus the runner's start. ")
		}
		if r.warm {
			w("With the runner's evaluation cache (docs/eval-cache.md), the cold `--list-all` runs with an empty cache of its own, which it fills (writing the entries is part of its time); then, at least 5 times each, taking turns: `--list-all` and `--dry host1` with that cache (*warm*), by the fleet's directory (the runner still runs `nix flake metadata` for the narHash the cache is keyed by) and by the **store reference** the app passes (`path:/nix/store/…-source?narHash=…`: no nix process at all). Completion never evaluates (it reads the names the app lists), so it has no row. ")
		}
		w("The hosts' ssh points at 127.0.0.1, on a port where nothing listens, so a step that gets further fails at once. For `all` and `--list-all`, the notes give (user+sys)/wall of the whole run (how many cores it got) and *runnable*, the mean number of its processes running or waiting for a CPU (state R in /proc, sampled with the memory): how many cores it would keep busy on an idle machine, which the first understates when the machine is loaded. The target is judged on *runnable*.\n")
	} else {
		w("- The runner's own evaluation (`lollypops --flake`) is not measured here: the runner given to the benchmark (%s) has no `--flake`.\n", orNone(r.runner))
	}
	w("\n")
	w("| hosts | command | wall, median (min–max) | CPU (user+sys) | peak RSS | notes |\n")
	w("|---|---|---|---|---|---|\n")
	base := r.host1Base()
	for _, res := range r.results {
		for _, v := range append([]string{vInventory, vHost1, vList, vAll}, warmVariants...) {
			rs, ok := res.runs[v]
			if !ok {
				continue
			}
			var notes []string
			switch v {
			case vHost1:
				if res.hosts > 1 {
					notes = append(notes, "÷ the 1-host fleet: "+ratioTo(rs, base))
				}
			case vAll:
				if len(res.firstStep) > 0 && failed(rs) == nil {
					notes = append(notes, "first step starts at "+secs(median(res.firstStep)))
				}
			}
			if v == vAll || v == vList {
				if x, ok := cpuUse(rs); ok {
					notes = append(notes, fmt.Sprintf("(user+sys)/wall %.2f, runnable %.2f", x, runnableMean(rs)))
				}
			}
			w("| %d | %s | %s | %s | %s | %s |\n", res.hosts, commands[v], timeCell(rs), cpuTime(rs), peakCell(rs), strings.Join(notes, "; "))
		}
	}
	if missing := r.missing(); missing != "" {
		w("\nNot measured (the run was stopped first): %s.\n", missing)
	}
	w("\n%s", r.targets())
	w("%s\n", blockEnd)
	return b.String()
}

// commands name the variants in the table.
var commands = map[string]string{
	vInventory: "today: the whole inventory",
	vHost1:     "`--dry host1`",
	vList:      "`--list-all`",
	vAll:       "`all`",

	vListWarm:     "`--list-all`, warm cache",
	vListWarmRef:  "`--list-all`, warm cache, store reference",
	vHost1Warm:    "`--dry host1`, warm cache",
	vHost1WarmRef: "`--dry host1`, warm cache, store reference",
}

// runnableMean is the median of the runs' mean runnable processes.
func runnableMean(rs []run) float64 {
	var xs []float64
	for _, r := range rs {
		xs = append(xs, r.runnable)
	}
	slices.Sort(xs)
	if len(xs) == 0 {
		return 0
	}
	if len(xs)%2 == 0 {
		return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return xs[len(xs)/2]
}

func cpus(rs []run) []time.Duration {
	var ds []time.Duration
	for _, r := range rs {
		ds = append(ds, r.cpu)
	}
	return ds
}

// cpuTime is the median user+sys time.
func cpuTime(rs []run) string {
	if len(rs) == 0 || failed(rs) != nil {
		return "–"
	}
	return secs(median(cpus(rs)))
}

// missing lists the measurements the run was to make and did not.
func (r *report) missing() string {
	variants := []string{vInventory}
	if r.hasFlake {
		variants = []string{vHost1, vAll, vList, vInventory}
	}
	if r.warm {
		variants = append(variants, warmVariants...)
	}
	got := map[int]*result{}
	for _, res := range r.results {
		got[res.hosts] = res
	}
	var out []string
	for _, n := range r.sizes {
		for _, v := range variants {
			if res := got[n]; res == nil || len(res.runs[v]) == 0 {
				out = append(out, fmt.Sprintf("%d hosts %s", n, commands[v]))
			}
		}
	}
	return strings.Join(out, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return "`" + s + "`"
}

// host1Base is the median `--dry host1` of the one-host fleet.
func (r *report) host1Base() []run {
	for _, res := range r.results {
		if res.hosts == 1 {
			return res.runs[vHost1]
		}
	}
	return nil
}

func ratioTo(rs, base []run) string {
	if len(rs) == 0 || len(base) == 0 || failed(rs) != nil || failed(base) != nil {
		return "–"
	}
	return fmt.Sprintf("%.2f×", median(walls(rs)).Seconds()/median(walls(base)).Seconds())
}

// cacheTargets compares the warm figures of the largest fleet with issue
// 20's: a second --list-all ≤ 0.5 s, --dry host1 ≤ 0.2 s.
func (r *report) cacheTargets(row func(target, measured string, ok bool)) {
	var largest *result
	for _, res := range r.results {
		if len(res.runs[vListWarmRef]) > 0 && (largest == nil || res.hosts > largest.hosts) {
			largest = res
		}
	}
	if largest == nil {
		return
	}
	for _, t := range []struct {
		v, what string
		limit   time.Duration
	}{
		{vListWarmRef, "`--list-all`", 500 * time.Millisecond},
		{vListWarm, "`--list-all` by directory", 500 * time.Millisecond},
		{vHost1WarmRef, "`--dry host1`", 200 * time.Millisecond},
		{vHost1Warm, "`--dry host1` by directory", 200 * time.Millisecond},
	} {
		rs := largest.runs[t.v]
		if len(rs) == 0 || failed(rs) != nil {
			continue
		}
		m := median(walls(rs))
		row(fmt.Sprintf("%s with a warm cache ≤ %s, %d hosts (issue 20)", t.what, secs(t.limit), largest.hosts),
			fmt.Sprintf("%s wall (median), CPU %s, load %s", secs(m), cpuTime(rs), r.loadOf(largest)), m <= t.limit)
	}
}

// targets compares the figures with issue 11's.
func (r *report) targets() string {
	if !r.hasFlake {
		return "The issue's targets (`host1` within 1.2× of a one-host fleet at every size, `all` using both cores) are about the runner's own evaluation, not measured here.\n\n"
	}
	var b strings.Builder
	b.WriteString("| target | measured | met |\n|---|---|---|\n")
	row := func(target, measured string, ok bool) {
		mark := "yes"
		if !ok {
			mark = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", target, measured, mark)
	}
	base := r.host1Base()
	if len(base) > 0 && failed(base) == nil {
		worst, worstCPU, at := 0.0, 0.0, 0
		ok := true
		for _, res := range r.results {
			h1 := res.runs[vHost1]
			if res.hosts == 1 {
				continue
			}
			if len(h1) == 0 || failed(h1) != nil {
				ok = false
				continue
			}
			q := median(walls(h1)).Seconds() / median(walls(base)).Seconds()
			if q > worst {
				worst, at = q, res.hosts
			}
			worstCPU = max(worstCPU, median(cpus(h1)).Seconds()/median(cpus(base)).Seconds())
		}
		if at > 0 {
			row("`--dry host1` within 1.2× of the one-host fleet, every size (issue 11)", fmt.Sprintf("wall at most %.2f× (%d hosts); CPU time at most %.2f×", worst, at, worstCPU), ok && worst <= 1.2)
		}
	}
	if r.warm {
		r.cacheTargets(row)
	}
	var largest *result
	for _, res := range r.results {
		if largest == nil || res.hosts > largest.hosts {
			largest = res
		}
	}
	if largest != nil && largest.hosts > 1 {
		if x, ok := cpuUse(largest.runs[vAll]); ok {
			y := runnableMean(largest.runs[vAll])
			row(fmt.Sprintf("`all` uses both cores, %d hosts: on average ≥ 1.5 of its processes running or runnable (issue 11)", largest.hosts),
				fmt.Sprintf("runnable %.2f; (user+sys)/wall %.2f at load %s", y, x, r.loadOf(largest)), y >= 1.5)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// writeBlock replaces the benchnix block in the Markdown file at path (or
// appends it), leaving the rest of the file as it is.
func writeBlock(path, block string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(path, []byte(replaceBlock(string(old), block)), 0o644)
}

// replaceBlock returns text with its benchnix block replaced by block, or
// with block appended when it has none.
func replaceBlock(text, block string) string {
	i := strings.Index(text, blockBegin)
	j := strings.Index(text, blockEnd)
	if i < 0 || j < i {
		if text != "" && !strings.HasSuffix(text, "\n\n") {
			text = strings.TrimRight(text, "\n") + "\n\n"
		}
		return text + block
	}
	return text[:i] + block + strings.TrimPrefix(text[j+len(blockEnd):], "\n")
}
