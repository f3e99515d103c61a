#!/bin/sh
# shellcheck disable=SC2154 # get reads the stream's records into variables by name, eval sets the staging directories' ones
# The secret receiver (package secrets): it runs on the host, through sudo
# when enabled, and reads the stream Encode writes: all of a host's secrets
# in one ssh session, on stdin. It takes no arguments. POSIX sh; tested
# under bash (NixOS's /bin/sh), dash, busybox sh and mksh.
#
# Where root writes, and as whom
#
# The host is a multi-user machine: the receiver never acts as root on a
# path that another user can change. Before it writes into a directory it
# walks the directory's path from / (one stat for all of its components)
# and trusts a component only when
#
#   - it is a directory owned by root that no one else can write to, or one
#     with the sticky bit (as /tmp: others cannot rename or remove what root
#     owns there, and every entry below is checked in turn), or
#   - it is a symbolic link owned by root inside a trusted directory (as
#     /var/run -> /run): it is resolved and the walk goes on from its target.
#
# At the first component owned by the secret's owner (a home directory),
# everything further — creating missing directories, staging, writing,
# setting the group and mode, renaming into place, reading back — is done
# by that user's own processes (util-linux setpriv, as on NixOS), so a user
# who races the receiver in their own directories can only redirect their
# own writes. Any other component (owned by another user, writable by
# others without the sticky bit, not a directory) stops the session before
# anything is written, with an error that names it. Missing directories in
# trusted places are created by root, 0711, owned by root; below the
# owner's directory, by the owner, 0711.
#
# All or nothing
#
# Files are staged under their final names in a directory that mktemp
# creates exclusively, with an unpredictable name and mode 0700, beside
# their destination; each file is created exclusively (noclobber) with its
# final permission bits (through the umask; chmod adds execute, set-id and
# sticky bits after chown, which clears set-id bits), then given its owner
# and group. Only when the commit record arrives does the receiver read
# every staged file back (one sha256sum per directory) and compare it with
# the checksum the deployer sent, then rename the files into place (one mv
# per directory). A stream that ends early, a failed check or a signal
# (HUP, INT, TERM, PIPE) removes the staging directories, each as the user
# who created it: nothing new is left behind.
#
# What changed
#
# The manifest (<config-dir>/secrets.manifest, root's, 0600) lists the
# paths lollypops wrote, one a line, then for each a line
# "sha256=<the value's sum> <path>". A file whose sum differs from the
# manifest's for its path, or that has none there (a first write, or a
# manifest from before sums were kept), is reported as changed once it is
# in place; the deployer restarts its units. Only the manifest holds sums,
# never the output. Older receivers read the sum lines as paths that do
# not exist, and drop them.
#
# Output
#
# Lines for the deployer start with "lollypops-secrets: ", so output from
# the login shell's start-up files cannot be mistaken for them. They are
# printed together once every file was renamed into place ("committed"),
# before the manifest is updated, and on exit.
#
# Hosts may get hundreds of secrets, so the script starts few processes:
# a value sent as text (lines without a NUL byte, up to 4 KiB: passwords,
# tokens, most keys) is read with the shell's read and written with its
# printf, no process at all; any other value with one head. Then chown
# when the owner is not the receiving user, chmod for execute, set-id and
# sticky bits; per directory one stat, mktemp, sha256sum, mv and rmdir;
# per session one grep for what changed. Users and groups are looked up
# once. The shell's own work grows with the number of files, not with its
# square: a file's record is two reads (its path, then its fields), and
# the lists it keeps are in pieces (add, below). Text goes through a shell's builtins
# only: a shell whose printf is a program (mksh) writes it with its own
# print builtin, one with neither refuses the stream.
#
# The values only travel on stdin, and through builtins or pipes; argv
# holds nothing but this script and paths. The script is quoted for the
# remote login shell by ssh.Command; it has no backslash followed by a
# backslash or a single quote, the only backslash sequences that fish's
# single quotes change (a test checks).
set -u -C
umask 077
LC_ALL=C
export LC_ALL
nl='
'
# put VALUE: writes VALUE to stdout, exactly, without a process: a value
# or its sum in a program's argv would be everyone's to read. A shell with
# neither builtin is refused before anything is written.
if [ "$(command -v printf)" = printf ]; then
  put() { printf '%s' "$1"; }
