#!/bin/sh
# Fails when docs/options.md is not what nix/options-doc.nix renders from the
# modules (the flake check `options-doc` does the same with flake.lock's
# nixpkgs). Needs nix and LOLLYPOPS_NIXPKGS_LIB; skips without the latter.
set -eu
cd "$(dirname "$0")/../.."

# The tests' own Nix configuration: exported by the Makefile; run alone,
# this script writes it (tests/nix/nix-conf.sh).
if [ -z "${NIX_CONF_DIR:-}" ]; then
	NIX_CONF_DIR=$(tests/nix/nix-conf.sh)
	NIX_USER_CONF_FILES=$NIX_CONF_DIR/nix.conf
	export NIX_CONF_DIR NIX_USER_CONF_FILES
fi

if [ -z "${LOLLYPOPS_NIXPKGS_LIB:-}" ]; then
	echo "check-options-doc.sh: skipped: set LOLLYPOPS_NIXPKGS_LIB to a nix-community/nixpkgs.lib checkout"
	exit 0
fi
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
nix --extra-experimental-features nix-command eval --raw --impure \
	--expr "import ./nix/options-doc.nix { lib = import $LOLLYPOPS_NIXPKGS_LIB/lib; }" >"$tmp"
if ! diff -u docs/options.md "$tmp"; then
	echo "check-options-doc.sh: docs/options.md is stale: run nix/update-options-doc.sh" >&2
	exit 1
fi
echo "check-options-doc.sh: docs/options.md is up to date"
