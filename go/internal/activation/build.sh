#!/bin/sh
# build.sh LINK HOST DIR FLAKEDIR builds HOST's system on the host from the
# flake that LINK (<config-dir>/flake) points to, in its directory FLAKEDIR
# ("" for its root), with a GC root DIR/new, and prints its path last:
# "lollypops-system <store path>".
set -u
f=$(readlink -e -- "$1") || {
	echo "lollypops: $1 does not exist on this host; run the task $2:deploy-flake first" >&2
	exit 1
}
case $f in
/nix/store/?*) ;;
*)
	echo "lollypops: $1 points to $f, which is not in the Nix store" >&2
	exit 1
	;;
esac
echo "building the system configuration..." >&2
ref="path:$f"
if [ -n "$4" ]; then ref="$ref?dir=$4"; fi
nix --extra-experimental-features 'nix-command flakes' build --out-link "$3/new" "$ref#nixosConfigurations.\"$2\".config.system.build.toplevel" || exit 1
p=$(readlink -e -- "$3/new") || exit 1
echo "lollypops-system $p"
