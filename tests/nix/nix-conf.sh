#!/bin/sh
# Writes the Nix configuration the tests, the demo and the benchmarks bring
# themselves into DIR (default: build/nix-conf), and prints DIR's absolute
# path on stdout. Used with NIX_CONF_DIR=DIR (the Makefile exports it), so
# that they do not depend on the machine's /etc/nix/nix.conf, which on a
# fresh Debian may be missing or name a build users group that does not
# exist, and elsewhere may enable a sandbox or a binary cache:
#
#   build-users-group =   builds run as the caller (root here), no nixbld
#   sandbox = false       Debian's Nix 2.8 cannot run sandboxed builds
#   substituters =        only 127.0.0.1 is contacted, never a binary cache
#   flake-registry        an empty local registry instead of github's
#
# Rewrites the files only when their content differs (a leftover of an
# older run is replaced, an up-to-date one is not touched).
set -eu
cd "$(dirname "$0")/../.."

dir=${1:-build/nix-conf}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)

# put FILE CONTENT: writes FILE atomically when its content differs.
put() {
	if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then
		return 0
	fi
	printf '%s\n' "$2" >"$1.tmp.$$"
	mv "$1.tmp.$$" "$1"
}

put "$dir/registry.json" '{"flakes":[],"version":2}'
put "$dir/nix.conf" "# Written by tests/nix/nix-conf.sh: the Nix settings of make test/demo/bench.
build-users-group =
sandbox = false
substituters =
experimental-features = nix-command flakes
warn-dirty = false
flake-registry = $dir/registry.json"
echo "$dir"
