package kube

// pruneScript removes the archives named in $ARCHIVES (one path per line, relative to the
// backup volume, each checked by PruneJob) and then each session directory that became empty
// (rmdir: a directory holding anything else, another archive or a running backup's temporary
// one, stays). An archive already gone is no error, so running it again is harmless. On
// success its termination message says "removed=<n>" and "missing=<n>"; a file it cannot
// remove fails it with the reason.
const pruneScript = `set -eu
scratch=/tmp/prune
child=""
fail() {
  if [ -n "$child" ]; then kill -9 "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; child=""; fi
  printf '%s\n' "$*" | head -c 3500 > /dev/termination-log
  printf 'removal failed: %s\n' "$*" >&2
  exit 1
}
trap 'fail "the removal was stopped before it finished (it ran out of time); running it again finishes it"' TERM INT HUP
` + scriptRun + `mkdir -p "$scratch"
printf '%s\n' "$ARCHIVES" > "$scratch/archives"
removed=0
missing=0
while IFS= read -r rel; do
  [ -n "$rel" ] || continue
  f="` + BackupDir + `/$rel"
  if [ -e "$f" ] || [ -L "$f" ]; then
    rm -f "$f" 2> "$scratch/rm.err" || fail "cannot remove $rel: $(head -c 1000 "$scratch/rm.err" | tr '\n' ' ')"
    removed=$((removed + 1))
  else
    missing=$((missing + 1))
  fi
  rmdir "${f%/*}" 2> /dev/null || true
done < "$scratch/archives"
run sync
printf 'removed=%s\nmissing=%s\n' "$removed" "$missing" > /dev/termination-log
echo "removed $removed archive(s); $missing were gone already"
`
