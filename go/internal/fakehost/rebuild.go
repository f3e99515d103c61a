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

// recordLib is the sh part shared by the fake programs: hex-encode values
// (any byte but NUL survives), write records atomically. A record is first
// "<id>.run" (everything but the end) and then "<id>.done"; a call that was
// killed keeps its ".run".
const recordLib = `hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
start=$(date +%s.%N)
rec=$calls/$start.$$
`

const recordEnd = `{ cat "$rec.run"; echo "end $(date +%s.%N)"; echo "exit $e"; } >"$rec.tmp" &&
	mv "$rec.tmp" "$rec.done" && rm -f "$rec.run"
`

// hostFake is the fake nixos-rebuild (and, under that name, the fake
// switch-to-configuration) in every host's /run/current-system/sw/bin.
const hostFake = `#!/bin/sh
# Fake nixos-rebuild / switch-to-configuration installed by fakehost: records
# the call in /run/fakehost/calls, prints one line, then obeys the knobs
# /run/fakehost/rebuild-sleep (seconds), /run/fakehost/activate-hook (run
# for the actions that activate, as NixOS activation would create users) and
# /run/fakehost/rebuild-exit.
prog=${0##*/}
ctl=/run/fakehost
calls=$ctl/calls
` + recordLib + `{
	echo "prog $(hex "$prog")"
	echo "start $start"
	echo "host $(hex "$(hostname)")"
	echo "user $(hex "$(id -un)")"
	echo "argc $#"
	for a in "$@"; do echo "arg $(hex "$a")"; done
	flake= prev=
	for a in "$@"; do
		case $prev in --flake) flake=$a ;; esac
		case $a in --flake=*) flake=${a#--flake=} ;; esac
		prev=$a
	done
	if [ -n "$flake" ]; then
		ref=${flake%%#*}
		ref=${ref#path:}
		ref=${ref%%\?*}
		target=$(readlink -f -- "$ref" 2>/dev/null) || target=
		valid=0
		case $target in
		/nix/store/?*)
			rest=${target#/nix/store/}
			nix-store --check-validity "/nix/store/${rest%%/*}" >/dev/null 2>&1 && valid=1 ;;
		esac
		echo "flake $(hex "$flake")"
		echo "target $(hex "$target")"
		echo "valid $valid"
	fi
} >"$rec.tmp" && mv "$rec.tmp" "$rec.run"
echo "fake $prog on $(hostname): $*"
s=$(cat "$ctl/rebuild-sleep" 2>/dev/null) || s=
case $s in '' | 0 | 0.000) ;; *) sleep "$s" ;; esac
if [ -f "$ctl/activate-hook" ]; then
	case $1 in switch | test) sh "$ctl/activate-hook" ;; esac
fi
e=$(cat "$ctl/rebuild-exit" 2>/dev/null) || e=
: "${e:=0}"
` + recordEnd + `exit "$e"
`

func writeHostFakes(bin string) error {
	for _, name := range []string{"nixos-rebuild", "switch-to-configuration"} {
		p := filepath.Join(bin, name)
		if err := os.WriteFile(p, []byte(hostFake), 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// RebuildCall is one recorded call of a host's fake nixos-rebuild or
// switch-to-configuration.
type RebuildCall struct {
	Program  string   // "nixos-rebuild" or "switch-to-configuration"
	Args     []string // byte-exact argv[1:]
	User     string   // effective user (id -un)
	Hostname string
	Start    time.Time
	End      time.Time // zero if the call is running or was killed
	Exit     int       // exit code it returned; -1 if not finished
	// For --flake <ref>#<attr>: the value as given, readlink -f of <ref>
	// (after stripping path: and ?query), and whether the store path it
	// lies in is valid in the host's own store.
	Flake       string
	FlakeTarget string
	FlakeValid  bool
}

// RebuildCalls returns the host's nixos-rebuild calls, oldest first.
func (h *Host) RebuildCalls() ([]RebuildCall, error) { return h.calls("nixos-rebuild") }

// Activations returns the host's switch-to-configuration calls (what the
// deployer-side fake of WriteLocalRebuild triggers), oldest first.
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
			Flake: r.str("flake"), FlakeTarget: r.str("target"), FlakeValid: r.fields["valid"] == "1",
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
