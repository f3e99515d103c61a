package closure

import (
	"fmt"
	"strings"

	"github.com/nix-community/go-nix/pkg/storepath"
)

// Name is a store path name split the way `nix store diff-closures` splits
// it: an output suffix first, then builtins.parseDrvName's name and
// version.
type Name struct {
	// Name is the package name: "linux", "python3.11-requests", "etc".
	Name string
	// Version is "" when the name has none ("etc", "unit-sshd.service").
	Version string
	// Output is the output suffix that was stripped ("man", "dev", "lib",
	// "bin", "doc", "modules", "lib32", "lib64"), "" for none.
	Output string
}

// ParseName splits the name part of a store path (without the hash).
//
// Step 1, the output suffix (Nix's diff-closures): when the part after the
// last '-' is lowercase letters only, or "lib32" or "lib64", it is an
// output name and is stripped: "hello-2.12.1-man" → "hello-2.12.1" +
// "man", "linux-6.6.30-modules" → "linux-6.6.30" + "modules". Like Nix,
// this cannot tell an output from a version suffix such as "-unstable",
// nor from a last word such as "X-Restart-Triggers-sshd" (→
// "X-Restart-Triggers" + "sshd"); it only decides the grouping.
//
// Step 2, builtins.parseDrvName (Nix's DrvName): the name is everything up
// to the first '-' that is followed by a character that is not an ASCII
// letter, the version everything after that dash: "initrd-linux-6.6.30" →
// "initrd-linux" + "6.6.30", "bash--1-2" → "bash" + "-1-2"; a name with no
// such dash has no version ("unit-sshd.service", "source").
func ParseName(s string) Name {
	var n Name
	if i := strings.LastIndexByte(s, '-'); i >= 0 && isOutputName(s[i+1:]) {
		s, n.Output = s[:i], s[i+1:]
	}
	n.Name = s
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '-' && !isASCIILetter(s[i+1]) {
			n.Name, n.Version = s[:i], s[i+1:]
			break
		}
	}
	return n
}

// ParsePath parses an absolute store path (/nix/store/<hash>-<name>) with
// go-nix's storepath and splits its name with ParseName.
func ParsePath(p string) (Name, error) {
	sp, err := storepath.FromAbsolutePath(p)
	if err != nil {
		return Name{}, fmt.Errorf("%q is not a store path", p)
	}
	return ParseName(sp.Name), nil
}

// isOutputName is Nix's [a-z]+|lib32|lib64.
func isOutputName(s string) bool {
	if s == "lib32" || s == "lib64" {
		return true
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

func isASCIILetter(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// String is the name as Nix writes it: name-version, or name alone.
func (n Name) String() string {
	if n.Version == "" {
		return n.Name
	}
	return n.Name + "-" + n.Version
}

// storePathOf cuts p (a store path, or a file below one, such as
// <kernel>/bzImage) to its store path; "" if p is not below the store.
func storePathOf(p string) string {
	rest, ok := strings.CutPrefix(p, storepath.StoreDir+"/")
	if !ok {
		return ""
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return storepath.StoreDir + "/" + rest
}
