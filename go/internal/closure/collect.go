package closure

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/nix-community/go-nix/pkg/storepath"
)

// CurrentSystem is where NixOS links the running configuration.
const CurrentSystem = "/run/current-system"

// Script collects, on the target and in one session, everything Compare
// needs of the new system and of the running one (collect.sh, which
// describes its arguments and output; ParseOutput reads it). POSIX sh; run
// it as ScriptArgs does. It only reads.
//
//go:embed collect.sh
var Script string

// ScriptArgs is the argv that runs Script on the target for the new
// toplevel newToplevel, against current ("" = /run/current-system).
// newToplevel must be a store path. Pass it to ssh.Command (which quotes
// it), with sudo only if the target's store needs it: the script only
// reads.
func ScriptArgs(newToplevel, current string) ([]string, error) {
	if _, err := storepath.FromAbsolutePath(newToplevel); err != nil {
		return nil, fmt.Errorf("new system %q is not a store path", newToplevel)
	}
	if current == "" {
		current = CurrentSystem
	}
	if !strings.HasPrefix(current, "/") {
		return nil, fmt.Errorf("current system %q is not an absolute path", current)
	}
	return []string{"sh", "-c", Script, "lollypops-closure", newToplevel, current}, nil
}

// Collected is Script's output, parsed.
type Collected struct {
	New System
	// Current is the running system; its Toplevel is "" when the target
	// has none (the script's "=== current missing").
	Current System
}

const header = "lollypops-closure 1"

// ParseOutput parses Script's standard output. A missing or other header,
// a missing "=== end" (a cut connection), an unknown section, a toplevel
// that is not a store path, a link target that is not absolute, or path
// info that DecodePathInfo rejects is an error.
func ParseOutput(out []byte) (*Collected, error) {
	lines := strings.Split(string(out), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != header {
		first := ""
		if len(lines) > 0 {
			first = lines[0]
		}
		return nil, fmt.Errorf("closure collection printed %q, want %q first (is the remote shell POSIX sh?)", abbrev([]byte(first)), header)
	}
	sections := map[string][]string{}
	var order []string
	cur := ""
	ended := false
	for _, l := range lines[1:] {
		if ended {
			if strings.TrimSpace(l) != "" {
				return nil, fmt.Errorf("closure collection: output after \"=== end\": %q", abbrev([]byte(l)))
			}
			continue
		}
		if name, ok := strings.CutPrefix(l, "=== "); ok {
			if name == "end" {
				ended = true
				continue
			}
			if _, dup := sections[name]; dup {
				return nil, fmt.Errorf("closure collection: section %q twice", name)
			}
			cur = name
			sections[name] = []string{}
			order = append(order, name)
			continue
		}
		if cur == "" {
			if strings.TrimSpace(l) != "" {
				return nil, fmt.Errorf("closure collection: %q before the first section", abbrev([]byte(l)))
			}
			continue
		}
		sections[cur] = append(sections[cur], l)
	}
	if !ended {
		return nil, fmt.Errorf("closure collection: output ends before \"=== end\" (connection lost?)")
	}
	for _, name := range order {
		switch name {
		case "new toplevel", "new kernel", "new initrd", "new paths",
			"current toplevel", "current kernel", "current initrd", "current paths", "current missing":
		default:
			return nil, fmt.Errorf("closure collection: unknown section %q", name)
		}
	}
	c := &Collected{}
	var err error
	if c.New, err = parseSide(sections, "new"); err != nil {
		return nil, err
	}
	if _, missing := sections["current missing"]; missing {
		for _, s := range []string{"toplevel", "kernel", "initrd", "paths"} {
			if _, ok := sections["current "+s]; ok {
				return nil, fmt.Errorf("closure collection: \"current missing\" and \"current %s\"", s)
			}
		}
		return c, nil
	}
	if c.Current, err = parseSide(sections, "current"); err != nil {
		return nil, err
	}
	return c, nil
}

func parseSide(sections map[string][]string, side string) (System, error) {
	var s System
	one := func(what string, required bool) (string, error) {
		lines, ok := sections[side+" "+what]
		if !ok {
			return "", fmt.Errorf("closure collection: no %q section", side+" "+what)
		}
		var vals []string
		for _, l := range lines {
			if l = strings.TrimSpace(l); l != "" {
				vals = append(vals, l)
			}
		}
		switch {
		case len(vals) > 1:
			return "", fmt.Errorf("closure collection: %s %s: %d lines, want one", side, what, len(vals))
		case len(vals) == 0 && required:
			return "", fmt.Errorf("closure collection: %s %s is empty", side, what)
		case len(vals) == 0:
			return "", nil
		}
		return vals[0], nil
	}
	var err error
	if s.Toplevel, err = one("toplevel", true); err != nil {
		return s, err
	}
	if _, err := storepath.FromAbsolutePath(s.Toplevel); err != nil {
		return s, fmt.Errorf("closure collection: %s system %q is not a store path", side, s.Toplevel)
	}
	if s.Kernel, err = one("kernel", false); err != nil {
		return s, err
	}
	if s.Initrd, err = one("initrd", false); err != nil {
		return s, err
	}
	for _, t := range []string{s.Kernel, s.Initrd} {
		if t != "" && !strings.HasPrefix(t, "/") {
			return s, fmt.Errorf("closure collection: %s system: link target %q is not absolute", side, t)
		}
	}
	lines, ok := sections[side+" paths"]
	if !ok {
		return s, fmt.Errorf("closure collection: no %q section", side+" paths")
	}
	if s.Paths, err = DecodePathInfo([]byte(strings.Join(lines, "\n"))); err != nil {
		return s, fmt.Errorf("%s system %s: %w", side, s.Toplevel, err)
	}
	return s, nil
}
