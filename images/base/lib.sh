# images/base/lib.sh - shell functions shared by every image's rootfs.sh (sourced, bash).
# The local build (images/build-local.sh) and the production Dockerfiles both build an image's
# file tree with the same rootfs.sh, so the two cannot drift apart.
#
#   base_rootfs ROOT          busybox-static (sh + applet links), /etc/passwd+group (root,
#                             coder 1000, nobody), /tmp 1777, /home/coder owned 1000:1000
#   install_exe ROOT SRC DST  copy the program SRC to ROOT/DST (never through a link in ROOT)
#   install_libs ROOT FILE... copy the shared libraries ldd lists for FILEs to the same paths under ROOT
#
# Run the install_* functions before base_rootfs: an applet link is only made where ROOT has
# no file yet, so a real program (unzip, say) wins over busybox's applet of the same name.

install_exe() { # ROOT SRC DST
  local root=$1 src=$2 dst=$3
  mkdir -p "$root$(dirname "$dst")"
  rm -f "$root$dst" # a link here (an applet) would make cp write through it
  cp -L "$src" "$root$dst"
  chmod 0755 "$root$dst"
}

install_libs() { # ROOT FILE...
  local root=$1 lib
  shift
  # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
  for lib in $(ldd "$@" 2>/dev/null | grep -o '/[^ ]*\.so[^ ]*' | sort -u); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

base_rootfs() { # ROOT
  local root=$1 bb a
  bb=$(command -v busybox) || { echo "base_rootfs: busybox is missing (apt-get install busybox-static)" >&2; return 1; }
  if ldd "$bb" > /dev/null 2>&1; then
    echo "base_rootfs: $bb is not static (apt-get install busybox-static)" >&2
    return 1
  fi
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,home/coder,tmp,var/tmp}
  install_exe "$root" "$bb" /bin/busybox
  for a in $("$root/bin/busybox" --list-full); do
    [ -e "$root/$a" ] || [ -L "$root/$a" ] || ln -s /bin/busybox "$root/$a"
  done
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'coder:x:1000:1000:coder:/home/coder:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' > "$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'coder:x:1000:' 'nogroup:x:65534:' > "$root/etc/group"
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
  chmod 0700 "$root/root"
  chmod 1777 "$root/tmp" "$root/var/tmp"
  chown 1000:1000 "$root/home/coder"
  chmod 0755 "$root/home/coder"
}
