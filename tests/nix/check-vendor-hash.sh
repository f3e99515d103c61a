#!/bin/sh
# Fails when nix/package.nix's vendorHash no longer matches go/go.mod and
# go/go.sum (the package would then fail to build). Needs go and nix.
set -eu
cd "$(dirname "$0")/../.."

# The tests' own Nix configuration: exported by the Makefile; run alone,
# this script writes it (tests/nix/nix-conf.sh).
if [ -z "${NIX_CONF_DIR:-}" ]; then
	NIX_CONF_DIR=$(tests/nix/nix-conf.sh)
	NIX_USER_CONF_FILES=$NIX_CONF_DIR/nix.conf
	export NIX_CONF_DIR NIX_USER_CONF_FILES
fi

want=$(nix/update-vendor-hash.sh --print)
have=$(sed -n 's|.*vendorHash = "\(sha256-[^"]*\)";.*|\1|p' nix/package.nix)
if [ "$want" != "$have" ]; then
	echo "check-vendor-hash.sh: nix/package.nix has vendorHash \"$have\", but go/go.mod and go/go.sum need \"$want\"" >&2
	echo "check-vendor-hash.sh: hint: run nix/update-vendor-hash.sh" >&2
	exit 1
fi
echo "check-vendor-hash.sh: vendorHash is up to date ($have)"
