#!/usr/bin/env bash
# Proves the README's two commands on a fresh machine: builds a Debian 12
# root with debootstrap (--variant=minbase) plus only what the README
# assumes (git, make, ca-certificates, and Go copied from /usr/local/go),
# clones this repository into it, and runs `make demo` then `make test` in it
# as root with a clean environment, printing the wall time of each.
#
#   tests/fresh-root.sh [--uncommitted] [--reuse] [DIR] [-- PATHSPEC...]
#
#   DIR            work directory (default /tmp/lollypops-fresh-root):
#                  DIR/root is the Debian root, DIR/*.log the logs.
#   --uncommitted  also bring the work tree's uncommitted changes (modified,
#                  deleted and new non-ignored files; only those under
#                  PATHSPEC when given) on top of the committed HEAD.
#   --reuse        keep DIR/root from an earlier run (no debootstrap): the
#                  "machine with things left over" case. The clone is
#                  refreshed; build/ and everything outside it are kept.
#
# Runs as root. Everything is mounted inside a private mount namespace
# (unshare --mount --propagation private), so nothing leaks to the host and
# it all goes away when the run ends. The only network use is the Debian
# mirror this machine uses and the Go module proxy.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd -P)
uncommitted=no
reuse=no
dir=/tmp/lollypops-fresh-root
pathspec=()
while [ $# -gt 0 ]; do
  case $1 in
  --uncommitted) uncommitted=yes ;;
  --reuse) reuse=yes ;;
  --) shift; pathspec=("$@"); break ;;
  -*) echo "fresh-root: unknown flag $1" >&2; exit 2 ;;
  *) dir=$1 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "fresh-root: run as root (debootstrap, chroot, mounts)" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)
root=$dir/root
if [ "$dir" = / ] || [ "$root" = / ]; then echo "fresh-root: refusing DIR=/" >&2; exit 1; fi

