package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/evalcache"
	"github.com/lollypops/lollypops/go/internal/nixeval"
	"github.com/lollypops/lollypops/go/internal/plan"
)

// Environment the app wrapper (nix/apps.nix) sets: the flake, locked, and
// its host names, which the app lists without evaluating any host.
const (
	envFlake      = "LOLLYPOPS_FLAKE"
	envFlakeHosts = "LOLLYPOPS_FLAKE_HOSTS"
	envInventory  = "LOLLYPOPS_INVENTORY"
)

// hostFlags say where a run's hosts come from.
type hostFlags struct {
	Inventory string
	Flake     string
	EvalJobs  int
	NoCache   bool
	fs        *pflag.FlagSet
}

func (h *hostFlags) AddFlags(fs *pflag.FlagSet) {
	h.fs = fs
	fs.StringVar(&h.Flake, "flake", os.Getenv(envFlake),
		"The flake whose nixosConfigurations to deploy (`REF`: a directory or flake reference). The app of your flake sets it; each command evaluates only the hosts it needs.")
	fs.StringVar(&h.Inventory, "inventory", os.Getenv(envInventory),
		"Read the hosts from an inventory JSON `FILE` (nix/inventory.nix writes one) instead of evaluating a flake.")
	fs.IntVar(&h.EvalJobs, "eval-jobs", 0, "Evaluate at most this many hosts at once, each in its own nix process (default: one per CPU).")
	fs.BoolVar(&h.NoCache, "no-eval-cache", false, "Evaluate every host anew, neither reading nor writing the evaluation cache.")
}

// check picks one source: a flag given on the command line wins over one
// from the environment.
func (h *hostFlags) check() error {
	changed := func(name string) bool { return h.fs != nil && h.fs.Changed(name) }
	switch {
	case changed("flake") && changed("inventory"):
		return &usageError{msg: "--flake and --inventory: give one of them", hint: "--flake evaluates the hosts of a flake; --inventory reads them from a JSON file"}
	case changed("inventory"):
		h.Flake = ""
	case changed("flake"):
		h.Inventory = ""
	case h.Flake != "" && h.Inventory != "":
		h.Inventory = "" // the app's flake, over an inventory left in the environment
	}
	if h.Flake == "" && h.Inventory == "" {
		return &usageError{msg: "no hosts given: neither --flake nor --inventory",
			hint: "run lollypops through your flake's app (nix run . -- ...), which passes the flake; or pass --flake DIR"}
	}
	if h.EvalJobs < 0 {
		return &usageError{msg: fmt.Sprintf("--eval-jobs %d: not a number of processes", h.EvalJobs), hint: "--eval-jobs 4; without it, one per CPU"}
	}
	return nil
}

// source is where a run's hosts come from: an inventory file, whose hosts
// are decoded as the command needs them, or a flake, whose hosts are
// evaluated as the command needs them, in parallel. A host that cannot be
// evaluated or decoded fails alone: failed says why, and the run goes on
// with the others.
type source struct {
	doc    *config.Document // the entries at hand: every host of an inventory file
	eval   *nixeval.Evaluator
	names  []string // every host, sorted
	has    map[string]bool
	stderr io.Writer

	mu       sync.Mutex
	failed   map[string]string // host → why it has no entry
	noModule map[string]bool   // hosts without lollypops' module
}

