package secrets

// receiverScript runs on the host (through sudo when enabled) and reads the
// stream Encode writes: all of a host's secrets in one ssh session.
//
// Every file is first written under its final name to a private staging
// directory (mode 0700) in its destination's directory, created exclusively
// (noclobber) with its final mode (through the umask, so it is never
// readable by more than its mode allows), given its owner and group, and
// only renamed into place once every file of the stream has arrived
// ("commit"). A stream that ends early — the connection
// dropped, the deployer was interrupted, a secret command failed — leaves no
// new file behind: the record that must follow each value is then missing,
// and the temporary files are removed on exit and on SIGHUP, SIGINT, SIGTERM
// and SIGPIPE.
//
// Hosts may get hundreds of secrets, so the script starts as few processes
// as it can: per file one head (and a chown when the owner is not the
// receiving user, a chmod for set-id and sticky bits); per directory, one mv
// at the commit; owners are looked up once per owner and group.
//
// The values only travel on stdin; argv holds nothing but this script.
// The script is quoted for the remote login shell by ssh.Command; its only
// backslashes are printf's "\n", which fish's single quotes keep too.
// A stale file that is kept stays in the manifest, so that later runs list
// it again and can remove it. The staging directories are kept in the
// positional parameters, the only array POSIX sh has.
const receiverScript = `set -u -C
umask 077
fail() { echo "lollypops: $*" >&2; exit 1; }
cleanup() { [ $# -eq 0 ] || rm -rf -- "$@"; [ -z "${mt:-}" ] || rm -f -- "$mt"; }
trap 'cleanup "$@"' EXIT
trap 'cleanup "$@"; exit 1' HUP INT TERM PIPE
me="$(id -un):$(id -gn)"
seen=" "
known() {
  case $seen in *" $1:$2 "*) return 0 ;; esac
  case $1 in *[!0-9]*) getent passwd "$1" >/dev/null || return 1 ;; esac
  case $2 in *[!0-9]*) getent group "$2" >/dev/null || return 1 ;; esac
  seen="$seen$1:$2 "
}
get() { IFS= read -r "$1" || fail "the stream from the deployer ended early"; }
# commit moves the files of a staging directory into its parent: one mv for
# all of them (each a rename, atomic), then removes the empty directory.
commit() {
  d=${1%/*} s=$1
  set --
  for f in "$s"/* "$s"/.[!.]* "$s"/..?*; do
    if [ -e "$f" ] || [ -L "$f" ]; then set -- "$@" "$f"; fi
  done
  [ $# -eq 0 ] || mv -f -t "$d" -- "$@" || fail "$d: cannot move the new files into place"
  for f in "$@"; do echo "wrote $d/${f##*/}"; done
  rmdir -- "$s"
}
get magic
[ "$magic" = lollypops-secrets-3 ] || fail "unknown stream version: $magic"
mt=""
while get op; do
  case $op in
  manifest)
    get manifest; get remove
    md=${manifest%/*}
    (umask 022; mkdir -p -- "$md") || fail "$md: cannot create the directory"
    mt=$(mktemp -- "$md/.lollypops-manifest-XXXXXX") || fail "$md: cannot create a temporary file"
    ;;
  keep)
    get p
    printf "%s\n" "$p" >> "$mt" || fail "cannot write the manifest"
    ;;
  dir)
    get p; get o; get g; get soft
    if [ ! -d "$p" ]; then
      mkdir -m 0711 -- "$p" || fail "$p: cannot create the directory"
      if known "$o" "$g"; then
        [ "$o:$g" = "$me" ] || chown -- "$o:$g" "$p" || fail "$p: cannot change the owner to $o:$g"
      elif [ "$soft" != 1 ]; then fail "$p: user or group does not exist: $o:$g"
      fi
      echo "created-dir $p"
    fi
    ;;
  file)
    get p; get o; get g; get mode; get mask; get soft; get size
    case $size in "" | *[!0-9]*) fail "$p: bad size in the stream" ;; esac
    [ ! -d "$p" ] || fail "$p: is a directory"
    s="${p%/*}/.lollypops-$$"
    if [ ! -d "$s" ]; then
      mkdir -- "$s" || fail "${p%/*}: cannot create the staging directory $s"
      set -- "$@" "$s"
    fi
    t="$s/${p##*/}"
    umask "$mask"
    head -c "$size" > "$t" || fail "$p: cannot create the temporary file $t"
    umask 077
    get end
    [ "$end" = end ] || fail "$p: the stream is corrupt after the value"
    if known "$o" "$g"; then
      [ "$o:$g" = "$me" ] || chown -- "$o:$g" "$t" || fail "$p: cannot change the owner to $o:$g"
    elif [ "$soft" = 1 ]; then echo "pending-owner $o:$g $p"
    else fail "$p: user or group does not exist: $o:$g"
    fi
    case $mode in [1-7]???) chmod -- "$mode" "$t" || fail "$p: cannot change the mode to $mode" ;; esac
    ;;
  chown)
    get p; get o; get g
    known "$o" "$g" || fail "$p: user or group does not exist, even after activation: $o:$g"
    chown -- "$o:$g" "$p" || fail "$p: cannot change the owner to $o:$g"
    echo "owner-fixed $p"
    ;;
  commit)
    for s in "$@"; do commit "$s"; done
    set --
    if [ -n "$mt" ]; then
      if [ -f "$manifest" ]; then
        grep -Fxv -f "$mt" -- "$manifest" | while IFS= read -r p; do
          [ -n "$p" ] || continue
          if [ "$remove" = 1 ] && [ -f "$p" ]; then
            rm -f -- "$p" && echo "removed $p"
          elif [ -e "$p" ]; then
            echo "stale $p"
            printf "%s\n" "$p" >> "$mt"
          fi
        done
      fi
      chmod 0600 "$mt" && mv -fT -- "$mt" "$manifest" || fail "$manifest: cannot update the manifest"
      mt=""
    fi
    exit 0
    ;;
  *) fail "unknown record in the stream: $op" ;;
  esac
done
fail "the stream from the deployer ended before its commit"
`
