#!/bin/sh
# rebuild.sh LINK ACTION HOST DIR NOCHECK [OPTION...] runs nixos-rebuild
# ACTION on the host with the flake that LINK (<config-dir>/flake) points
# to: nixos-rebuild ACTION --flake path:<store path>[?dir=DIR]#HOST
# OPTION..., with NIXOS_NO_CHECK=1 in its environment when NOCHECK is 1.
# DIR is the flake's directory in its source ("" for its root). The link is
# resolved by flake_ref (package flakelink's resolve.sh, which comes first).
flake_ref "$1" "$3" "$4" || exit 1
if [ "$5" = 1 ]; then export NIXOS_NO_CHECK=1; fi
a=$2 h=$3
shift 5
# shellcheck disable=SC2154 # ref: set by flake_ref
exec nixos-rebuild "$a" --flake "$ref#$h" "$@"
