#!/usr/bin/env bash
# rootfs.sh DEST - the backup image's whole file tree, built from this Debian machine's packages
# (busybox-static, zip, unzip): busybox as /bin/sh and its applets (find, du, df, stat, md5sum,
# sha256sum, ...), Debian's zip and unzip with the libraries they link, /etc/passwd with coder
# (1000), /tmp 1777. The image runs as 1000:1000 and has no entrypoint: Hyperbola runs
# `/bin/sh -c <script>`. Used by images/build-local.sh and images/backup/Dockerfile alike.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../base/lib.sh"
[ $# = 1 ] || { echo "usage: $0 DEST" >&2; exit 2; }
D=$1
mkdir -p "$D"
for exe in zip unzip; do
  src=$(command -v "$exe") || { echo "rootfs.sh: $exe is missing (apt-get install zip unzip)" >&2; exit 1; }
  install_exe "$D" "$src" "/usr/bin/$exe"
  install_libs "$D" "$src"
done
base_rootfs "$D"
