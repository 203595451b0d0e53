package kube

// restoreScript runs as code-server's user with the session's (new) volume read-write at /app
// and the backup volume read-only, before the workspace ever started, so nothing in /app is the
// user's yet:
//   - it empties /app first (everything but lost+found: what an earlier attempt left);
//   - an archive that is not there, or not a zip, fails at once; an empty archive (its
//     end-of-central-directory record alone) restores nothing and succeeds;
//   - it refuses, before writing, an archive whose files take more than the volume has free;
//   - unzip restores files, empty directories, symlinks (as links), modes and modification
//     times: it sets each entry's mode from the archive itself, whatever the umask (set-id
//     bits are dropped, as they should be), so the umask only shapes a directory the archive
//     does not list, which the backup never makes;
//   - on any failure (unzip's error, a full volume, the Job's deadline) it writes the reason
//     first, then empties /app again: a failed restore leaves an empty volume and the archive,
//     mounted read-only, untouched;
//   - on success it syncs and says what it restored: "bytes=<uncompressed bytes>" and
//     "files=<entries>" lines in its termination message.
const restoreScript = `set -eu
archive="` + BackupDir + `/$ARCHIVE"
scratch=/tmp/restore
child=""
# left names (some of) what /app holds besides lost+found
left() { find ` + WorkspaceDir + ` -xdev -mindepth 1 -maxdepth 1 ! -name lost+found | head -n 3 | tr '\n' ' '; }
# empty removes everything in /app but lost+found; what a directory without write permission
# kept is removed once every directory is writable (find makes a directory so before it
# descends into it)
empty() {
  find ` + WorkspaceDir + ` -xdev -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} + 2> /dev/null || true
  if [ -n "$(left)" ]; then
    find ` + WorkspaceDir + ` -xdev -mindepth 1 -type d ! -path ` + WorkspaceDir + `/lost+found ! -path '` + WorkspaceDir + `/lost+found/*' ! -perm -700 -exec chmod u+rwx {} \; 2> /dev/null || true
    find ` + WorkspaceDir + ` -xdev -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} + 2> /dev/null || true
  fi
  [ -z "$(left)" ]
}
fail() {
  trap '' TERM INT HUP
  if [ -n "$child" ]; then kill -9 "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; child=""; fi
  msg="$*"
  printf '%s\n' "$msg" | head -c 3500 > /dev/termination-log
  if ! empty; then
    msg="$msg; and the volume could not be emptied (left: $(left))"
    printf '%s\n' "$msg" | head -c 3500 > /dev/termination-log
  fi
  printf 'restore failed: %s\n' "$msg" >&2
  exit 1
}
trap 'fail "the restore was stopped before it finished (it ran out of time); the volume was emptied"' TERM INT HUP
` + scriptRun + `umask 022
mkdir -p "$scratch"
if [ ! -f "$archive" ]; then
  fail "archive missing: there is no file at $LOCATION"
fi
empty || fail "the volume could not be emptied before the restore"
sig=$(head -c 4 "$archive" | od -An -tx1 | tr -d ' \n')
case "$sig" in
504b0304) ;;
504b0506)
  run sync
  printf 'bytes=0\nfiles=0\n' > /dev/termination-log
  echo "restored nothing: $LOCATION is an empty archive"
  exit 0
  ;;
*) fail "$LOCATION is not a zip archive (it starts with the bytes ${sig:-(none: it is empty)})" ;;
esac
st=0
run ` + unzipPath + ` -Zt "$archive" > "$scratch/totals" 2>&1 || st=$?
if [ "$st" -ne 0 ]; then
  fail "the archive cannot be read (unzip -Zt exited $st): $(head -c 1500 "$scratch/totals" | tr '\n' ' ')"
fi
files=$(awk 'NR == 1 { print $1 }' "$scratch/totals")
bytes=$(awk 'NR == 1 { print $3 }' "$scratch/totals")
free=$(df -Pk ` + WorkspaceDir + ` | awk 'NR == 2 { print $4 }')
if awk -v b="$bytes" -v f="$free" 'BEGIN { exit !(b > f * 1024) }'; then
  fail "no space left: the archive's files take $bytes bytes and the volume has $free KiB free; nothing was restored"
fi
st=0
run ` + unzipPath + ` -q -o "$archive" -d ` + WorkspaceDir + ` > "$scratch/unzip.err" 2>&1 || st=$?
if [ "$st" -ne 0 ]; then
  why=$(head -c 1500 "$scratch/unzip.err" | tr '\n' ' ')
  if [ "$st" -eq 50 ] || grep -qiE 'no space left|disk full' "$scratch/unzip.err"; then
    fail "no space left on the volume while restoring (unzip exited $st): $why"
  fi
  fail "unzip exited $st: $why"
fi
run sync
printf 'bytes=%s\nfiles=%s\n' "$bytes" "$files" > /dev/termination-log
echo "restored $files entries ($bytes bytes) from $LOCATION"
`
