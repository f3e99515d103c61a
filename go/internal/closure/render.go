package closure

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// sizeThreshold is the smallest size change a package line shows, as in
// `nix store diff-closures`.
const sizeThreshold = 8 * 1024

// WriteText writes the human form: a first line with the closure size
// change and whether the kernel and the initrd change, then one line per
// package, version changes (~) first, then added (+), then removed (-),
// each sorted by name, and a last line counting the rebuilt packages:
//
//	closure size 1.1 GiB → 1.2 GiB (+52.3 MiB), 1803 → 1810 paths; kernel changed (linux-6.6.30 → linux-6.6.31); initrd changed (initrd-linux-6.6.30 → initrd-linux-6.6.31)
//	~ linux: 6.6.30 → 6.6.31, +1.2 MiB
//	+ htop: 3.3.0, +412.5 KiB
//	- nano: 7.2, -2.1 MiB
//	41 packages rebuilt (same versions, other store paths), +3.4 MiB
//
// Versions are written as `nix store diff-closures` writes them: several
// joined by ", ", ∅ for none, ε for the empty version. A package's size
// change is shown from 8 KiB on.
func (d *Diff) WriteText(w io.Writer) error {
	var b strings.Builder
	b.WriteString(d.summary())
	b.WriteByte('\n')
	for _, p := range d.Changed {
		fmt.Fprintf(&b, "~ %s: %s → %s%s\n", p.Name, showVersions(p.Before), showVersions(p.After), showDelta(p.SizeDelta))
	}
	for _, p := range d.Added {
		fmt.Fprintf(&b, "+ %s: %s%s\n", p.Name, showVersions(p.After), showDelta(p.SizeDelta))
	}
	for _, p := range d.Removed {
		fmt.Fprintf(&b, "- %s: %s%s\n", p.Name, showVersions(p.Before), showDelta(p.SizeDelta))
	}
	if n := len(d.Rebuilt); n > 0 {
		var delta int64
		for _, p := range d.Rebuilt {
			delta += p.SizeDelta
		}
		fmt.Fprintf(&b, "%d %s rebuilt (same versions, other store paths)%s\n", n, plural(n, "package", "packages"), showDelta(delta))
	}
	if len(d.Changed)+len(d.Added)+len(d.Removed)+len(d.Rebuilt) == 0 {
		b.WriteString("no package changes\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// summary is the first line of the text form.
func (d *Diff) summary() string {
	var parts []string
	if d.Before.Toplevel == "" {
		parts = append(parts, fmt.Sprintf("no current system; new closure %s, %d paths",
			humanSize(d.After.Size), d.After.Paths))
	} else {
		change := "no change"
		if d.SizeDelta != 0 {
			change = signedSize(d.SizeDelta)
		}
		parts = append(parts, fmt.Sprintf("closure size %s → %s (%s), %d → %d paths",
			humanSize(d.Before.Size), humanSize(d.After.Size), change, d.Before.Paths, d.After.Paths))
	}
	parts = append(parts, showLink("kernel", d.Kernel), showLink("initrd", d.Initrd))
	return strings.Join(parts, "; ")
}

// showLink says whether a kernel or initrd link changes, naming the store
// paths' name-version.
func showLink(what string, l Link) string {
	switch {
	case l.Before == "" && l.After == "":
		return "no " + what
	case !l.Changed:
		return what + " unchanged"
	}
	before, after := linkLabel(l.Before), linkLabel(l.After)
	if before == after {
		return fmt.Sprintf("%s changed (%s, rebuilt)", what, after)
	}
	return fmt.Sprintf("%s changed (%s → %s)", what, before, after)
}

// linkLabel is the name-version of the store path a link target is in.
func linkLabel(target string) string {
	if target == "" {
		return "∅"
	}
	n, err := ParsePath(storePathOf(target))
	if err != nil {
		return target
	}
	return n.String()
}

// WriteJSON writes d as indented JSON (the --json form), one document
// ending in a newline.
func (d *Diff) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func showVersions(vs []string) string {
	if len(vs) == 0 {
		return "∅"
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		if v == "" {
			v = "ε"
		}
		out[i] = v
	}
	return strings.Join(out, ", ")
}

// showDelta is ", +1.2 MiB" for a change of 8 KiB or more, else "".
func showDelta(delta int64) string {
	if delta > -sizeThreshold && delta < sizeThreshold {
		return ""
	}
	return ", " + signedSize(delta)
}

func signedSize(delta int64) string {
	if delta < 0 {
		return "-" + humanSize(uint64(-delta))
	}
	return "+" + humanSize(uint64(delta))
}

// humanSize renders n bytes in binary units with one decimal: 512 B,
// 12.3 KiB, 1.2 GiB.
func humanSize(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n) / 1024
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if v < 1024 || unit == "TiB" {
			return fmt.Sprintf("%.1f %s", v, unit)
		}
		v /= 1024
	}
	panic("unreachable")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
