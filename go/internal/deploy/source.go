package deploy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/evalcache"
	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/nixeval"
	"github.com/lollypops/lollypops/go/internal/output"
	"github.com/lollypops/lollypops/go/internal/plan"
)

// Spec says where a run's hosts come from: an inventory file, or a flake.
type Spec struct {
	Inventory string // an inventory JSON file
	Flake     string // a flake reference
	// NamesFile lists the flake's targets (the app writes it), so that
	// they are not evaluated to be listed; "" to ask Nix.
	NamesFile string
	EvalJobs  int // nix processes at most (0: one per CPU)
	// NoCache evaluates every host anew, neither reading nor writing the
	// evaluation cache (package evalcache).
	NoCache bool
}

// source is where a run's hosts come from: an inventory file, whose hosts
// are decoded as the command needs them, or a flake, whose hosts are
// evaluated as the command needs them, in parallel. A host that cannot be
// evaluated or decoded fails alone: failed says why, and the run goes on
// with the others.
type Source struct {
	doc   *config.Document // the entries at hand: every host of an inventory file
	eval  *nixeval.Evaluator
	names []string // every host, sorted
	has   map[string]bool
	out   *output.Sink

	mu       sync.Mutex
	failed   map[string]string // host → why it has no entry
	noModule map[string]bool   // hosts without lollypops' module
}

