package planfile

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/termtext"
)

// Names returns the plan's hosts in natural order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Hosts))
	for n := range f.Hosts {
		names = append(names, n)
	}
	plan.SortNatural(names)
	return names
}

// Render writes the plan for people: per host, the system change, the
// closure diff, the secrets that change and the units that restart or
// reload. Names from the flake pass termtext.
func Render(w io.Writer, f *File) error {
	var b strings.Builder
	for i, name := range f.Names() {
		if i > 0 {
			b.WriteByte('\n')
		}
		renderHost(&b, name, f.Action, f.Hosts[name])
	}
	_, err := io.WriteString(w, termtext.Text(b.String()))
	return err
}

func renderHost(b *strings.Builder, name, action string, h *Host) {
	change := "no system change"
	if h.Current != h.System {
		change = "new system"
	}
	reboot := ""
	if h.Reboot && h.Current != h.System {
		reboot = ", new kernel or initrd (in use after a reboot)"
	}
	fmt.Fprintf(b, "%s: %s, %s%s\n", name, action, change, reboot)
	current := h.Current
	if current == "" {
		current = "(none)"
	}
	fmt.Fprintf(b, "  running  %s\n  new      %s\n", current, h.System)
	if h.Diff != nil {
		var d strings.Builder
		h.Diff.WriteText(&d)
		for _, l := range strings.Split(strings.TrimRight(d.String(), "\n"), "\n") {
			fmt.Fprintf(b, "  %s\n", l)
		}
	}
	var changing []string
	for _, s := range h.Secrets {
		if s.Changes {
			changing = append(changing, fmt.Sprintf("%q (%s)", s.Name, s.Path))
		}
	}
	switch {
	case len(h.Secrets) == 0:
		b.WriteString("  secrets: none\n")
	case len(changing) == 0:
		fmt.Fprintf(b, "  secrets: %d, none changes\n", len(h.Secrets))
	default:
		fmt.Fprintf(b, "  secrets: %d, %d change: %s\n", len(h.Secrets), len(changing), strings.Join(changing, ", "))
	}
	if len(h.RestartUnits) > 0 {
		fmt.Fprintf(b, "  restarts (if running): %s\n", strings.Join(h.RestartUnits, ", "))
	}
	if len(h.ReloadUnits) > 0 {
		fmt.Fprintf(b, "  reloads (if running): %s\n", strings.Join(h.ReloadUnits, ", "))
	}
}

// The files a plan's or an apply's steps share with the command, in the
// run directory. Planning: the command writes the salt (SaltFile), each
// host's diff step writes its part (PartFile). Applying: the command
// writes each host's entry and the salt (ApplyFile) for its steps.

// SaltFile holds the salt of the plan being made.
func SaltFile(runDir string) string { return filepath.Join(runDir, "plan", "salt") }

// PartFile is what a host's diff step planned.
func PartFile(runDir, host string) string { return filepath.Join(runDir, "plan", host+".json") }

// ApplyFile is a host's entry of the plan being applied.
func ApplyFile(runDir, host string) string { return filepath.Join(runDir, "apply", host+".json") }

// Applied is what ApplyFile holds.
type Applied struct {
	Salt string `json:"salt"`
	Host *Host  `json:"host"`
}
