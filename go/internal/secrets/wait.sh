#!/bin/sh
# wait.sh: the unit of a secret (lollypops-secret-<name>.service, see
# docs/secrets.md), as root on the host. POSIX sh; tested under bash, dash,
# busybox sh and mksh. The NixOS module runs it from the unit, the fake
# hosts' init runs the same file (go/dev/fakehost).
#
#   wait.sh present PATH [SECONDS]   (ExecStartPre) returns once PATH exists
#   wait.sh absent PATH [SECONDS]    (ExecStart) returns once PATH is gone
#
# lollypops renames each secret into place once it is complete, so a file
# that exists is complete: the unit is active while the secret is there.
# Only the file's existence is looked at, never its contents. It polls
# every SECONDS (default 0.5), with sleep: no inotify, which needs a
# package of its own, and a rename over the file (a rotated value) is no
# absence at all, so the unit does not flap when a secret changes.
set -u
LC_ALL=C
export LC_ALL

usage() {
	echo "usage: wait.sh present|absent PATH [SECONDS]" >&2
	exit 2
}
case $# in 2 | 3) ;; *) usage ;; esac
mode=$1 path=$2 every=${3:-0.5}
case $path in /*) ;; *) usage ;; esac
case $every in '' | *[!0-9.]* | .* | *. | *.*.*) usage ;; esac

# there: the secret's file is there (a dangling link is not).
there() { [ -e "$path" ]; }

case $mode in
present)
	if ! there; then
		echo "waiting for $path"
		until there; do sleep "$every" || exit 1; done
	fi
	echo "$path is there"
	;;
absent)
	while there; do sleep "$every" || exit 1; done
	echo "$path is gone"
	;;
*) usage ;;
esac