elif [ "$(command -v print)" = print ]; then
  put() { print -rn -- "$1"; }
else
  echo "lollypops: this host's sh has neither printf nor print built in, and the secrets must not go through a program's arguments; make sh bash (NixOS's), dash, busybox sh or mksh" >&2
  exit 1
fi
# Lists (paths, sums, the report) grow a line per file. Appending to one
# long variable costs the shell a pass over all of it each time, and so
# does taking its first line off: with hundreds of secrets, most of the
# session's time. A list is kept in pieces of about 1 KiB instead: NAME_p,
# the last, and NAME_1 ... NAME_<NAME_n>. add NAME TEXT appends TEXT;
# whole NAME sets got to the list; lines NAME F calls F LINE for each of
# its lines (F must not call lines).
add() {
  eval "_a=\${${1}_p-}\$2"
  if [ ${#_a} -lt 1024 ]; then
    eval "${1}_p=\$_a"
  else
    eval "_i=\$((\${${1}_n:-0} + 1))"
    eval "${1}_n=\$_i ${1}_$_i=\$_a ${1}_p="
  fi
}
whole() {
  eval "_n=\${${1}_n:-0}"
  got="" _i=1
  while [ "$_i" -le "$_n" ]; do
    eval "got=\$got\$${1}_$_i"
    _i=$((_i + 1))
  done
  eval "got=\$got\${${1}_p-}"
}
lines() {
  eval "_ln=\${${1}_n:-0}"
  _lj=1
  while :; do
    if [ "$_lj" -le "$_ln" ]; then eval "_lr=\$${1}_$_lj"; else eval "_lr=\${${1}_p-}"; fi
    while [ -n "$_lr" ]; do
      _ll=${_lr%%"$nl"*} _lr=${_lr#*"$nl"}
      "$2" "$_ll"
    done
    [ "$_lj" -le "$_ln" ] || break
    _lj=$((_lj + 1))
  done
}
# say LINE: a line of the report, printed once the files are in place, or
# on exit.
say() { add out "$1$nl"; }
# tell: prints the report so far.
tell() {
  whole out
  [ -z "$got" ] || put "$got"
  unset out_p out_n
}
fail() { printf 'lollypops: %s\n' "$*" >&2; exit 1; }
# The effective uid and gid, as the kernel has them for this shell (no
# process); id where /proc is not mounted.
me='' mg=''
while read -r _k _ _v _; do
  case $_k in
  Uid:) me=$_v ;;
  Gid:) mg=$_v ;;
  esac
done 2>/dev/null </proc/self/status
if [ -z "$me" ] || [ -z "$mg" ]; then
  me=$(id -u) && mg=$(id -g) || exit 1
fi
mine=$me:$mg
n=0
mt=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  i=1
  while [ "$i" -le "$n" ]; do
    eval "s=\$st_$i a=\$ac_$i d=\$dn_$i"
    [ "$d" = 1 ] || as "$a" rm -rf -- "$s"
    eval "dn_$i=1"
    i=$((i + 1))
  done
  [ -z "$mt" ] || rm -f -- "$mt"
  mt=""
  tell
}
# A signal only sets sig: staging directories are registered right after
# mktemp creates them, and nothing may run in between. A trapped signal
# interrupts read, so get notices it at once.
sig=""
trap cleanup EXIT
trap sig=1 HUP INT TERM PIPE
get() {
  [ -z "$sig" ] && IFS= read -r "$1" && [ -z "$sig" ] && return 0
  [ -z "$sig" ] || fail "interrupted by a signal; nothing of this session was written"
  fail "the stream from the deployer ended early"
}
# as ACTOR CMD...: runs CMD as the receiving user ("-") or as uid:gid.
as() {
  if [ "$1" = - ]; then shift; "$@"; return; fi
  command -v setpriv >/dev/null 2>&1 || fail "setpriv (util-linux) is needed to write as another user"
  a=$1; shift
  setpriv --reuid="${a%:*}" --regid="${a#*:}" --init-groups -- "$@"
}
# user NAME: sets ou, og (uid, primary gid); 1 if NAME does not exist.
users=" "
user() {
  case $users in *" $1="*) e=${users#*" $1="}; e=${e%% *}; ou=${e%:*}; og=${e#*:}; return 0 ;; esac
  # root is uid 0 with group 0 (NixOS fixes both): no getent for the
  # commonest owner.
  [ "$1" != root ] || { ou=0 og=0; users="$users$1=0:0 "; return 0; }
  if e=$(getent passwd "$1"); then
    e=${e#*:}; e=${e#*:}; ou=${e%%:*}; e=${e#*:}; og=${e%%:*}
  else
    case $1 in *[!0-9]*) return 1 ;; esac
    ou=$1 og=$1
  fi
  users="$users$1=$ou:$og "
}
# group NAME: sets gg (gid); 1 if NAME does not exist.
groups=" "
group() {
  case $groups in *" $1="*) e=${groups#*" $1="}; gg=${e%% *}; return 0 ;; esac
  [ "$1" != root ] || { gg=0; groups="$groups$1=0 "; return 0; }
  if e=$(getent group "$1"); then
    e=${e#*:}; e=${e#*:}; gg=${e%%:*}
  else
    case $1 in *[!0-9]*) return 1 ;; esac
    gg=$1
  fi
  groups="$groups$1=$gg "
}
# place DIR WANT MODE: decides who acts in DIR: sets actor ("-" for the
# receiving user, or uid:gid) and where (DIR with the trusted symbolic links
# resolved; "" when MODE is "" and DIR does not exist). WANT is the uid
# whose directories hand the work over to that user ("" for none, "any"
# for whoever owns them); MODE is the mode of the missing directories root
# creates ("" to create none). Returns 1 with why set.
place() {
  actor=- where=$1 why="" pw=$2 pm=$3
  if [ "$me" != 0 ]; then
    # shellcheck disable=SC2174 # the parents are the receiving user's, 0700 (umask 077)
    [ -z "$pm" ] || [ -d "$1" ] || mkdir -p -m "$pm" -- "$1" || { why="$1: cannot create the directory"; return 1; }
    return 0
  fi
  _cur="" _rest=${1#/} _hops=0 _races=0
  while [ -n "$_rest" ]; do
    set --
    _p=$_cur _r=$_rest
    while [ -n "$_r" ]; do
      _c=${_r%%/*}; case $_r in */*) _r=${_r#*/} ;; *) _r="" ;; esac
      _p=$_p/$_c; set -- "$@" "$_p"
    done
    _info=$(stat -c '%u %a %F' -- "$@" 2>/dev/null)
    while [ -n "$_rest" ]; do
      if [ -z "$_info" ]; then
        # The rest is missing: root creates it in the trusted cur, one
        # directory at a time. When one appears meanwhile (a parallel step
        # of the run creating the same parent, or anyone), mkdir fails and
        # the walk looks at it again as at any existing component.
        [ -n "$pm" ] || { where=""; return 0; }
        while [ -n "$_rest" ]; do
          _c=${_rest%%/*}; case $_rest in */*) _r=${_rest#*/} ;; *) _r="" ;; esac
          if ! _e=$(mkdir -m "$pm" -- "$_cur/$_c" 2>&1); then
            if [ -e "$_cur/$_c" ] || [ -L "$_cur/$_c" ]; then
              _races=$((_races + 1))
              [ "$_races" -le 16 ] || { why="$_cur/$_c: created and removed by another process again and again"; return 1; }
              break 2
            fi
            printf '%s\n' "$_e" >&2
            why="$_cur/$_c: cannot create the directory"; return 1
          fi
          _cur=$_cur/$_c _rest=$_r
          say "lollypops-secrets: created-dir $_cur"
        done
        break
      fi
      _c=${_rest%%/*}; case $_rest in */*) _r=${_rest#*/} ;; *) _r="" ;; esac
      _p=$_cur/$_c
      _l=${_info%%"$nl"*}
      case $_info in *"$nl"*) _info=${_info#*"$nl"} ;; *) _info="" ;; esac
      _u=${_l%% *}; _l=${_l#* }; _m=${_l%% *}; _t=${_l#* }
      if [ "$_u" != 0 ]; then
        case $_t in directory | "symbolic link") ;; *) why="$_p: not a directory"; return 1 ;; esac
        if [ "$_u" = "$pw" ] || [ any = "$pw" ]; then
          # The owner's own directory: the owner's processes do the rest.
          _e=$(getent passwd "$_u") || { why="$_p: owned by uid $_u, which is no user"; return 1; }
          _e=${_e#*:}; _e=${_e#*:}; _e=${_e#*:}
          actor=$_u:${_e%%:*} where=$_p${_r:+/$_r}
          return 0
        fi
        why="$_p: owned by uid $_u, who could redirect the writes of root there"
        return 1
      fi
      case $_t in
      directory)
        _o=${_m#"${_m%?}"}; _g=${_m%?}; _g=${_g#"${_g%?}"}; _x=${_m%???}
        case $_g$_o in *[2367]*)
          case $_x in *[1357]) ;; *) why="$_p: writable by other users (mode $_m), who could redirect the writes of root there"; return 1 ;; esac
        esac
        _cur=$_p _rest=$_r
        ;;
      "symbolic link")
        _hops=$((_hops + 1))
        [ "$_hops" -le 16 ] || { why="$_p: too many levels of symbolic links"; return 1; }
        _tg=$(readlink -- "$_p") || { why="$_p: cannot read the symbolic link"; return 1; }
        case $_tg in /*) _cur="" _tg=${_tg#/} ;; esac
        while :; do
          case $_tg in ../*) _cur=${_cur%/*} _tg=${_tg#../} ;; ..) _cur=${_cur%/*} _tg="" ;; *) break ;; esac
        done
        case /$_tg/ in */./* | */../* | *//*)
          why="$_p: a symbolic link to a path with . or .. inside; point it at a plain path"; return 1 ;;
        esac
        _rest=$_tg${_r:+/$_r}; _rest=${_rest%/}
        continue 2
        ;;
      *) why="$_p: not a directory"; return 1 ;;
      esac
    done
  done
  where=${_cur:-/}
}
# stage DIR OWNER: a staging directory for files of DIR; sets s and k (its
# index), and actor and where as place does.
stage() {
  [ "$sd" != "$1 $2" ] || return 0
  sd="$1 $2"
  place "$1" "$2" 0711 || fail "$why"
  if [ "$actor" = - ]; then
    s=$(mktemp -d -- "$where/.lollypops-XXXXXXXXXX") || fail "$where: cannot create a staging directory"
  else
    # shellcheck disable=SC2016 # a script for sh -c, with its own arguments
    s=$(as "$actor" sh -c 'umask 066; mkdir -p -- "$1" && exec mktemp -d -- "$1/.lollypops-XXXXXXXXXX"' lollypops "$where") ||
      fail "$where: cannot create a staging directory as uid ${actor%:*}"
  fi
  n=$((n + 1)); k=$n
  eval "st_$k=\$s ac_$k=\$actor dn_$k=0"
}
# verify K: reads staging directory K back and compares it with the sums
# that were sent (its list ck_K: "SUM  NAME" lines, which sha256sum -c
# reads on its stdin: never in a program's argv).
verify() {
  eval "s=\$st_$1 a=\$ac_$1"
  whole "ck_$1"
  # shellcheck disable=SC2016 # a script for sh -c, with its own arguments
  if [ "$a" = - ]; then
    put "$got" | (cd -- "$s" && exec sha256sum -c --quiet --strict -) >/dev/null
  else
    put "$got" | as "$a" sh -c 'cd -- "$1" && exec sha256sum -c --quiet --strict -' lollypops "$s" >/dev/null
  fi ||
    fail "${s%/*}: the staged files differ from what the deployer sent, or cannot be read back"
}
# commit K: renames the files of staging directory K (its list ps_K) into
# place.
commit() {
  k=$1
  eval "s=\$st_$k a=\$ac_$k _cn=\${ps_${k}_n:-0}"
  set --
  _cj=1
  while :; do
    if [ "$_cj" -le "$_cn" ]; then eval "r=\$ps_${k}_$_cj"; else eval "r=\${ps_${k}_p-}"; fi
    while [ -n "$r" ]; do p=${r%%"$nl"*}; r=${r#*"$nl"}; set -- "$@" "$s/${p##*/}"; done
    [ "$_cj" -le "$_cn" ] || break
    _cj=$((_cj + 1))
  done
  as "$a" mv -f -t "${s%/*}" -- "$@" || fail "${s%/*}: cannot move the new files into place"
  eval "dn_$k=1"
  lines "ps_$k" wrote
  as "$a" rmdir -- "$s" || true
}
# shellcheck disable=SC2317 # called by lines
wrote() { say "lollypops-secrets: wrote $1"; }
# value: reads a value sent as text (its lines; eol says whether the last
# one ends with a newline) into v.
value() {
  v="" _i=0
  while [ "$_i" -lt "$lines" ]; do
    get _l
    v="$v$_l$nl" _i=$((_i + 1))
  done
  [ "$eol" = 1 ] || v=${v%"$nl"}
}
get magic
[ "$magic" = lollypops-secrets-7 ] || fail "unknown stream version: $magic"
sd="" manifest="" hadm="" nk=0 nw=0
while get op; do
  case $op in
  manifest)
    get manifest; get remove
    place "${manifest%/*}" "" 0755 || fail "$why"
    [ "$actor" = - ] || fail "${manifest%/*}: the manifest's directory must be one only root can change"
    mt=$(mktemp -- "$where/.lollypops-manifest-XXXXXXXXXX") || fail "$where: cannot create a temporary file"
    [ ! -f "$manifest" ] || hadm=1
    ;;
  keep)
    get p
    add keep "$p$nl"
    nk=$((nk + 1))
    ;;
  file)
    # The path on a line of its own, the rest (words) on one line: a read
    # per field cost a tenth of a millisecond per file.
    get p
    if ! { [ -z "$sig" ] && read -r o g mode mask chm pmode pmask pchm soft size sum how lines eol && [ -z "$sig" ]; }; then
      [ -z "$sig" ] || fail "interrupted by a signal; nothing of this session was written"
      fail "the stream from the deployer ended early"
    fi
    case $size in "" | *[!0-9]*) fail "$p: bad size in the stream" ;; esac
    case $how in
    bytes) ;;
    text)
      case $lines in "" | *[!0-9]*) fail "$p: bad line count in the stream" ;; esac
      value ;;
    *) fail "$p: the stream is corrupt before the value" ;;
    esac
    missing=""
    if user "$o"; then
      group "$g" || { [ "$soft" = 1 ] || fail "$p: group $g does not exist"; missing=group; }
      stage "${p%/*}" "$ou"
    else
      [ "$soft" = 1 ] || fail "$p: user $o does not exist"
      missing=user
      stage "${p%/*}" ""
    fi
    if [ -n "$missing" ]; then
      # Pending: its group (root's, or the owner's primary group) is not
      # the one asked for, so the group and others get no bits until the
      # file is written again with its group, after the activation.
      mode=$pmode mask=$pmask chm=$pchm gg=""
    fi
    t=$s/${p##*/}
    if [ "$actor" = - ]; then
      umask "$mask"
      if [ "$how" = text ]; then
        put "$v" > "$t" || fail "$p: cannot write $t"
      else
        head -c "$size" > "$t" || fail "$p: cannot write $t"
      fi
      umask 077
      if [ -z "$missing" ] && [ "$ou:$gg" != "$mine" ]; then
        chown -h -- "$ou:$gg" "$t" || fail "$p: cannot change the owner to $o:$g"
      fi
      [ "$chm" = 0 ] || chmod -- "$mode" "$t" || fail "$p: cannot change the mode to $mode"
    else
      # As the owner: the value on the writer's stdin, from the stream or
      # from put.
      # shellcheck disable=SC2016 # a script for sh -c, with its own arguments
      w='umask "$1"; head -c "$2" > "$3" || exit 1
        [ -z "$4" ] || chgrp -- "$4" "$3" || exit 1
        [ "$5" = 0 ] || chmod -- "$6" "$3"'
      if [ "$how" = text ]; then
        put "$v" | as "$actor" sh -C -c "$w" lollypops "$mask" "$size" "$t" "$gg" "$chm" "$mode"
      else
        as "$actor" sh -C -c "$w" lollypops "$mask" "$size" "$t" "$gg" "$chm" "$mode"
      fi || fail "$p: cannot write it as $o (uid $ou)"
    fi
    v=""
    if [ -n "$missing" ]; then
      w=$(stat -c '%U:%G %a' -- "$t") || w="?:? ?"
      say "lollypops-secrets: pending-owner $missing $o:$g $w $p"
    fi
    get end
    [ "$end" = end ] || fail "$p: the stream is corrupt after the value"
    case $sum in *[!0-9a-f]* | "") fail "$p: bad checksum in the stream" ;; esac
    add "ps_$k" "$p$nl"
    add "ck_$k" "$sum  ${p##*/}$nl"
    add sums "sha256=$sum $p$nl"
    nw=$((nw + 1))
    ;;
  commit)
    i=1; while [ "$i" -le "$n" ]; do verify "$i"; i=$((i + 1)); done
    i=1; while [ "$i" -le "$n" ]; do commit "$i"; i=$((i + 1)); done
    # Changed: the sum lines the manifest does not have (one grep, the
    # sums on its stdin), all without a manifest.
    whole sums
    chg=${got%"$nl"}
    if [ -n "$hadm" ]; then
      chg=$(put "$got" | grep -Fxv -f "$manifest")
      [ $? -le 1 ] || chg=${got%"$nl"}
    fi
    # Long texts are cut into lines by the shell's field splitting (no
    # globbing): taking lines off one at a time costs a pass over the rest.
    IFS=$nl
    set -f
    # shellcheck disable=SC2086 # split into lines
    set -- $chg
    unset IFS
    set +f
    for l do say "lollypops-secrets: changed ${l#* }"; done
    say "lollypops-secrets: committed"
    tell
    if [ -n "$mt" ]; then
      whole keep
      put "$got" >| "$mt" || fail "cannot write the manifest"
      stale=""
      if [ -f "$manifest" ]; then
        stale=$(grep -Fxv -f "$mt" -- "$manifest") || stale=""
      fi
      IFS=$nl
      set -f
      # shellcheck disable=SC2086 # split into lines
      set -- $stale
      unset IFS
      set +f
      for p do
        case $p in /*) ;; *) continue ;; esac # a sum line
        [ -e "$p" ] || [ -L "$p" ] || continue
        if [ "$remove" = 1 ] && place "${p%/*}" any "" && [ -n "$where" ]; then
          if as "$actor" rm -f -- "$where/${p##*/}"; then say "lollypops-secrets: removed $p"; continue; fi
        elif [ "$remove" = 1 ]; then
          printf 'lollypops: not removing %s: %s\n' "$p" "$why" >&2
        fi
        say "lollypops-secrets: stale $p"
        add keep "$p$nl"
        nk=$((nk + 1))
      done
      # The sums: this session's, and the earlier ones of the other files
      # still listed (none when this session wrote every file listed).
      # One awk: the listed paths, a line no path can be, the written
      # ones on its stdin, then the old manifest.
      if [ "$nk" != "$nw" ] && [ -n "$hadm" ]; then
        # The written paths: the staging directories' lists.
        _wp="" i=1
        while [ "$i" -le "$n" ]; do whole "ps_$i"; _wp=$_wp$got; i=$((i + 1)); done
        whole keep
        # shellcheck disable=SC2016 # an awk program
        _r=$({ put "$got"; echo "lollypops-written"; put "$_wp"; } | awk '
          FNR == NR { if ($0 == "lollypops-written") w = 1; else if (w) wr[$0] = 1; else kp[$0] = 1; next }
          /^sha256=/ { p = substr($0, index($0, " ") + 1); if ((p in kp) && !(p in wr)) print }' - "$manifest") ||
          fail "$manifest: cannot read the old sums"
        [ -z "$_r" ] || add sums "$_r$nl"
      fi
      whole keep
      _kp=$got
      whole sums
      # mktemp made it 0600.
      # shellcheck disable=SC2015 # either failing fails the session
      put "$_kp$got" >| "$mt" && mv -fT -- "$mt" "$manifest" ||
        fail "$manifest: cannot update the manifest"
      mt=""
    fi
    exit 0
    ;;
  *) fail "unknown record in the stream: $op" ;;
  esac
done
fail "the stream from the deployer ended before its commit"
