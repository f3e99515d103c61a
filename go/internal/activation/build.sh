#!/bin/sh
# build.sh LINK HOST DIR FLAKEDIR builds HOST's system on the host from the
# flake that LINK (<config-dir>/flake) points to, in its directory FLAKEDIR
# ("" for its root), with a GC root DIR/new, and prints its path last:
# "lollypops-system <store path>". The link is resolved by flake_ref
# (package flakelink's resolve.sh, which comes first: see Script).
set -u
flake_ref "$1" "$2" "$4" || exit 1
echo "building the system configuration..." >&2
# shellcheck disable=SC2154 # ref: set by flake_ref
nix --extra-experimental-features 'nix-command flakes' build --out-link "$3/new" "$ref#nixosConfigurations.\"$2\".config.system.build.toplevel" || exit 1
p=$(readlink -e -- "$3/new") || exit 1
echo "lollypops-system $p"
