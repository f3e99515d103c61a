#!/bin/sh
# Regenerates docs/options.md from the modules (nix/options-doc.nix). The
# flake check `options-doc` fails when the committed file differs.
#
# Needs nix and LOLLYPOPS_NIXPKGS_LIB, a checkout of
# github.com/nix-community/nixpkgs.lib (the directory that holds lib/),
# ideally at the nixpkgs revision of flake.lock: the check renders with that
# nixpkgs' lib, and type descriptions can change between revisions.
set -eu
cd "$(dirname "$0")/.."

if [ -z "${LOLLYPOPS_NIXPKGS_LIB:-}" ]; then
	echo "update-options-doc.sh: set LOLLYPOPS_NIXPKGS_LIB to a nix-community/nixpkgs.lib checkout" >&2
	exit 1
fi
mkdir -p docs
nix --extra-experimental-features nix-command eval --raw --impure \
	--expr "import ./nix/options-doc.nix { lib = import $LOLLYPOPS_NIXPKGS_LIB/lib; }" >docs/options.md.new
mv docs/options.md.new docs/options.md
echo "update-options-doc.sh: wrote docs/options.md"
