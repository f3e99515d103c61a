//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"unicode/utf8"
)

// rawControl returns what in s a terminal would act on or cannot show:
// the first control character but newline and tab, bidirectional control
// or byte that is not UTF-8, with its context; "" when s is plain text.
// (Written here, not taken from package termtext, so that the tests judge
// the runner by what it prints, whatever it uses.)
func rawControl(s string) string {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		bad := r == utf8.RuneError && size == 1 ||
			r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 ||
			r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
		if bad {
			return fmt.Sprintf("%q at byte %d: %q", r, i, s[max(0, i-40):min(len(s), i+40)])
		}
		i += size
	}
	return ""
}

// forged is text that, printed raw, retitles the terminal (OSC 0), erases
// the line and returns to its start (CSI 2K, CR), then forges one of
// lollypops' own lines.
const forged = "\x1b]0;pwned\x07\x1b[2K\rlollypops: host1 deployed OK"

// escapeFlake is a flake whose nixosConfigurations hold hostile text: an
// attribute named with escape sequences, a host that traces them while it
// is evaluated, one whose evaluation throws them. host1 is a valid host.
func escapeFlake(t *testing.T) string {
	t.Helper()
	entry := func(name string) string {
		h := plainHost(name)
		h.Flake = ""
		data, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		return "{ lollypops.inventory-entry = { name, flake }: builtins.fromJSON " + nixStr(string(data)) + " // { inherit flake; }; }"
	}
	// Nix string literals have no escape for ESC: JSON has.
	text := func(s string) string {
		j, _ := json.Marshal(s)
		return "(builtins.fromJSON " + nixStr(string(j)) + ")"
	}
	outputs := `{ self }: {
  nixosConfigurations = {
    ${` + text(forged) + `} = { config = ` + entry("evil") + `; };
    host1 = { config = builtins.trace ` + text("warning: "+forged) + " " + entry("host1") + `; };
    host2 = { config = { lollypops.inventory-entry = { name, flake }: throw ` + text("boom "+forged) + `; }; };
  };
}`
	dir := filepath.Join(t.TempDir(), "flake")
	if _, err := addFlake(dir, outputs, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Text that came from a flake (attribute names, Nix's traces and errors)
// reaches the terminal cleaned: no escape sequence, no carriage return, no
// byte that is not UTF-8; the escaped text says what was there.
func TestTerminalEscapesFromAFlake(t *testing.T) {
	requireHosts(t)
	work := t.TempDir()
	r := &runner{t: t, dir: work, flake: escapeFlake(t)}
	for _, args := range [][]string{{"--list-all"}, {"--dry", "all"}, {"host2"}, {"all"}} {
		res := r.run(args...)
		if bad := rawControl(res.output()); bad != "" {
			t.Errorf("%q printed a raw control character: %s\n%s", args, bad, res)
		}
		if strings.Contains(res.output(), "\nlollypops: host1 deployed OK") || strings.HasPrefix(res.output(), "lollypops: host1 deployed OK") {
			t.Errorf("%q: the forged line stands on its own:\n%s", args, res)
		}
	}
	res := r.run("--dry", "all")
	// Nix 2.8 drops escape sequences from its own messages itself (later
	// versions keep more of them); the attribute names come raw, in JSON.
	for _, want := range []string{
		`nixosConfigurations."\x1b]0;pwned\a\x1b[2K\rlollypops: host1 deployed OK" is left out`,
		`trace: warning: `,
		`lollypops: host2: not evaluated: boom `,
	} {
		if !strings.Contains(res.output(), want) {
			t.Errorf("output lacks %q:\n%s", want, res)
		}
	}
	if entries, _ := os.ReadDir(work); len(entries) != 0 {
		t.Errorf("the runs left %d files in the working directory", len(entries))
	}
}
