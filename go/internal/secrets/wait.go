package secrets

import (
	_ "embed"
	"fmt"
	"strings"
)

// WaitScript (wait.sh) is the program of a secret's unit on the host,
// lollypops-secret-<name>.service: `present PATH` returns once the secret's
// file exists (the unit's ExecStartPre), `absent PATH` once it is gone (its
// ExecStart). The NixOS module (nix/secret-units.nix) runs this very file,
// and so does the fake hosts' init (go/dev/fakehost).
//
//go:embed wait.sh
var WaitScript string

// UnitName is the name of the unit of the secret name on a NixOS host,
// as the NixOS module makes it (unitNameOf in nix/secrets-options.nix):
// lollypops-secret-<name>.service, the name escaped as `systemd-escape`
// does ("/" becomes "-"; every byte but ASCII letters, digits, ":", "_"
// and a "." that is not first becomes \xHH). ok is false for a name that
// has no unit: bytes outside printable ASCII, or a unit name longer than
// systemd's 255 bytes.
func UnitName(name string) (unit string, ok bool) {
	var b strings.Builder
	b.WriteString("lollypops-secret-")
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c < ' ' || c > '~':
			return "", false
		case c == '/':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == ':', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	b.WriteString(".service")
	if name == "" || b.Len() > 255 {
		return "", false
	}
	return b.String(), true
}