t0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# The mirrors this machine's apt uses (deb822 .sources or one-line .list),
# so the root is built from the same place; deb.debian.org otherwise.
mirror_for() { # SUITE -> first URI serving it
  # (cat fails on a missing file, and awk may stop reading early: neither matters)
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
    awk -v want="$1" '
      /^[ \t]*#/ { next }
      /^deb[ \t]/ { sub(/\[[^]]*\]/, ""); if ($3 == want) { print $2; exit } next }
      /^URIs:/   { uri = $2 }
      /^Suites:/ { for (j = 2; j <= NF; j++) if ($j == want && uri != "") { print uri; exit } }
      /^$/       { uri = "" }'
}
mirror=$(mirror_for bookworm)
mirror=${mirror:-http://deb.debian.org/debian}
security=$(mirror_for bookworm-security)
security=${security:-http://deb.debian.org/debian-security}

# Nothing may still be mounted under DIR from elsewhere before we delete or
# reuse it (our own mounts live and die in a private namespace).
if findmnt -rn -o TARGET | grep -q "^$dir/"; then
  echo "fresh-root: something is mounted under $dir; unmount it first:" >&2
  findmnt -rn -o TARGET | grep "^$dir/" >&2
  exit 1
fi

t_deboot=0
if [ "$reuse" = yes ] && [ -x "$root/usr/bin/apt-get" ]; then
  echo "fresh-root: reusing $root"
else
  command -v debootstrap >/dev/null || {
    echo "fresh-root: installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -qq update
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -qq install -y --no-install-recommends debootstrap >/dev/null
  }
  rm -rf --one-file-system "$root"
  echo "fresh-root: debootstrap bookworm from $mirror into $root"
  t=$(date +%s.%N)
  debootstrap --variant=minbase --include=git,make,ca-certificates bookworm "$root" "$mirror" >"$dir/debootstrap.log" 2>&1 ||
    { tail -20 "$dir/debootstrap.log" >&2; exit 1; }
  t_deboot=$(since "$t")
  echo "fresh-root: debootstrap took ${t_deboot}s"
fi

# apt in the root uses the same mirrors as this machine.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The certificate authorities this machine trusts beyond Debian's (e.g. a
# proxy's or a local mirror's), so that the Go proxy is reached the way it is
# from here: each certificate of this machine's bundle that the root's
# bundle lacks goes to the root's /usr/local/share/ca-certificates.
awk -v out="$root/usr/local/share/ca-certificates/lollypops-host" '
  FNR == 1 { file++ }
  /BEGIN CERTIFICATE/ { pem = "" }
  { pem = pem $0 "\n" }
  /END CERTIFICATE/ {
    if (file == 1) have[pem] = 1
    else if (!(pem in have)) { n++; f = out "-" n ".crt"; printf "%s", pem > f; close(f) }
  }
  END { print n + 0 }' "$root/etc/ssl/certs/ca-certificates.crt" /etc/ssl/certs/ca-certificates.crt >"$dir/extra-ca.count"
if [ "$(cat "$dir/extra-ca.count")" != 0 ]; then
  echo "fresh-root: trusting this machine's $(cat "$dir/extra-ca.count") extra certificate authorities in the root"
  chroot "$root" /usr/sbin/update-ca-certificates >"$dir/update-ca.log" 2>&1 ||
    { cat "$dir/update-ca.log" >&2; exit 1; }
fi
# The machine's Go (the README assumes Go 1.26.4+ at /usr/local/go).
rm -rf "$root/usr/local/go"
cp -a /usr/local/go "$root/usr/local/go"

# The repository: the committed HEAD, and the uncommitted changes on request
# (read from the work tree; nothing in it is changed).
repo=$root/root/lollypops
if [ -d "$repo/.git" ]; then
  git -C "$repo" fetch -q "$src" HEAD
  git -C "$repo" reset -q --hard FETCH_HEAD
  git -C "$repo" clean -q -fd # untracked files, not ignored ones (build/ stays)
else
  git clone -q --no-hardlinks "$src" "$repo"
  git -C "$repo" checkout -q "$(git -C "$src" rev-parse HEAD)"
fi
echo "fresh-root: repository at $(git -C "$repo" rev-parse --short HEAD)"
if [ "$uncommitted" = yes ]; then
  n=0
  while IFS= read -r -d '' f; do
    if [ -e "$src/$f" ] || [ -L "$src/$f" ]; then
      mkdir -p "$(dirname "$repo/$f")"
      cp -a "$src/$f" "$repo/$f"
    else
      rm -f "$repo/$f"
    fi
    n=$((n + 1))
  done < <(git -C "$src" ls-files -z -m -o -d --exclude-standard -- "${pathspec[@]}" | sort -zu)
  echo "fresh-root: brought $n uncommitted file(s) over"
fi

# The run inside the root: a clean environment, as root, from the clone.
goenv="GOFLAGS=-modcacherw${GOPROXY:+ GOPROXY=$GOPROXY}"
cat >"$dir/inside.sh" <<'EOF'
#!/usr/bin/env bash
# Written by tests/fresh-root.sh. Without --stage: runs in a private mount
# namespace, mounts what the root needs and runs make demo and make test.
# With --stage: the first process of one run's own PID namespace.
set -uo pipefail
path=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [ "$1" = --stage ]; then
  root=$2 goenv=$3
  shift 3
  set -e
  mount -t proc proc "$root/proc" # this PID namespace's processes
  # A real root, not a chroot: Nix 2.8 re-enters its mount namespace
  # (setns) before it runs ssh, which puts a chrooted process back at the
  # namespace's root; after pivot_root, that root is the Debian root.
  cd "$root"
  pivot_root . .old-root
  umount -l /.old-root
  cd /
  set +e
  read -ra goenv <<<"$goenv"
  # Not exec'd: bash stays PID 1 and reaps what the tests orphan; when it
  # ends, the kernel ends every process left in the namespace.
  env -i PATH="$path" HOME=/root "${goenv[@]}" /bin/bash -c 'cd /root/lollypops && exec "$@"' bash "$@"
  exit $?
fi

root=$1 dir=$2 goenv=$3
mount --make-rprivate /
# The root must be a mount point of its own (for pivot_root, and for the
# fake hosts' unshare --propagation private, which changes "/").
mount --bind "$root" "$root"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev" # brings /dev/pts, /dev/shm, /dev/mqueue
mountpoint -q "$root/dev/pts" || mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
mkdir -p "$root/.old-root"

run() { # NAME COMMAND...: runs in the root, logs, prints the wall time
  local name=$1 t rc
  shift
  t=$(date +%s.%N)
  # Its own mount and PID namespaces: nothing it starts (sshd, nix-daemon,
  # gpg-agent, ssh masters) outlives it.
  unshare --mount --pid --fork --propagation private \
    bash "$0" --stage "$root" "$goenv" "$@" >"$dir/$name.log" 2>&1
  rc=$?
  printf 'fresh-root: %s: exit %d, %.1fs\n' "$*" "$rc" "$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
  return $rc
}
rc=0
run make-demo make demo || rc=1
run make-test make test || rc=1
exit $rc
EOF
rc=0
unshare --mount --propagation private bash "$dir/inside.sh" "$root" "$dir" "$goenv" || rc=$?

echo "fresh-root: logs: $dir/make-demo.log $dir/make-test.log"
echo "fresh-root: debootstrap ${t_deboot}s, total $(since "$t0")s, exit $rc"
exit $rc