func openSource(ctx context.Context, h *hostFlags, stderr io.Writer) (*source, error) {
	if h.Inventory != "" {
		doc, err := config.Open(h.Inventory)
		if err != nil {
			return nil, err
		}
		return newSource(doc, doc.Names(), nil, stderr), nil
	}
	nix := "nix"
	f, err := nixeval.Resolve(ctx, nix, h.Flake)
	if err != nil {
		return nil, err
	}
	var cache *evalcache.Cache // nil: every host is evaluated anew
	if !h.NoCache {
		cache = evalcache.Open(nix, f)
	}
	var t targetNames
	if file := os.Getenv(envFlakeHosts); file != "" && os.Getenv(envFlake) == h.Flake {
		if t, err = readTargetNames(file); err != nil {
			return nil, err
		}
	} else {
		// Both lists at once: each is a nix process of its own.
		var homesErr error
		var wg sync.WaitGroup
		wg.Go(func() { t.Homes, homesErr = cache.HomeNames(ctx, nix, f) })
		t.Hosts, err = cache.Names(ctx, nix, f)
		wg.Wait()
		if err = cmp.Or(err, homesErr); err != nil {
			return nil, err
		}
	}
	t.Hosts = validNames(t.Hosts, false, stderr)
	t.Homes = validNames(t.Homes, true, stderr)
	ev := &nixeval.Evaluator{Nix: nix, Flake: f, Jobs: h.EvalJobs, Stderr: stderr, Homes: map[string]bool{}}
	if cache != nil {
		ev.Cache = cache
	}
	for _, n := range t.Homes {
		if slices.Contains(t.Hosts, n) {
			return nil, &usageError{msg: fmt.Sprintf("%q is both a NixOS host (nixosConfigurations) and a home-manager configuration (homeConfigurations)", n),
				hint: "their names share the task names (\"<name>:rebuild\"); rename one of them"}
		}
		ev.Homes[n] = true
	}
	return newSource(config.NewDocument(), append(t.Hosts, t.Homes...), ev, stderr), nil
}

// validNames leaves out, with a warning, the flake's attribute names that
// cannot name tasks: such a target can never be deployed, and its name,
// which may hold anything (escape sequences, newlines), goes no further
// than the warning, quoted.
func validNames(names []string, home bool, stderr io.Writer) []string {
	kept := names[:0:0]
	for _, n := range names {
		if err := config.CheckName(n, home); err != nil {
			var ce *config.Error
			errors.As(err, &ce)
			(&ui{w: stderr}).printf("%s.%s is left out: %s", output(home), strconv.Quote(n), ce.Msg)
			continue
		}
		kept = append(kept, n)
	}
	return kept
}

func output(home bool) string {
	if home {
		return "homeConfigurations"
	}
	return "nixosConfigurations"
}

// targetNames is what the app lists of a flake (LOLLYPOPS_FLAKE_HOSTS).
type targetNames struct {
	Hosts []string `json:"hosts"` // nixosConfigurations
	Homes []string `json:"homes"` // homeConfigurations
}

func readTargetNames(file string) (targetNames, error) {
	var t targetNames
	data, err := os.ReadFile(file)
	if err == nil {
		err = json.Unmarshal(data, &t)
	}
	if err != nil {
		return t, fmt.Errorf("reading the flake's target names (%s): %w", file, err)
	}
	return t, nil
}

func newSource(doc *config.Document, names []string, ev *nixeval.Evaluator, stderr io.Writer) *source {
	s := &source{doc: doc, eval: ev, names: slices.Clone(names), has: map[string]bool{}, stderr: stderr,
		failed: map[string]string{}, noModule: map[string]bool{}}
	sort.Strings(s.names)
	for _, n := range names {
		s.has[n] = true
	}
	return s
}

// Names returns every host's name, sorted; a flake's hosts are listed
// without being evaluated.
func (s *source) Names() []string { return s.names }

// Has reports whether a host of that name exists.
func (s *source) Has(name string) bool { return s.has[name] }

// Load returns the named hosts (nil: every host), evaluating those not
// evaluated yet. Hosts that failed are left out; Failed says why. A host
// without lollypops' module fails when it is named on the command line,
// and is left out with a warning when it was not (every host, a glob).
func (s *source) Load(ctx context.Context, names []string) (*config.Inventory, error) {
	if names == nil {
		return s.load(ctx, s.names, true)
	}
	return s.load(ctx, names, false)
}

// LoadMatched is Load for hosts a selector matched: a host without the
// module is left out, not failed.
func (s *source) LoadMatched(ctx context.Context, names []string) (*config.Inventory, error) {
	return s.load(ctx, names, true)
}

