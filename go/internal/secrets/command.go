package secrets

import (
	"os/exec"
	"slices"

	"github.com/lollypops/lollypops/go/internal/shellword"
)

// shellOnly are words a shell runs itself, or differently from the program
// of the same name (echo, printf): commands starting with them keep the shell.
var shellOnly = []string{".", ":", "[", "alias", "break", "case", "cd", "command", "continue", "echo",
	"eval", "exec", "exit", "export", "false", "for", "if", "local", "printf", "read", "readonly",
	"return", "set", "shift", "source", "test", "times", "trap", "true", "type", "ulimit", "umask",
	"unset", "until", "wait", "while"}

// commandArgv returns how to run a secret command. A plain command line —
// literal words only, as the default "pass <name>" — runs directly, without
// a shell in between: a host with hundreds of secrets saves a process per
// secret. Anything else (pipes, variables, quotes that expand, builtins)
// runs with sh -c, unchanged.
func commandArgv(cmd string) []string {
	argv, ok := shellword.Literal(cmd)
	if !ok || slices.Contains(shellOnly, argv[0]) {
		return []string{"sh", "-c", cmd}
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		// Let the shell say "not found" (exit 127), as it always did.
		return []string{"sh", "-c", cmd}
	}
	return argv
}
