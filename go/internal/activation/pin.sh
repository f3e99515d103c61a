#!/bin/sh
# pin.sh DIR SYSTEM makes SYSTEM, copied to the host, a GC root of the
# activation (DIR/new), and prints "lollypops-system <store path>".
set -u
nix-store --realise --add-root "$1/new" --indirect -- "$2" >/dev/null || exit 1
echo "lollypops-system $(readlink -e -- "$1/new")"
