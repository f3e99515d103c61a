#!/bin/sh
# Recomputes `vendorHash` in nix/package.nix after go/go.mod or go/go.sum
# change. With --print, only prints the hash.
#
# buildGoModule's goModules derivation runs `go mod vendor` in the source
# (go/) and copies vendor/, modules.txt included, to $out as a recursive
# fixed-output path: its hash is the NAR hash of that directory, which is
# what `nix hash path` prints. `go mod vendor` depends only on go.mod,
# go.sum and the imports of the code, not on the Go toolchain's version or
# the platform (it keeps the files of every build constraint), so the
# hash computed here is the one Nix checks.
#
# Needs go (>= the go.mod `go` line) and nix (Debian's nix-bin will do).
set -eu
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(
	cd go
	GOFLAGS='' GOWORK=off GOTOOLCHAIN=local go mod vendor -o "$tmp/vendor"
)
if [ ! -d "$tmp/vendor" ]; then
	echo "update-vendor-hash.sh: go/ has no dependencies; set vendorHash = null" >&2
	exit 1
fi
hash=$(nix --extra-experimental-features nix-command hash path "$tmp/vendor")

if [ "${1:-}" = "--print" ]; then
	echo "$hash"
	exit 0
fi
sed -i "s|vendorHash = \"sha256-[^\"]*\";|vendorHash = \"$hash\";|" nix/package.nix
grep -q "vendorHash = \"$hash\";" nix/package.nix
echo "update-vendor-hash.sh: vendorHash = \"$hash\""
