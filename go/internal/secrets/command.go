package secrets

import (
	"os/exec"

	"github.com/lollypops/lollypops/go/internal/shellword"
)

// commandArgv returns how to run a secret command. A plain command line —
// literal words only, as the default "pass <name>" — runs directly, without
// a shell in between: a host with hundreds of secrets saves a process per
// secret. Anything else (pipes, variables, quotes that expand, builtins)
// runs with sh -c, unchanged.
func commandArgv(cmd string) []string {
	argv, ok := shellword.Program(cmd)
	if !ok {
		return []string{"sh", "-c", cmd}
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		// Let the shell say "not found" (exit 127), as it always did.
		return []string{"sh", "-c", cmd}
	}
	return argv
}
