#!/bin/sh
# units.sh: restarts and reloads, as root on the host (through sudo when
# enabled), the units of the secrets that a deploy changed (restartUnits,
# reloadUnits). POSIX sh; tested under bash, dash, busybox sh and mksh.
#
# Arguments: --restart UNIT... --reload UNIT... The runner validated the
# names (a systemd unit name with its type, never starting with "-"),
# removed duplicates and left out of --reload the units it restarts.
#
# Only units that run are touched: one `systemctl is-active` for all of
# them first, so that a unit that is stopped stays stopped and a unit that
# does not exist yet (the coming activation adds it, and starts it with
# the new secret) is no error. Then one `systemctl try-restart` for all the
# running units to restart, and one `systemctl reload` for those to reload.
#
# Output, one line a unit, for the deployer:
#
#   lollypops-units: restarted|reloaded|not-running UNIT
#   lollypops-units: failed restart|reload UNIT
#
# A failed try-restart leaves the units it could not start failed or
# inactive: those are the failed ones. A failed reload cannot be told apart
# unit by unit: every unit of that call is reported as failed. systemctl's
# own messages go to stderr. Exit 1 when anything failed.
set -u -f
LC_ALL=C
export LC_ALL
nl='
'
fail() { printf 'lollypops: %s\n' "$*" >&2; exit 1; }
restart="" reload="" to=""
for a do
  case $a in
  --restart) to=restart ;;
  --reload) to=reload ;;
  -* | "") fail "not a unit: $a" ;;
  *)
    case $to in
    restart) restart="$restart $a" ;;
    reload) reload="$reload $a" ;;
    *) fail "a unit before --restart or --reload: $a" ;;
    esac
    ;;
  esac
done
# shellcheck disable=SC2086 # unit names: no blanks, no globbing (set -f)
set -- $restart $reload
[ $# -gt 0 ] || exit 0
# is-active prints one state a unit, in order, and exits 3 unless all are
# active.
states=$(systemctl is-active -- "$@") || true
[ "$(printf '%s\n' "$states" | grep -c .)" = $# ] || fail "systemctl is-active did not say which of the units run: $*"
runs_r="" runs_l=""
for u do
  st=${states%%"$nl"*}
  states=${states#*"$nl"}
  case " $restart " in
  *" $u "*)
    case $st in active | reloading | activating) runs_r="$runs_r $u" ;; *) echo "lollypops-units: not-running $u" ;; esac
    ;;
  *)
    case $st in active | reloading) runs_l="$runs_l $u" ;; *) echo "lollypops-units: not-running $u" ;; esac
    ;;
  esac
done
bad=0
if [ -n "$runs_r" ]; then
  # shellcheck disable=SC2086
  if systemctl try-restart -- $runs_r; then
    for u in $runs_r; do echo "lollypops-units: restarted $u"; done
  else
    bad=1
    # shellcheck disable=SC2086
    set -- $runs_r
    states=$(systemctl is-active -- "$@") || true
    out="" found=""
    for u do
      st=${states%%"$nl"*}
      states=${states#*"$nl"}
      case $st in
      active | reloading | activating) out="${out}lollypops-units: restarted $u$nl" ;;
      *) out="${out}lollypops-units: failed restart $u$nl" found=1 ;;
      esac
    done
    # All of them run again: which one failed is not known.
    [ -n "$found" ] || out=$(for u do echo "lollypops-units: failed restart $u"; done)$nl
    printf '%s' "$out"
  fi
fi
if [ -n "$runs_l" ]; then
  # shellcheck disable=SC2086
  if systemctl reload -- $runs_l; then
    for u in $runs_l; do echo "lollypops-units: reloaded $u"; done
  else
    bad=1
    for u in $runs_l; do echo "lollypops-units: failed reload $u"; done
  fi
fi
exit $bad
