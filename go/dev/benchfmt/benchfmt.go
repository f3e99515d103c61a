// Package benchfmt is what the benchmarks (make bench, make bench-nix)
// share: how they name the machine and print a duration.
package benchfmt

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// CPU is the machine's CPU model, from /proc/cpuinfo.
func CPU() string {
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				return strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
			}
		}
	}
	return "unknown CPU"
}

// Version is the first line a program prints of its version, or "?".
func Version(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// Secs prints a duration in seconds with three significant digits.
func Secs(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.3f s", d.Seconds())
}