func Open(ctx context.Context, h Spec, out *output.Sink) (*Source, error) {
	if h.Inventory != "" {
		doc, err := config.Open(h.Inventory)
		if err != nil {
			return nil, err
		}
		return newSource(doc, doc.Names(), nil, out), nil
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
	var t TargetNames
	if h.NamesFile != "" {
		if t, err = ReadTargetNames(h.NamesFile); err != nil {
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
	t.Hosts = validNames(t.Hosts, false, out)
	t.Homes = validNames(t.Homes, true, out)
	ev := &nixeval.Evaluator{Nix: nix, Flake: f, Jobs: h.EvalJobs, Stderr: out.Foreign(), Homes: map[string]bool{}}
	if cache != nil {
		ev.Cache = cache
	}
	for _, n := range t.Homes {
		if slices.Contains(t.Hosts, n) {
			return nil, fault.Inputf("their names share the task names (\"<name>:rebuild\"); rename one of them", "%q is both a NixOS host (nixosConfigurations) and a home-manager configuration (homeConfigurations)", n)
		}
		ev.Homes[n] = true
	}
	return newSource(config.NewDocument(), append(t.Hosts, t.Homes...), ev, out), nil
}

// validNames leaves out, with a warning, the flake's attribute names that
// cannot name tasks: such a target can never be deployed, and its name,
// which may hold anything (escape sequences, newlines), goes no further
// than the warning, quoted.
func validNames(names []string, home bool, out *output.Sink) []string {
	kept := names[:0:0]
	for _, n := range names {
		if err := config.CheckName(n, home); err != nil {
			var ce *config.Error
			errors.As(err, &ce)
			out.Printf("%s.%s is left out: %s", outputName(home), strconv.Quote(n), ce.Msg)
			continue
		}
		kept = append(kept, n)
	}
	return kept
}

func outputName(home bool) string {
	if home {
		return "homeConfigurations"
	}
	return "nixosConfigurations"
}

// TargetNames is what the app lists of a flake (LOLLYPOPS_FLAKE_HOSTS).
type TargetNames struct {
	Hosts []string `json:"hosts"` // nixosConfigurations
	Homes []string `json:"homes"` // homeConfigurations
}

// ReadTargetNames reads the app's list of a flake's targets.
func ReadTargetNames(file string) (TargetNames, error) {
	var t TargetNames
	data, err := os.ReadFile(file)
	if err == nil {
		err = json.Unmarshal(data, &t)
	}
	if err != nil {
		return t, fmt.Errorf("reading the flake's target names (%s): %w", file, err)
	}
	return t, nil
}

func newSource(doc *config.Document, names []string, ev *nixeval.Evaluator, out *output.Sink) *Source {
	s := &Source{doc: doc, eval: ev, names: slices.Clone(names), has: map[string]bool{}, out: out,
		failed: map[string]string{}, noModule: map[string]bool{}}
	sort.Strings(s.names)
	for _, n := range names {
		s.has[n] = true
	}
	return s
}

// Streams reports whether hosts arrive one by one as they are evaluated
// (a flake), rather than all at once (an inventory file).
func (s *Source) Streams() bool { return s.eval != nil }

// Names returns every host's name, sorted; a flake's hosts are listed
// without being evaluated.
func (s *Source) Names() []string { return s.names }

// Has reports whether a host of that name exists.
func (s *Source) Has(name string) bool { return s.has[name] }

// Load returns the named hosts (nil: every host), evaluating those not
// evaluated yet. Hosts that failed are left out; Failed says why. A host
// without lollypops' module fails when it is named on the command line,
// and is left out with a warning when it was not (every host, a glob).
func (s *Source) Load(ctx context.Context, names []string) (*config.Inventory, error) {
	if names == nil {
		return s.load(ctx, s.names, true)
	}
	return s.load(ctx, names, false)
}

// LoadMatched is Load for hosts a selector matched: a host without the
// module is left out, not failed.
func (s *Source) LoadMatched(ctx context.Context, names []string) (*config.Inventory, error) {
	return s.load(ctx, names, true)
}

func (s *Source) load(ctx context.Context, names []string, all bool) (*config.Inventory, error) {
	if s.eval != nil {
		var todo []string
		for _, n := range names {
			if !s.doc.Has(n) && !s.isFailed(n) && !s.HasNoModule(n) {
				todo = append(todo, n)
			}
		}
		if len(todo) > 0 {
			if err := s.eval.Evaluate(ctx, todo, s.add); err != nil {
				return nil, err
			}
		}
	}
	var decode []string
	for _, n := range names {
		switch {
		case s.HasNoModule(n) && all:
			continue
		case s.HasNoModule(n) && !s.isFailed(n):
			s.fail(n, s.noModuleMsg(n)+", so it has no tasks")
			continue
		case s.isFailed(n):
			continue
		}
		decode = append(decode, n)
	}
	hosts, errs := s.doc.Hosts(decode)
	inv := &config.Inventory{Version: config.Version, Hosts: make(map[string]*config.Host, len(decode))}
	for i, n := range decode {
		if err := errs[i]; err != nil {
			if s.eval == nil {
				return nil, err // an inventory file is written whole: it is wrong as a whole
			}
			s.fail(n, err.Error())
			continue
		}
		inv.Hosts[n] = hosts[i]
	}
	return inv, nil
}

// Stream is Load, one host at a time: each of the named hosts (nil: every
// host) is passed to each as soon as it is evaluated, in no set order,
// from one goroutine at a time; failure says why a host has none.
func (s *Source) Stream(ctx context.Context, names []string, each func(name string, h *config.Host, failure string)) error {
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
		if s.eval == nil || s.doc.Has(n) || s.isFailed(n) || s.HasNoModule(n) {
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

func (s *Source) failedWhy(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed[name]
}

// add takes one host's evaluation.
func (s *Source) add(r nixeval.Result) {
	switch {
	case r.Err != nil:
		s.fail(r.Name, r.Err.Error())
	case r.NoModule:
		s.mu.Lock()
		s.noModule[r.Name] = true
		s.mu.Unlock()
		s.out.Printf("%s; it has no tasks", s.noModuleMsg(r.Name))
	case r.Home:
		s.doc.AddHome(r.Name, r.Entry)
	default:
		s.doc.Add(r.Name, r.Entry)
	}
}

// noModuleMsg says that a target does not import lollypops' module.
func (s *Source) noModuleMsg(name string) string {
	if s.eval != nil && s.eval.Homes[name] {
		return "homeConfigurations." + name + " does not import lollypops.homeModules.default"
	}
	return "nixosConfigurations." + name + " does not import lollypops.nixosModules.lollypops"
}

func (s *Source) fail(name, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed[name] = why
}

// hasNoModule reports whether a target turned out not to import
// lollypops' module.
func (s *Source) HasNoModule(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noModule[name]
}

func (s *Source) isFailed(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.failed[name]
	return ok
}

// Failed returns the hosts that could not be evaluated, in natural order,
// with why.
func (s *Source) Failed() ([]string, map[string]string) {
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
func EvalFailure(host, why string) string {
	first, rest, _ := strings.Cut(why, "\n")
	if rest == "" {
		return fmt.Sprintf("%s: not evaluated: %s", host, first)
	}
	return fmt.Sprintf("%s: not evaluated: %s\n%s", host, first, indent(rest))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
