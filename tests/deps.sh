#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian, only what is
# missing: OpenSSH (client and the fake hosts' sshd), Nix (nix copy, nix flake
# archive, nix-instantiate, nix-daemon), pass and GnuPG (the default secret
# source), sudo (the non-root deploy user in the tests), iproute2, procps,
# util-linux, busybox and mksh (shells the host-side scripts are tested under),
# ShellCheck (make lint),
# zsh and fish (shells the completion scripts are tested under),
# and a C compiler (go test -race needs cgo). Then it makes the
# machine's Nix usable as root without a daemon (see setup_nix below).
# Go comes from the machine (/usr/local/go); Go modules from the Go proxy.
# Safe to run again and again, and after a run that was interrupted.
set -euo pipefail

# apt-get, dpkg, groupadd and useradd live in the sbin directories, which a
# non-login root shell (su, sudo -s, some CI runners) may lack on its PATH.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
root=$([ "$(id -u)" = 0 ] && echo yes || echo no)

# A previous run (or anything else) interrupted inside dpkg leaves packages
# unpacked but not configured, and apt-get then refuses to install anything.
if [ -n "$(dpkg --audit 2>/dev/null)" ]; then
  if [ "$root" != yes ]; then
    echo "deps: dpkg was interrupted; as root run: dpkg --configure -a" >&2
    exit 1
  fi
  echo "deps: finishing an interrupted dpkg run (dpkg --configure -a)"
  DEBIAN_FRONTEND=noninteractive dpkg --force-confold --configure -a >/dev/null
fi

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ssh || need+=(openssh-client)
have sshd || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
# nix-bin ships them all; checking each catches a half-removed package.
for t in nix nix-store nix-build nix-instantiate nix-daemon; do
  have "$t" || { need+=(nix-bin); break; }
done
have pass || need+=(pass)
have gpg || need+=(gnupg)
have sudo || need+=(sudo)
have unshare || need+=(util-linux)
have ip || need+=(iproute2)
have ps || need+=(procps)
have make || need+=(make)
have git || need+=(git)
# The secret receiver's tests run it under every sh a target may have:
# bash and dash are Debian's own, busybox and mksh are added.
have busybox || need+=(busybox)
have mksh || need+=(mksh)
have setpriv || need+=(util-linux)
# make lint checks every shell script with shellcheck (host-side scripts
# run as root on the targets: they are code).
have shellcheck || need+=(shellcheck)
# The completion scripts' tests run them in zsh and fish (bash is Debian's own).
have zsh || need+=(zsh)
have fish || need+=(fish)
# The race detector (make test) needs cgo, hence a C compiler and libc headers.
have gcc || need+=(gcc libc6-dev)
# Only tests/nix/eval.sh needs Python, and only with a nixpkgs.lib checkout.
[ -z "${LOLLYPOPS_NIXPKGS_LIB:-}" ] || have python3 || need+=(python3)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$root" != yes ]; then
    echo "deps: missing packages: ${need[*]}; install them as root: apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 -qq update
  apt-get -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold -qq install -y --no-install-recommends "${need[@]}" >/dev/null
fi

# setup_nix makes the machine's Nix work for root without a daemon, the way
# Debian's nix-setup-systemd package would have (it is a Recommends of
# nix-bin, so --no-install-recommends above skips it, and it also brings a
# systemd nix-daemon this machine need not run):
#
#  - /etc/nix/nix.conf, when missing, gets that package's exact content
#    (`sandbox = false`: Debian's Nix 2.8 has no sandbox shell, so sandboxed
#    builds cannot run /bin/sh). Byte for byte the same, so that installing
#    nix-setup-systemd later finds its own conffile and asks nothing.
#  - the build users group (nix-bin's built-in default is `nixbld`; an
#    operator's config may name another) is created when it does not exist,
#    with ten build users as members, as that package's postinst does.
#    We keep Nix's default rather than writing `build-users-group =`: builds
#    then do not run as root, and the machine ends up as Debian sets it up.
#
# An existing configuration is never rewritten: the tests and the demo bring
# their own (NIX_CONF_DIR, see the Makefile), so only a broken machine setup
# is repaired here, never an operator's choice.
debian_nix_conf='# see https://nixos.org/nix/manual/#sec-conf-file

# So far the sandbox feature does not seem to work on Debian:
# https://github.com/NixOS/nixpkgs/pull/47794#issuecomment-429575989
sandbox = false
'

# machine_nix runs a Nix command with the machine's configuration, not the
# one `make` exports for the tests.
machine_nix() { env -u NIX_CONF_DIR -u NIX_USER_CONF_FILES -u NIX_CONFIG "$@"; }

setup_nix() {
  local conf=/etc/nix/nix.conf group members n user
  if [ ! -e "$conf" ]; then
    echo "deps: writing $conf (Debian's: sandbox = false)"
    mkdir -p /etc/nix
    # Atomically, so an interrupted run never leaves a half-written file.
    printf '%s' "$debian_nix_conf" >"$conf.lollypops-tmp"
    mv "$conf.lollypops-tmp" "$conf"
  fi
  # The value Nix actually uses (config files and built-in default), from
  # stdout only: warnings go to stderr.
  if ! group=$(machine_nix nix --extra-experimental-features nix-command show-config |
    sed -n 's/^build-users-group = //p'); then
    echo "deps: nix cannot read the machine's configuration ($conf); fix it or move it away" >&2
    exit 1
  fi
  [ -n "$group" ] || return 0 # builds run as the calling user: nothing to set up
  if ! getent group "$group" >/dev/null; then
    echo "deps: creating the Nix build users group $group"
    groupadd --force --system "$group"
  fi
  # Nix takes its build users from the group's member list; an empty group
  # (e.g. left over by an interrupted run) fails every build.
  members=$(getent group "$group" | cut -d: -f4)
  [ -z "$members" ] || return 0
  echo "deps: creating the Nix build users ${group}1..${group}10"
  for n in $(seq 1 10); do
    user=$group$n
    if id "$user" >/dev/null 2>&1; then
      usermod --append --groups "$group" "$user"
    else
      useradd --system --comment "Nix build user $n" --home-dir /var/empty \
        --gid "$group" --groups "$group" --no-user-group \
        --shell "$(command -v nologin || echo /usr/sbin/nologin)" "$user"
    fi
  done
}

if [ "$root" = yes ]; then
  setup_nix
elif [ ! -e /etc/nix/nix.conf ]; then
  # Not fatal: make's targets bring their own Nix configuration.
  echo "deps: /etc/nix/nix.conf is missing; run tests/deps.sh as root once to set up Nix" >&2
fi

if ! have go && [ -x /usr/local/go/bin/go ]; then
  echo "deps: go is at /usr/local/go/bin; add it to PATH" >&2
fi
