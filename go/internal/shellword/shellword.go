// Package shellword reads shell command lines that are nothing but words.
package shellword

import (
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
