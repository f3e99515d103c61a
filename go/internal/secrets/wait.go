package secrets

import _ "embed"

// WaitScript (wait.sh) is the program of a secret's unit on the host,
// lollypops-secret-<name>.service: `present PATH` returns once the secret's
// file exists (the unit's ExecStartPre), `absent PATH` once it is gone (its
// ExecStart). The NixOS module (nix/secret-units.nix) runs this very file,
// and so does the fake hosts' init (go/dev/fakehost).
//
//go:embed wait.sh
var WaitScript string
