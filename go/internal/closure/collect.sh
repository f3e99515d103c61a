#!/bin/sh
# collect.sh NEW [CURRENT] collects, on the target and in one session,
# everything package closure's Compare needs of the new system and of the
# running one. POSIX sh; tested under bash (NixOS's /bin/sh), dash, busybox
# sh and mksh. ScriptArgs runs it: sh -c SCRIPT lollypops-closure NEW
# [CURRENT], where NEW is the new toplevel's store path (already in the
# target's store) and CURRENT defaults to /run/current-system. Each system
# is resolved once (readlink -f), so that a concurrent switch cannot mix
# two systems. It only reads: no store path is built, fetched or
# registered.
#
# Output (ParseOutput reads it): the line "lollypops-closure 1", then for the
# new system and for the current one the sections
#
#   === <side> toplevel     the resolved toplevel
#   === <side> kernel       readlink -f <toplevel>/kernel (empty if none)
#   === <side> initrd       readlink -f <toplevel>/initrd (empty if none)
#   === <side> paths        nix path-info --json --recursive <toplevel>
#
# with <side> "new" or "current", or the single line "=== current
# missing" when CURRENT does not exist; and last "=== end". JSON and
# store paths never start a line with "=== ". path-info is asked for
# --json-format 1 first (Nix 2.33 and later want it); a Nix that does not
# know the flag (2.32 and older, Lix) is asked again without it, and its
# error, if any, is the one shown. Errors go to stderr, with exit status
# 1 (2: wrong arguments).
set -u
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "lollypops-closure: usage: NEW-TOPLEVEL [CURRENT-SYSTEM]" >&2
	exit 2
fi
paths() {
	nix --extra-experimental-features nix-command path-info --json-format 1 --json --recursive -- "$1" 2>/dev/null ||
		nix --extra-experimental-features nix-command path-info --json --recursive -- "$1"
}
side() {
	top=$(readlink -f -- "$2") || return 1
	echo "=== $1 toplevel"
	echo "$top"
	for f in kernel initrd; do
		echo "=== $1 $f"
		if [ -e "$top/$f" ]; then
			readlink -f -- "$top/$f" || return 1
		fi
	done
	echo "=== $1 paths"
	paths "$top" || return 1
	echo
}
new=$1
current=${2:-/run/current-system}
if [ ! -e "$new" ]; then
	echo "lollypops-closure: $new: no such path on this machine (copy the new system first)" >&2
	exit 1
fi
echo "lollypops-closure 1"
side new "$new" || exit 1
if [ -e "$current" ] || [ -L "$current" ]; then
	side current "$current" || exit 1
else
	echo "=== current missing"
fi
echo "=== end"
