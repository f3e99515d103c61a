package secrets

import (
	"os/exec"

	"github.com/lollypops/lollypops/go/internal/shellword"
)

// commandArgv returns how to run a secret command: its argv, and the
// program argv[0] names, looked up in progs. A plain command line —
// literal words only, as the default "pass <name>" — runs directly,
// without a shell in between: a host with hundreds of secrets saves a
// process per secret. Anything else (pipes, variables, quotes that expand,
// builtins) runs with sh -c, unchanged.
func commandArgv(cmd string, progs programs) ([]string, string) {
	argv, ok := shellword.Program(cmd)
	if ok {
		if p, err := progs.look(argv[0]); err == nil {
			return argv, p
		}
		// Not found: let the shell say so (exit 127), as it always did.
	}
	argv = []string{"sh", "-c", cmd}
	p, _ := progs.look("sh")
	return argv, p
}

// programs remembers where the programs of one host's secret commands are:
// hundreds of secrets name the same few, and a search of $PATH costs
// about as much as starting the program.
type programs map[string]lookup

type lookup struct {
	path string
	err  error
}

// look is exec.LookPath, once per name.
func (p programs) look(name string) (string, error) {
	l, ok := p[name]
	if !ok {
		l.path, l.err = exec.LookPath(name)
		p[name] = l
	}
	return l.path, l.err
}
