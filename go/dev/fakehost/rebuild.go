package fakehost

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RebuildCall is one recorded call of a host's nixos-rebuild or
// switch-to-configuration stand-in (system/nixos-rebuild.sh,
// system/switch-to-configuration.sh), which record every call in
// /run/fakehost/calls before doing anything else.
type RebuildCall struct {
	Program  string   // "nixos-rebuild" or "switch-to-configuration"
	Args     []string // byte-exact argv[1:]
	User     string   // effective user (id -un)
	Hostname string
	Start    time.Time
	End      time.Time // zero if the call is running or was killed
	Exit     int       // exit code it returned; -1 if not finished
	// Flake is the value of --flake as given ("" without, or when the call
	// failed before reading it: SetRebuildExit, a bad option).
	// FlakeTarget is the store path the reference resolved to (the "path"
	// of `nix flake metadata`; "" when Nix rejected the reference), and
	// FlakeValid whether that path is valid in the host's own store.
	Flake       string
	FlakeTarget string
	FlakeValid  bool
	// InvocationID is $INVOCATION_ID of the call: set when it ran as a
	// unit of the host's init (systemd-run, as nixos-rebuild runs
	// switch-to-configuration), "" in an ssh session.
	InvocationID string
	// Toplevel is the system a switch-to-configuration call belongs to
	// (a specialisation's own toplevel for -c); "" for nixos-rebuild.
	Toplevel string
	// InstallBootloader: NIXOS_INSTALL_BOOTLOADER=1 was in the environment
	// of a switch-to-configuration call.
	InstallBootloader bool
}

// RebuildCalls returns the host's nixos-rebuild calls, oldest first. They
// survive reboots (Stop, Start).
func (h *Host) RebuildCalls() ([]RebuildCall, error) { return h.calls("nixos-rebuild") }

// Activations returns the host's switch-to-configuration calls, oldest
// first: those of its nixos-rebuild, and those that a deployer's
// nixos-rebuild --target-host (WriteLocalRebuild) runs over ssh. The
// first generation, made at the host's first boot, has none.
func (h *Host) Activations() ([]RebuildCall, error) { return h.calls("switch-to-configuration") }

func (h *Host) calls(prog string) ([]RebuildCall, error) {
	recs, err := readRecords(filepath.Join(h.Dir, "ctl", "calls"))
	if err != nil {
		return nil, fmt.Errorf("fakehost: %s: %w", h.Name, err)
	}
	var out []RebuildCall
	for _, r := range recs {
		if r.str("prog") != prog {
			continue
		}
		c := RebuildCall{
			Program: prog, Args: r.args, User: r.str("user"), Hostname: r.str("host"),
			Start: r.start, End: r.end, Exit: r.exit,
			Flake: r.str("flake"), FlakeTarget: r.str("target"), FlakeValid: r.str("valid") == "1",
			InvocationID: r.str("invocation"), Toplevel: r.str("toplevel"), InstallBootloader: r.str("installBootloader") == "1",
		}
		if r.bad != nil {
			return nil, fmt.Errorf("fakehost: %s: %w", h.Name, r.bad)
		}
		out = append(out, c)
	}
	return out, nil
}

// record is one parsed call record.
type record struct {
	fields     map[string]string // raw values
	args       []string
	start, end time.Time
	exit       int
	bad        error // first decoding problem
}

// str decodes a hex field.
func (r *record) str(key string) string {
	b, err := hex.DecodeString(r.fields[key])
	if err != nil && r.bad == nil {
		r.bad = fmt.Errorf("field %s: %w", key, err)
	}
	return string(b)
}

// readRecords parses every record in dir, oldest first. A finished record
// wins over its ".run" twin; files being written (".tmp") are skipped.
func readRecords(dir string) ([]*record, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	byID := map[string]string{}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".done")
		if !ok {
			if id, ok = strings.CutSuffix(e.Name(), ".run"); !ok || byID[id] != "" {
				continue
			}
		}
		byID[id] = e.Name()
	}
	var out []*record
	for id, name := range byID {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) && strings.HasSuffix(name, ".run") {
			b, err = os.ReadFile(filepath.Join(dir, id+".done")) // finished meanwhile
		}
		if err != nil {
			return nil, err
		}
		r, err := parseRecord(b)
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", name, err)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *record) int { return a.start.Compare(b.start) })
	return out, nil
}

func parseRecord(b []byte) (*record, error) {
	r := &record{fields: map[string]string{}, exit: -1, args: []string{}}
	argc := -1
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "arg":
			a, err := hex.DecodeString(v)
			if err != nil {
				return nil, fmt.Errorf("arg: %w", err)
			}
			r.args = append(r.args, string(a))
		case "argc":
			argc, _ = strconv.Atoi(v)
		case "start", "end":
			t, err := parseStamp(v)
			if err != nil {
				return nil, err
			}
			if k == "start" {
				r.start = t
			} else {
				r.end = t
			}
		case "exit":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("exit: %w", err)
			}
			r.exit = n
		default:
			r.fields[k] = v
		}
	}
	if argc != len(r.args) {
		return nil, fmt.Errorf("argc %d but %d args", argc, len(r.args))
	}
	return r, nil
}

// parseStamp parses `date +%s.%N`.
func parseStamp(s string) (time.Time, error) {
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
		}
	}
	return time.Unix(n, ns), nil
}
