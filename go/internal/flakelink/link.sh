#!/bin/sh
# link.sh CONFIGDIR FLAKE: deploy-flake's step on the host, once the flake
# (a store path) was copied there. It points CONFIGDIR/flake at FLAKE and
# makes that link a garbage collector root (nix-store --add-root replaces
# the link atomically), so a GC on the host cannot delete the flake that
# the next rebuild evaluates. CONFIGDIR is created, 0755, when missing.
set -e
[ -d "$1" ] || (umask 022; mkdir -p -- "$1")
nix-store --realise "$2" --add-root "$1/flake" --indirect >/dev/null
