#!/usr/bin/env bash
# Helpers for assembling an image's root filesystem from files of this machine, sourced by
# scripts/build-image.sh (the sidecar) and test/stack/app-images.sh (the test apps).

# copy_libs <rootfs> <elf>...: the shared libraries the dynamic loader resolves for the ELF files, and the
# loader itself, copied into <rootfs> at the same paths (those already there are kept).
copy_libs() {
  local root="$1" lib
  shift
  for lib in $(ldd "$@" 2>/dev/null | awk '/=> \// { print $3 } /^[[:space:]]*\/[^ ]+ \(/ { print $1 }' | sort -u); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

# add_node <rootfs> <node binary>: the Node binary at /nodejs/bin/node (the distroless nodejs path the
# Dockerfile uses) with its libraries.
add_node() {
  mkdir -p "$1/nodejs/bin"
  install -m 0755 "$2" "$1/nodejs/bin/node"
  copy_libs "$1" "$2"
}
