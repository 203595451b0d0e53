package kube

// checkScript reads the archive $ARCHIVE (under the backup volume, mounted read-only) through
// and writes its answer, one JSON line, to its termination message:
//
//	{"problem":"","detail":"","bytes":<archive size>,"files":<entries>,"uncompressed":<bytes>}
//
// problem is "" (a good archive), "missing" (no file), "not_zip" (its first 4 bytes are not a
// zip's local header or end-of-central-directory signature) or "corrupt" (unzip -t fails: a
// CRC, a truncated entry; detail is unzip's output's head). It exits 0 in all of these: only a
// stop (its deadline) or a crash fails the Job. An empty archive (its end-of-central-directory
// record alone) is good, with no entries.
const checkScript = `set -eu
archive="` + BackupDir + `/$ARCHIVE"
scratch=/tmp/check
child=""
# report PROBLEM DETAIL BYTES FILES UNCOMPRESSED writes the answer and ends the check
report() {
  detail=$(printf '%s' "$2" | tr '\n\r\t' '   ' | tr -d '\000-\037' | head -c 1000 | sed 's/\\/\\\\/g; s/"/\\"/g')
  line=$(printf '{"problem":"%s","detail":"%s","bytes":%s,"files":%s,"uncompressed":%s}' "$1" "$detail" "$3" "$4" "$5")
  printf '%s\n' "$line" > /dev/termination-log
  printf '%s\n' "$line"
  exit 0
}
stop() {
  if [ -n "$child" ]; then kill -9 "$child" 2>/dev/null || true; fi
  printf '%s\n' "the check was stopped before it finished (it ran out of time)" > /dev/termination-log
  exit 1
}
trap stop TERM INT HUP
` + scriptRun + `mkdir -p "$scratch"
if [ ! -e "$archive" ] && [ ! -L "$archive" ]; then
  report missing "there is no file at $LOCATION" 0 0 0
fi
if [ ! -f "$archive" ]; then
  report not_zip "$LOCATION is not a regular file" 0 0 0
fi
bytes=$(wc -c < "$archive" | tr -d ' ')
sig=$(head -c 4 "$archive" | od -An -tx1 | tr -d ' \n')
case "$sig" in
504b0304 | 504b0506) ;;
*) report not_zip "it starts with the bytes ${sig:-(none: the file is empty)}, not a zip signature" "$bytes" 0 0 ;;
esac
st=0
run ` + unzipPath + ` -tqq "$archive" > "$scratch/test" 2>&1 || st=$?
if [ "$st" -ne 0 ]; then
  if [ "$sig" = 504b0506 ] && grep -q 'zipfile is empty' "$scratch/test"; then
    report "" "" "$bytes" 0 0
  fi
  report corrupt "unzip -t exited $st: $(head -c 1000 "$scratch/test")" "$bytes" 0 0
fi
st=0
run ` + unzipPath + ` -Zt "$archive" > "$scratch/totals" 2>&1 || st=$?
files=$(awk 'NR == 1 && $5 ~ /^uncompressed/ { print $1 }' "$scratch/totals")
unc=$(awk 'NR == 1 && $5 ~ /^uncompressed/ { print $3 }' "$scratch/totals")
if [ "$st" -ne 0 ] || [ -z "$files" ] || [ -z "$unc" ] || [ -n "$(printf '%s%s' "$files" "$unc" | tr -d 0-9)" ]; then
  report corrupt "its totals cannot be read (unzip -Z exited $st): $(head -c 1000 "$scratch/totals")" "$bytes" 0 0
fi
report "" "" "$bytes" "$files" "$unc"
`
