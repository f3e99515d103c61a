#!/bin/sh
# manifest.sh MANIFEST prints the checksum lines ("sha256=<sum> <path>") of
# the host's secrets manifest, as root (through sudo when enabled): what
# lollypops plan compares the values with, on the deployer, to say which
# secrets would change. Nothing when there is no manifest yet. POSIX sh;
# tested under bash, dash, busybox sh and mksh.
set -u
[ -e "$1" ] || exit 0
grep -e '^sha256=' -- "$1" || [ $? -eq 1 ]
