#!/usr/bin/env bash
# App images for the real-pod tests (test/node), built like the sidecar's (scripts/build-image.sh): no
# Docker, an OCI archive from files of this machine (scripts/oci-archive.sh).
#
#   test/stack/app-images.sh python <out.tar> <name> <app.py> [--env KEY=VALUE]...
#       Python with the consumers' venv (test/stack/consumers.sh: boto3, aioboto3, as artifact-store uses):
#       the venv's interpreter and standard library at their paths, the libraries ldd names for it and for
#       every extension module, the venv's site-packages on PYTHONPATH; ENTRYPOINT python -B /app/app.py.
#
# The images run as any UID (their files are root-owned, world-readable) on a read-only root filesystem.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

die() {
  echo "app-images: $*" >&2
  exit 1
}

copy_libs() { # copy_libs <rootfs> <elf>...: the shared libraries (and loader) the ELF files need
  local root="$1" lib
  shift
  for lib in $(ldd "$@" 2>/dev/null | awk '/=> \// { print $3 } /^[[:space:]]*\/[^ ]+ \(/ { print $1 }' | sort -u); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

python_image() {
  local out="$1" name="$2" app="$3"
  shift 3
  local venv py exe stdlib site rootfs envs=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --env) envs+=(--env "$2") ;;
      *) die "unknown argument $1" ;;
    esac
    shift 2
  done
  venv="$(bash "$REPO_ROOT/test/stack/consumers.sh" where | sed -n 's/.*"python":"\([^"]*\)".*/\1/p')"
  [ -x "$venv" ] || die "no consumers venv (run: bash test/stack/consumers.sh install)"
  py="$venv"
  exe="$("$py" -c 'import os, sys; print(os.path.realpath(sys._base_executable))')"
  stdlib="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
  site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' RETURN
  mkdir -p "$rootfs$(dirname "$exe")" "$rootfs/opt/venv" "$rootfs/app" "$rootfs/tmp" "$rootfs/etc"
  chmod 1777 "$rootfs/tmp"
  cp -L "$exe" "$rootfs$exe"
  # The standard library at its own path (the interpreter finds it from its location), without tests.
  tar -C / -cf - --exclude='*/test' --exclude='*/tests' --exclude='*/idlelib' --exclude='*/tkinter' \
    --exclude='*/turtledemo' --exclude='*/ensurepip' --exclude='*/site-packages' --exclude='*/dist-packages' \
    "${stdlib#/}" | tar -C "$rootfs" -xf -
  tar -C "$site" -cf - --exclude='pip' --exclude='pip-*' . | tar -C "$rootfs/opt/venv" -xf -
  copy_libs "$rootfs" "$exe"
  # shellcheck disable=SC2046
  copy_libs "$rootfs" $(find "$rootfs$stdlib" "$rootfs/opt/venv" -name '*.so*' -type f)
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\napp:x:10001:10001:app:/tmp:/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\napp:x:10001:\n' >"$rootfs/etc/group"
  install -m 0444 "$app" "$rootfs/app/app.py"
  bash "$REPO_ROOT/scripts/oci-archive.sh" --name "$name" --out "$out" --rootfs "$rootfs" \
    --entrypoint "[\"$exe\",\"-B\",\"/app/app.py\"]" --user 10001:10001 --workdir /app \
    --env PYTHONPATH=/opt/venv --env PYTHONUNBUFFERED=1 --env HOME=/tmp \
    --env SSL_CERT_FILE=/etc/ca-certificates.crt "${envs[@]+"${envs[@]}"}"
}

case "${1:-}" in
  python)
    shift
    [ $# -ge 3 ] || die "usage: $0 python <out.tar> <name> <app.py> [--env KEY=VALUE]..."
    python_image "$@"
    ;;
  *)
    echo "usage: $0 python <out.tar> <name> <app.py> [--env KEY=VALUE]..." >&2
    exit 2
    ;;
esac
