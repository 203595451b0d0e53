#!/bin/sh
# The workspace image's entrypoint: code-server, with every argument Hyperbola passes.
# First it makes the --extensions-dir it is given. VS Code's server makes that directory only
# some time after it starts, and a browser that connects before then (a waking page redirects
# the moment the pod is Ready) has its whole scan of extensions fail: that window runs with
# no extension at all, built-in ones included (Hyperbola's activity extension, git, ...).
prev=
for a in "$@"; do
  case "$prev" in --extensions-dir) mkdir -p "$a" ;; esac
  case "$a" in --extensions-dir=*) mkdir -p "${a#--extensions-dir=}" ;; esac
  prev=$a
done
exec /usr/bin/node /opt/code-server/node_modules/code-server/out/node/entry.js "$@"
