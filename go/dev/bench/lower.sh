#!/usr/bin/env bash
set -euo pipefail
cfg=$1 flake=$2 list=$3 mode=$4
shift 4
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
  while IFS=$'\t' read -r path _ _ _ cmd; do
    data=$(eval "$cmd")
    printf '%s %s\n' "$path" "${#data}"
    printf '%s' "$data"
  done < "$list" | "${S[@]}" "mkdir -p $dirs; umask 0377; while read -r p n; do head -c \"\$n\" > \"\$p\"; done"
  if [ "$mode" = plain ]; then
    # Nix before 2.19 refuses a symlink as a flake: resolve it on the host.
    "${S[@]}" "nixos-rebuild switch --flake \"path:\$(readlink -f /var/src/lollypops/flake)#$host\""
    ssh -F "$cfg" -o ControlPath="$ctl" -O exit "$host" 2>/dev/null
    return
  fi
  local g=/run/lower-guard
  "${S[@]}" "rm -rf $g && mkdir -p $g && nix --extra-experimental-features 'nix-command flakes' build --out-link $g/system \"path:\$(readlink -f /var/src/lollypops/flake)#nixosConfigurations.$host.config.system.build.toplevel\" && sys=\$(readlink $g/system) && systemd-run --unit=lower-guard-\$\$ --collect --quiet --setenv=PATH --service-type=exec -- /bin/sh -c '
    sys=\$1 g=\$2
    \$sys/bin/switch-to-configuration test; echo \$? > \$g/activated
    i=0; while [ ! -e \$g/confirm ] && [ \$i -lt 1200 ]; do sleep 0.1; i=\$((i + 1)); done
    [ -e \$g/confirm ] || { echo rolled-back > \$g/done; exit 1; }
    nix-env -p /nix/var/nix/profiles/system --set \$sys && \$sys/bin/switch-to-configuration boot; echo \$? > \$g/done' lower-guard \$sys $g && while [ ! -e $g/activated ]; do sleep 0.1; done && [ \$(cat $g/activated) = 0 ]"
  ssh -F "$cfg" -o ControlPath="$ctl" -O exit "$host" 2>/dev/null
  ssh -F "$cfg" -o ControlPath="$ctl" -o ControlMaster=yes -o ControlPersist=yes -fN "$host"
  "${S[@]}" "touch $g/confirm && while [ ! -e $g/done ]; do sleep 0.1; done && [ \$(cat $g/done) = 0 ] && rm -rf $g"
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
