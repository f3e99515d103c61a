#!/bin/sh
# deployed.sh LINK SYSTEM prints what LINK (<config-dir>/flake) points to
# and, unless SYSTEM is "", what SYSTEM (/run/current-system, or the system
# profile after a boot) points to: one a line, resolved, and an empty line
# for what does not resolve. It only reads links, as the ssh user (package
# steps' Deployed).
readlink -e -- "$1" || echo
[ -z "$2" ] || readlink -e -- "$2" || echo
