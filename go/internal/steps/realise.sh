#!/bin/sh
# realise.sh DRV realises the derivation DRV on the build host, with a GC root in a new
# temporary directory: prints the directory, then the output.
set -e
d=$(mktemp -d "${TMPDIR:-/tmp}/lollypops-build.XXXXXXXX")
echo "$d"
if ! nix-store --realise "$1" --add-root "$d/system" --indirect >/dev/null; then
	rm -rf "$d"
	exit 1
fi
readlink "$d/system"
