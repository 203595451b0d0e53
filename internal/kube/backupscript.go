package kube

// backupScript runs as code-server's user with the data volume read-only, after the workspace's
// pod is gone (the session core waits for it). It writes nothing but the archive, and a zip
// under its final name is always complete and tested:
//   - it refuses to start when a file cannot be read (the reason names the files) or when the
//     backup volume has less room than the workspace's files take (uncompressed: the bound
//     that holds whatever zip makes of them), before writing anything;
//   - it archives regular files, directories and symlinks (as links); sockets and FIFOs are a
//     program's runtime state, not data, and zip cannot read a socket;
//   - zip writes into a hidden directory of this attempt beside the target (zip keeps its own
//     temporary file beside its archive), the archive is tested (unzip -t), synced and renamed
//     out of it; the directory is removed on every exit path, a stop (the Job's deadline)
//     included, and one that a killed attempt left behind is removed by the next;
//   - every long step runs in the background and is waited for, so a stop is handled at once
//     (a shell runs its trap only between commands), well inside the pod's grace period.
//
// An empty workspace gives an empty (valid) zip. Its termination message on success is the
// archive's location, then "bytes=<the archive's size>".
const backupScript = `set -eu
dir="` + BackupDir + `/$SESSION_ID"
work="$dir/.partial-$BACKUP_FILE"
scratch=/tmp/backup
child=""
cleanup() {
  if [ -n "$child" ]; then kill -9 "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  rm -rf "$work"
}
fail() {
  cleanup
  printf '%s\n' "$*" | head -c 3500 > /dev/termination-log
  printf 'backup failed: %s\n' "$*" >&2
  exit 1
}
trap 'fail "the backup was stopped before it finished (it ran out of time); nothing was written"' TERM INT HUP
` + scriptRun + `mkdir -p "$dir" "$scratch"
# what a killed attempt of this session left behind
rm -rf "$dir"/.partial-*
cd ` + WorkspaceDir + `
st=0
run find . -xdev -mindepth 1 ! -path './lost+found' ! -path './lost+found/*' \( -type f -o -type d -o -type l \) -print > "$scratch/files" 2> "$scratch/find.err" || st=$?
if [ "$st" -ne 0 ]; then
  fail "the backup cannot list the workspace's files: $(head -n 5 "$scratch/find.err" | tr '\n' ' ')— make the directories readable (chmod u+rx) or delete with skip_backup"
fi
nl="$(find . -xdev -name '*
*' | head -n 3 | tr '\n' ' ')"
if [ -n "$nl" ]; then
  fail "a file name in the workspace contains a line break, which the backup cannot archive: $nl— rename it, or delete with skip_backup"
fi
n=0
while IFS= read -r f; do
  if [ ! -L "$f" ] && { [ ! -r "$f" ] || { [ -d "$f" ] && [ ! -x "$f" ]; }; }; then
    n=$((n + 1))
    [ "$n" -le 5 ] && printf '%s\n' "$f" >> "$scratch/unreadable"
  fi
done < "$scratch/files"
if [ "$n" -gt 0 ]; then
  fail "$n file(s) in the workspace cannot be read by the backup (permission denied): $(tr '\n' ' ' < "$scratch/unreadable")— wake the workspace and make them readable (chmod u+r), or delete with skip_backup to drop them"
fi
run du -skx . > "$scratch/du"
need=$(cut -f1 < "$scratch/du")
free=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
if [ "$need" -gt "$free" ]; then
  fail "the backup volume has $free KiB free and this workspace's files take $need KiB: nothing was written; the operator must free or grow the backup volume"
fi
mkdir "$work"
if [ -s "$scratch/files" ]; then
  st=0
  run_from "$scratch/files" zip -q -y -@ "$work/archive.zip" 2> "$scratch/zip.err" || st=$?
  if [ "$st" -ne 0 ]; then
    fail "zip exited $st: $(head -c 1500 "$scratch/zip.err" | tr '\n' ' ')"
  fi
  st=0
  run ` + unzipPath + ` -tqq "$work/archive.zip" > "$scratch/test.err" 2>&1 || st=$?
  if [ "$st" -ne 0 ]; then
    fail "the archive failed its test: $(head -c 1500 "$scratch/test.err" | tr '\n' ' ')"
  fi
else
  { printf 'PK\005\006'; head -c 18 /dev/zero; } > "$work/archive.zip"
fi
run sync
mv -f "$work/archive.zip" "$dir/$BACKUP_FILE"
rm -rf "$work"
run sync
bytes=$(wc -c < "$dir/$BACKUP_FILE" | tr -d ' ')
printf '%s\nbytes=%s\n' "$BACKUP_LOCATION" "$bytes" > /dev/termination-log
echo "$BACKUP_LOCATION"
`
