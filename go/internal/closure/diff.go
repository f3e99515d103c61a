package closure

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// FormatVersion is the version field of Diff's JSON form. It changes only
// when a field is removed or changes meaning; new fields may be added.
const FormatVersion = 1

// System is one side of the comparison: a NixOS toplevel, the resolved
// targets of its kernel and initrd links, and its closure.
type System struct {
	// Toplevel is the system's store path; "" for no system (a machine
	// without /run/current-system: everything is new).
	Toplevel string
	// Kernel and Initrd are the resolved targets of <toplevel>/kernel and
	// <toplevel>/initrd (readlink -f), such as
	// /nix/store/…-linux-6.6.30/bzImage; "" when the toplevel has none.
	Kernel, Initrd string
	// Paths is the closure of Toplevel (nix path-info --json --recursive).
	Paths []PathInfo
}

// Diff is what changes from Before to After; its JSON form (WriteJSON) is
// the stable output of --json. Lists are sorted by name and never null.
type Diff struct {
	// Version is FormatVersion.
	Version int `json:"version"`
	// Before and After are the two closures' totals.
	Before Totals `json:"before"`
	After  Totals `json:"after"`
	// SizeDelta is After.Size - Before.Size, in bytes.
	SizeDelta int64 `json:"sizeDelta"`
	// Kernel and Initrd compare the resolved link targets.
	Kernel Link `json:"kernel"`
	Initrd Link `json:"initrd"`
	// Added are packages (names) only After has; Before is empty, After
	// lists all their versions.
	Added []Package `json:"added"`
	// Removed are packages only Before has; After is empty.
	Removed []Package `json:"removed"`
	// Changed are packages on both sides whose set of versions differs.
	// Like `nix store diff-closures`, Before lists only the versions After
	// lacks and After only the versions Before lacks (other versions may
	// exist on both sides); either may be empty ("1.0 → 1.0, 1.1" is
	// Before [] After ["1.1"]).
	Changed []Package `json:"changed"`
	// Rebuilt are packages with the same versions on both sides but other
	// store paths (same name and version, another build, or an output
	// added or dropped); Before and After both list the rebuilt versions.
	Rebuilt []Package `json:"rebuilt"`
}

// Totals sums up one closure.
type Totals struct {
	// Toplevel is the system's store path ("" for none).
	Toplevel string `json:"toplevel"`
	// Paths counts the store paths of the closure (.drv files excluded).
	Paths int `json:"paths"`
	// Size is the closure size: the sum of the NAR sizes, in bytes.
	Size uint64 `json:"size"`
}

// Link is the kernel or the initrd of both systems.
type Link struct {
	// Before and After are the resolved targets ("" for none).
	Before string `json:"before"`
	After  string `json:"after"`
	// Changed is Before != After.
	Changed bool `json:"changed"`
}

// Package is one package name whose versions or store paths differ.
type Package struct {
	Name string `json:"name"`
	// Before and After are versions (see Diff for which); "" is a
	// package without a version.
	Before []string `json:"before"`
	After  []string `json:"after"`
	// SizeBefore and SizeAfter sum the NAR sizes of all the store paths
	// of this name on each side; SizeDelta is their difference.
	SizeBefore uint64 `json:"sizeBefore"`
	SizeAfter  uint64 `json:"sizeAfter"`
	SizeDelta  int64  `json:"sizeDelta"`
}

// group is one side's closure: name → version → store paths, and sizes.
type group struct {
	versions map[string]map[string][]string
	size     map[string]uint64
	total    Totals
}

func newGroup(s System) (*group, error) {
	g := &group{versions: map[string]map[string][]string{}, size: map[string]uint64{}}
	g.total.Toplevel = s.Toplevel
	if s.Toplevel != "" {
		if _, err := ParsePath(s.Toplevel); err != nil {
			return nil, fmt.Errorf("toplevel: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, p := range s.Paths {
		n, err := ParsePath(p.Path)
		if err != nil {
			return nil, err
		}
		if seen[p.Path] || strings.HasSuffix(p.Path, ".drv") {
			continue
		}
		seen[p.Path] = true
		if g.versions[n.Name] == nil {
			g.versions[n.Name] = map[string][]string{}
		}
		g.versions[n.Name][n.Version] = append(g.versions[n.Name][n.Version], p.Path)
		g.size[n.Name] += p.NarSize
		g.total.Paths++
		g.total.Size += p.NarSize
	}
	return g, nil
}

// Compare computes the diff between the running system (before) and the
// new one (after). Package names and versions come from ParseName, and are
// grouped as `nix store diff-closures` groups them; .drv paths are
// ignored, a path listed twice counts once. A path that is not a store
// path is an error naming it.
func Compare(before, after System) (*Diff, error) {
	b, err := newGroup(before)
	if err != nil {
		return nil, fmt.Errorf("current system: %w", err)
	}
	a, err := newGroup(after)
	if err != nil {
		return nil, fmt.Errorf("new system: %w", err)
	}
	d := &Diff{
		Version:   FormatVersion,
		Before:    b.total,
		After:     a.total,
		SizeDelta: int64(a.total.Size) - int64(b.total.Size),
		Kernel:    link(before.Kernel, after.Kernel),
		Initrd:    link(before.Initrd, after.Initrd),
		Added:     []Package{},
		Removed:   []Package{},
		Changed:   []Package{},
		Rebuilt:   []Package{},
	}
	names := slices.Sorted(maps.Keys(b.versions))
	for n := range a.versions {
		if b.versions[n] == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		bv, av := b.versions[name], a.versions[name]
		p := Package{Name: name, Before: []string{}, After: []string{},
			SizeBefore: b.size[name], SizeAfter: a.size[name],
			SizeDelta: int64(a.size[name]) - int64(b.size[name])}
		var rebuilt []string
		for v, paths := range bv {
			if ap, ok := av[v]; !ok {
				p.Before = append(p.Before, v)
			} else if !sameSet(paths, ap) {
				rebuilt = append(rebuilt, v)
			}
		}
		for v := range av {
			if _, ok := bv[v]; !ok {
				p.After = append(p.After, v)
			}
		}
		slices.SortFunc(p.Before, compareVersions)
		slices.SortFunc(p.After, compareVersions)
		switch {
		case bv == nil:
			d.Added = append(d.Added, p)
		case av == nil:
			d.Removed = append(d.Removed, p)
		case len(p.Before) > 0 || len(p.After) > 0:
			d.Changed = append(d.Changed, p)
		case len(rebuilt) > 0:
			slices.SortFunc(rebuilt, compareVersions)
			p.Before, p.After = rebuilt, slices.Clone(rebuilt)
			d.Rebuilt = append(d.Rebuilt, p)
		}
	}
	return d, nil
}

func link(before, after string) Link {
	return Link{Before: before, After: after, Changed: before != after}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
