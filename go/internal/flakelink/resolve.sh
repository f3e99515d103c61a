# shellcheck shell=sh
# resolve.sh, a fragment: the host-side scripts that build from the deployed
# flake start with it (package activation's build.sh, package steps'
# rebuild.sh; package flakelink puts it in front). It defines
#
#   flake_ref LINK HOST DIR
#
# which resolves LINK (<config-dir>/flake, which link.sh made) and sets ref
# to the flake reference path:<store path>, with ?dir=DIR when DIR (the
# flake's directory in its source) is not "". The link is resolved on the
# host, as the original lollypops did, because Nix before 2.19 refuses a
# symlink as a flake ("is not a flake (because it's not a directory)"):
# path:<store path> is a reference every Nix accepts. A missing link, or
# one that points outside the Nix store, is an error that names the task
# to run (HOST:deploy-flake); flake_ref then returns 1.
flake_ref() {
	f=$(readlink -e -- "$1") || {
		echo "lollypops: $1 does not exist on this host; run the task $2:deploy-flake first" >&2
		return 1
	}
	case $f in
	/nix/store/?*) ;;
	*)
		echo "lollypops: $1 points to $f, which is not in the Nix store" >&2
		return 1
		;;
	esac
	# shellcheck disable=SC2034 # ref is the result
	ref="path:$f"
	if [ -n "$3" ]; then ref="$ref?dir=$3"; fi
}
