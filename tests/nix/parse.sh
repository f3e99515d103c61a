#!/bin/sh
# Parses every .nix file of the repository (tracked, or new and not
# ignored) with nix-instantiate --parse; fails naming each file that does
# not parse. Needs only nix-instantiate (Debian's nix-bin).
set -eu
cd "$(dirname "$0")/../.."

# The tests' own Nix configuration: exported by the Makefile; run alone,
# this script writes it (tests/nix/nix-conf.sh).
if [ -z "${NIX_CONF_DIR:-}" ]; then
	NIX_CONF_DIR=$(tests/nix/nix-conf.sh)
	NIX_USER_CONF_FILES=$NIX_CONF_DIR/nix.conf
	export NIX_CONF_DIR NIX_USER_CONF_FILES
fi

if ! command -v nix-instantiate >/dev/null 2>&1; then
	echo "parse.sh: nix-instantiate is not on PATH (apt-get install nix-bin)" >&2
	exit 1
fi

failed=0
count=0
files=$(git ls-files --cached --others --exclude-standard -- '*.nix')
for f in $files; do
	count=$((count + 1))
	if ! err=$(nix-instantiate --parse "$f" 2>&1 >/dev/null); then
		echo "parse.sh: $f does not parse:" >&2
		echo "$err" >&2
		failed=$((failed + 1))
	fi
done

if [ "$failed" -ne 0 ]; then
	echo "parse.sh: $failed of $count .nix files do not parse" >&2
	exit 1
fi
echo "parse.sh: all $count .nix files parse"
