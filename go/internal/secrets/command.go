package secrets

import (
	"os/exec"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
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
	shell := []string{"sh", "-c", cmd}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(cmd), "")
	if err != nil || len(f.Stmts) != 1 {
		return shell
	}
	st := f.Stmts[0]
	call, ok := st.Cmd.(*syntax.CallExpr)
	if !ok || len(call.Args) == 0 || len(call.Assigns) > 0 || len(st.Redirs) > 0 || st.Background || st.Negated || st.Coprocess {
		return shell
	}
	argv := make([]string, 0, len(call.Args))
	for _, w := range call.Args {
		for _, part := range w.Parts {
			switch p := part.(type) {
			case *syntax.Lit, *syntax.SglQuoted:
			case *syntax.DblQuoted:
				for _, inner := range p.Parts {
					if _, ok := inner.(*syntax.Lit); !ok {
						return shell
					}
				}
			default:
				return shell
			}
		}
		lit, err := expand.Literal(&expand.Config{}, w)
		if err != nil || strings.ContainsAny(lit, "*?[~") {
			return shell
		}
		argv = append(argv, lit)
	}
	if slices.Contains(shellOnly, argv[0]) {
		return shell
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		return shell // let the shell say "not found" (exit 127), as it always did
	}
	return argv
}
