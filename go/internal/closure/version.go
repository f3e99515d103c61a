package closure

import "strings"

// compareVersions orders versions as Nix's compareVersions does (nix-env,
// builtins.compareVersions): components are runs of digits or of other
// characters, separated by '.' and '-'; numbers compare as numbers, "pre"
// comes before anything, a missing component before a number, and a word
// before a number ("2.3a" < "2.3.1"). Versions equal that way but
// spelled differently ("1.0", "1-0") compare as strings, so that the
// order is total and sorting is deterministic. "" sorts first.
func compareVersions(a, b string) int {
	x, y := a, b
	for x != "" || y != "" {
		var c1, c2 string
		c1, x = nextComponent(x)
		c2, y = nextComponent(y)
		if componentLess(c1, c2) {
			return -1
		}
		if componentLess(c2, c1) {
			return 1
		}
	}
	return strings.Compare(a, b)
}

// nextComponent splits off the first component of v.
func nextComponent(v string) (string, string) {
	v = strings.TrimLeft(v, ".-")
	if v == "" {
		return "", ""
	}
	i := 0
	if isDigit(v[0]) {
		for i < len(v) && isDigit(v[i]) {
			i++
		}
	} else {
		for i < len(v) && !isDigit(v[i]) && v[i] != '.' && v[i] != '-' {
			i++
		}
	}
	return v[:i], v[i:]
}

func componentLess(c1, c2 string) bool {
	n1, n2 := isNumber(c1), isNumber(c2)
	switch {
	case n1 && n2:
		return numberLess(c1, c2)
	case c1 == "" && n2:
		return true
	case c1 == "pre" && c2 != "pre":
		return true
	case c2 == "pre":
		return false
	case n2:
		return true
	case n1:
		return false
	}
	return c1 < c2
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// numberLess compares digit strings of any length as numbers.
func numberLess(a, b string) bool {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