func (s *source) load(ctx context.Context, names []string, all bool) (*config.Inventory, error) {
	if s.eval != nil {
		var todo []string
		for _, n := range names {
			if !s.doc.Has(n) && !s.isFailed(n) && !s.hasNoModule(n) {
				todo = append(todo, n)
			}
		}
		if len(todo) > 0 {
			if err := s.eval.Evaluate(ctx, todo, s.add); err != nil {
				return nil, err
			}
		}
	}
	inv := &config.Inventory{Version: config.Version, Hosts: map[string]*config.Host{}}
	for _, n := range names {
		switch {
		case s.hasNoModule(n) && all:
			continue
		case s.hasNoModule(n) && !s.isFailed(n):
			s.fail(n, s.noModuleMsg(n)+", so it has no tasks")
			continue
		case s.isFailed(n):
			continue
		}
		h, err := s.doc.Host(n)
		if err != nil {
			if s.eval == nil {
				return nil, err // an inventory file is written whole: it is wrong as a whole
			}
			s.fail(n, err.Error())
			continue
		}
		inv.Hosts[n] = h
	}
	return inv, nil
}

// Stream is Load, one host at a time: each of the named hosts (nil: every
// host) is passed to each as soon as it is evaluated, in no set order,
// from one goroutine at a time; failure says why a host has none.
func (s *source) Stream(ctx context.Context, names []string, each func(name string, h *config.Host, failure string)) error {
	all := names == nil
	if all {
		names = s.names
	}
	give := func(n string) {
		inv, err := s.load(ctx, []string{n}, all)
		if err != nil {
			each(n, nil, err.Error())
			return
		}
		if h := inv.Hosts[n]; h != nil {
			each(n, h, "")
		} else if s.isFailed(n) {
			each(n, nil, s.failedWhy(n))
		}
	}
	var todo []string
	for _, n := range names {
		if s.eval == nil || s.doc.Has(n) || s.isFailed(n) || s.hasNoModule(n) {
			give(n)
		} else {
			todo = append(todo, n)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	return s.eval.Evaluate(ctx, todo, func(r nixeval.Result) {
		s.add(r)
		give(r.Name)
	})
}

func (s *source) failedWhy(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed[name]
}

// add takes one host's evaluation.
func (s *source) add(r nixeval.Result) {
	switch {
	case r.Err != nil:
		s.fail(r.Name, r.Err.Error())
	case r.NoModule:
		s.mu.Lock()
		s.noModule[r.Name] = true
		s.mu.Unlock()
		(&ui{w: s.stderr}).printf("%s; it has no tasks", s.noModuleMsg(r.Name))
	case r.Home:
		s.doc.AddHome(r.Name, r.Entry)
	default:
		s.doc.Add(r.Name, r.Entry)
	}
}

// noModuleMsg says that a target does not import lollypops' module.
func (s *source) noModuleMsg(name string) string {
	if s.eval != nil && s.eval.Homes[name] {
		return "homeConfigurations." + name + " does not import lollypops.homeModules.default"
	}
	return "nixosConfigurations." + name + " does not import lollypops.nixosModules.lollypops"
}

func (s *source) fail(name, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed[name] = why
}

// hasNoModule reports whether a target turned out not to import
// lollypops' module.
func (s *source) hasNoModule(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noModule[name]
}

func (s *source) isFailed(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.failed[name]
	return ok
}

// Failed returns the hosts that could not be evaluated, in natural order,
// with why.
func (s *source) Failed() ([]string, map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.failed))
	for n := range s.failed {
		names = append(names, n)
	}
	plan.SortNatural(names)
	return names, maps.Clone(s.failed)
}

// evalFailure is a host that could not be evaluated, for messages.
func evalFailure(host, why string) string {
	first, rest, _ := strings.Cut(why, "\n")
	if rest == "" {
		return fmt.Sprintf("%s: not evaluated: %s", host, first)
	}
	return fmt.Sprintf("%s: not evaluated: %s\n%s", host, first, indent(rest))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
