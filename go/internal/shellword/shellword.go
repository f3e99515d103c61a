// Package shellword reads shell command lines: the ones that are nothing
// but words, which run without a shell, and the programs a line runs. The
// secret step (which runs plain command lines without a shell) and
// check-vars (which looks for the programs before any host is touched)
// judge a command line with the same parser and the same list of builtins.
package shellword

import (
	"slices"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// Literal returns the words of line when it is one simple command made of
// literal words — unquoted, single-quoted, or double-quoted without
// expansions — as a POSIX shell splits them. ok is false for anything else:
// parameter, command or arithmetic expansions, globs, a leading tilde,
// unquoted backslashes, operators, redirections, assignments, several
// commands, syntax errors.
func Literal(line string) (words []string, ok bool) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(line), "")
	if err != nil || len(f.Stmts) != 1 {
		return nil, false
	}
	st := f.Stmts[0]
	call, isCall := st.Cmd.(*syntax.CallExpr)
	if !isCall || len(call.Args) == 0 || len(call.Assigns) > 0 || len(st.Redirs) > 0 ||
		st.Background || st.Negated || st.Coprocess {
		return nil, false
	}
	for _, w := range call.Args {
		for i, part := range w.Parts {
			switch p := part.(type) {
			case *syntax.Lit:
				if strings.ContainsAny(p.Value, `*?[\`) || (i == 0 && strings.HasPrefix(p.Value, "~")) {
					return nil, false
				}
			case *syntax.SglQuoted:
			case *syntax.DblQuoted:
				for _, inner := range p.Parts {
					if _, lit := inner.(*syntax.Lit); !lit {
						return nil, false
					}
				}
			default:
				return nil, false
			}
		}
		s, err := expand.Literal(&expand.Config{}, w)
		if err != nil {
			return nil, false
		}
		words = append(words, s)
	}
	return words, true
}

// builtins are the words a shell runs itself (special and regular
// builtins of POSIX sh, bash and dash, and reserved words), or differently
// from the program of the same name (echo, printf, test). A command line
// starting with one needs a shell, and is no program to look for.
var builtins = []string{"!", ".", ":", "[", "[[", "]]", "{", "}", "alias", "bg", "break", "builtin",
	"case", "cd", "command", "continue", "coproc", "do", "done", "echo", "elif", "else", "esac", "eval",
	"exec", "exit", "export", "false", "fc", "fg", "fi", "for", "function", "getopts", "hash", "if", "in",
	"jobs", "kill", "let", "local", "printf", "pwd", "read", "readonly", "return", "select", "set",
	"shift", "source", "test", "then", "time", "times", "trap", "true", "type", "typeset", "ulimit",
	"umask", "unalias", "unset", "until", "wait", "while"}

// IsBuiltin reports whether a shell runs word itself.
func IsBuiltin(word string) bool { return slices.Contains(builtins, word) }

// Program returns the words of line when it runs a program directly: a
// Literal line whose first word is no builtin. Such a line needs no shell.
func Program(line string) ([]string, bool) {
	words, ok := Literal(line)
	if !ok || IsBuiltin(words[0]) {
		return nil, false
	}
	return words, true
}

// Programs returns the programs line runs, in order, as far as that can be
// told without running it: the literal first word of every simple command
// that is no builtin. ok is false when it cannot be told — a syntax error,
// or a line that defines functions or aliases, changes PATH or the
// directory, or reads or evaluates other code (., source, eval).
func Programs(line string) (progs []string, ok bool) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(line), "")
	if err != nil {
		return nil, false
	}
	ok = true
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.FuncDecl:
			ok = false
		case *syntax.Assign:
			if n.Name != nil && n.Name.Value == "PATH" {
				ok = false
			}
		case *syntax.CallExpr:
			if len(n.Args) == 0 {
				return true
			}
			name, err := expand.Literal(&expand.Config{}, n.Args[0])
			if err != nil || !isPlain(n.Args[0]) {
				return true
			}
			switch name {
			case ".", "source", "eval", "alias", "cd", "pushd", "popd", "hash":
				ok = false
			case "export", "unset", "readonly", "local", "typeset":
				for _, a := range n.Args[1:] {
					if s, err := expand.Literal(&expand.Config{}, a); err != nil || s == "PATH" || strings.HasPrefix(s, "PATH=") {
						ok = false
					}
				}
			}
			if !IsBuiltin(name) && !slices.Contains(progs, name) {
				progs = append(progs, name)
			}
		}
		return ok
	})
	if !ok {
		return nil, false
	}
	return progs, true
}

// isPlain reports whether a word is literal text, unquoted or quoted.
func isPlain(w *syntax.Word) bool {
	for _, part := range w.Parts {
		switch p := part.(type) {
		case *syntax.Lit:
			if strings.ContainsAny(p.Value, `*?[\~`) {
				return false
			}
		case *syntax.SglQuoted:
		case *syntax.DblQuoted:
			for _, inner := range p.Parts {
				if _, lit := inner.(*syntax.Lit); !lit {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}
