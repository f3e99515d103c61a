#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian, only what is
# missing: OpenSSH (client and the fake hosts' sshd), Nix (nix copy, nix flake
# archive, nix-instantiate), pass and GnuPG (the default secret source), sudo
# (the non-root deploy user in the tests), iproute2, procps, util-linux.
# Go comes from the machine (/usr/local/go); Go modules from the Go proxy.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ssh || need+=(openssh-client)
have sshd || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
have nix || need+=(nix-bin)
have pass || need+=(pass)
have gpg || need+=(gnupg)
have sudo || need+=(sudo)
have unshare || need+=(util-linux)
have ip || need+=(iproute2)
have ps || need+=(procps)
have make || need+=(make)
have git || need+=(git)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages: ${need[*]}; install them as root: apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 -qq update
  apt-get -o DPkg::Lock::Timeout=300 -qq install -y --no-install-recommends "${need[@]}" >/dev/null
fi

if ! have go && [ -x /usr/local/go/bin/go ]; then
  echo "deps: go is at /usr/local/go/bin; add it to PATH" >&2
fi
