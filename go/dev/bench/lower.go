package main

// lowerBound is the benchmark's lower bound: a hand-written script that
// does a deploy's work — copy the flake, link it, write the secrets with
// their modes, call the rebuild — with one SSH connection per host, hosts
// in parallel, and nothing else: no checks, no atomic writes, no exact
// bytes, no summary. It is as lean as a script gets: per secret, one
// process here (the secret's command) and one on the host.
//
//	bash lower.sh SSH_CONFIG FLAKE SECRETS_LIST HOST...
//
// SECRETS_LIST has one line per secret: path, mode, owner, group and the
// command that prints the value, separated by tabs.
const lowerBound = `#!/usr/bin/env bash
set -euo pipefail
cfg=$1 flake=$2 list=$3
shift 3
run=$(mktemp -d /tmp/lower.XXXXXX)
trap 'rm -rf "$run"' EXIT

deploy() {
  local host=$1 ctl=$run/$1.sock
  ssh -F "$cfg" -o ControlPath="$ctl" -o ControlMaster=yes -o ControlPersist=yes -fN "$host"
  local S=(ssh -F "$cfg" -o ControlPath="$ctl" -o ControlMaster=no "$host")
  NIX_SSHOPTS="-F $cfg -o ControlPath=$ctl -o ControlMaster=no" \
    nix --extra-experimental-features nix-command copy --to "ssh://root@$host" --substitute-on-destination "$flake"
  "${S[@]}" "mkdir -p /var/src/lollypops && nix-store --realise $flake --add-root /var/src/lollypops/flake --indirect >/dev/null"
  # One remote process per secret: the directories are made once, the mode
  # comes from the umask (every benchmark secret is 0400 root:root, the
  # receiving user), nothing is checked or renamed.
  local dirs
  dirs=$(cut -f1 "$list" | sed 's|/[^/]*$||' | sort -u | tr '\n' ' ')
  while IFS=$'\t' read -r path mode owner group cmd; do
    data=$(eval "$cmd")
    printf '%s %s\n' "$path" "${#data}"
    printf '%s' "$data"
  done < "$list" | "${S[@]}" "mkdir -p $dirs; umask 0377; while read -r p n; do head -c \"\$n\" > \"\$p\"; done"
  # Nix before 2.19 refuses a symlink as a flake: resolve it on the host.
  "${S[@]}" "nixos-rebuild switch --flake \"path:\$(readlink -f /var/src/lollypops/flake)#$host\""
  ssh -F "$cfg" -o ControlPath="$ctl" -O exit "$host" 2>/dev/null
}

pids=()
for host in "$@"; do
  deploy "$host" > "$run/$host.out" 2>&1 &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
[ $fail = 0 ] || { cat "$run"/*.out >&2; exit 1; }
`
