#!/bin/sh
# Runs the Nix evaluation tests (tests/nix/eval.nix) with the real module
# system. Needs LOLLYPOPS_NIXPKGS_LIB: a checkout of
# github.com/nix-community/nixpkgs.lib (the directory that holds lib/).
# go/internal/config/nix_test.go runs the same evaluation and also checks
# the projected inventories against the Go contract.
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
	echo "eval.sh: skipped: set LOLLYPOPS_NIXPKGS_LIB to a nix-community/nixpkgs.lib checkout"
	exit 0
fi

out=$(nix-instantiate --eval --strict --json tests/nix/eval.nix --argstr nixpkgsLib "$LOLLYPOPS_NIXPKGS_LIB")
printf '%s' "$out" | python3 -c '
import json, sys
checks = json.load(sys.stdin)["checks"]
bad = [c for c in checks if not c["ok"]]
for c in checks:
    print(("ok   " if c["ok"] else "FAIL ") + c["name"] + ("" if c["ok"] else ": " + c["detail"]))
print("eval.sh: %d checks, %d failed" % (len(checks), len(bad)))
sys.exit(1 if bad else 0)
'
