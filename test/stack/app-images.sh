#!/usr/bin/env bash
# App images for the real-pod tests (test/node), built like the sidecar's (scripts/build-image.sh): no
# Docker, an OCI archive from files of this machine (scripts/oci-archive.sh).
#
#   test/stack/app-images.sh python <out.tar> <name> <app.py> [--env KEY=VALUE]...
#       Python with the consumers' venv (test/stack/consumers.sh: boto3, aioboto3, as artifact-store uses):
#       the venv's interpreter and standard library at their paths, the libraries ldd names for it and for
#       every extension module, the venv's site-packages on PYTHONPATH; ENTRYPOINT python -B /app/app.py.
#   test/stack/app-images.sh awscli <out.tar> <name>
#       The AWS CLI v1 from PyPI (consumers.sh's awscli venv) the same way, with /usr/local/bin/aws and a
#       busybox /bin/sh (and cat, env, ls...): what examples/once-job.yaml's main container needs of
#       amazon/aws-cli (its script runs under /bin/sh and calls `aws`); ENTRYPOINT aws, as that image's.
#   test/stack/app-images.sh node <out.tar> <name> <app.ts> [--env KEY=VALUE]...
#       Node 24 (the binary scripts/env.sh provides, with its libraries, as in the sidecar image) and the
#       app bundled by esbuild with the JS SDK (@aws-sdk/client-s3 from the repository's devDependencies,
#       never a product dependency); a busybox /bin/sh and cat for the chart's `credential_process = cat
#       ...` (the SDK runs it through /bin/sh); ENTRYPOINT node /app/app.cjs.
#
# The images run as any UID (their files are root-owned, world-readable) on a read-only root filesystem;
# their user is 10001 (the sidecar's is 65532).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

die() {
  echo "app-images: $*" >&2
  exit 1
}

# shellcheck source=scripts/rootfs.sh
. "$REPO_ROOT/scripts/rootfs.sh"

consumer_python() { # consumer_python <key>: a venv interpreter consumers.sh installed ("python", "awscli")
  local py
  py="$(bash "$REPO_ROOT/test/stack/consumers.sh" where | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p")"
  [ -x "$py" ] || die "no $1 venv (run: bash test/stack/consumers.sh install)"
  printf '%s' "$py"
}

base_files() { # base_files <rootfs>: /tmp, the CA bundle, root and app (10001) users
  mkdir -p "$1/tmp" "$1/etc"
  chmod 1777 "$1/tmp"
  cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\napp:x:10001:10001:app:/tmp:/sbin/nologin\n' >"$1/etc/passwd"
  printf 'root:x:0:\napp:x:10001:\n' >"$1/etc/group"
}

add_busybox() { # add_busybox <rootfs>: Debian's busybox-static as /bin/busybox, with sh, cat and a few more
  local bb a
  bb="$(command -v busybox)" || die "no busybox (run: bash test/stack/kube-node.sh install)"
  mkdir -p "$1/bin"
  cp -L "$bb" "$1/bin/busybox"
  for a in sh cat env ls echo; do ln -s busybox "$1/bin/$a"; done
}

# add_python <rootfs> <venv python>: the interpreter and standard library at their own paths (the
# interpreter finds its library from its location), without tests; the venv's site-packages as /opt/venv;
# the libraries of the interpreter and every extension module. Prints the interpreter's path.
add_python() {
  local rootfs="$1" py="$2" exe stdlib site
  exe="$("$py" -c 'import os, sys; print(os.path.realpath(sys._base_executable))')"
  stdlib="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
  site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  mkdir -p "$rootfs$(dirname "$exe")" "$rootfs/opt/venv"
  cp -L "$exe" "$rootfs$exe"
  tar -C / -cf - --exclude='*/test' --exclude='*/tests' --exclude='*/idlelib' --exclude='*/tkinter' \
    --exclude='*/turtledemo' --exclude='*/ensurepip' --exclude='*/site-packages' --exclude='*/dist-packages' \
    "${stdlib#/}" | tar -C "$rootfs" -xf -
  tar -C "$site" -cf - --exclude='pip' --exclude='pip-*' --exclude='setuptools' --exclude='setuptools-*' \
    --exclude='_distutils_hack' --exclude='distutils-precedence.pth' --exclude='pkg_resources' . |
    tar -C "$rootfs/opt/venv" -xf -
  copy_libs "$rootfs" "$exe"
  # shellcheck disable=SC2046
  copy_libs "$rootfs" $(find "$rootfs$stdlib" "$rootfs/opt/venv" -name '*.so*' -type f)
  printf '%s' "$exe"
}

parse_envs() { # parse_envs [--env K=V]...: into the caller's array `envs`
  envs=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --env) envs+=(--env "$2") ;;
      *) die "unknown argument $1" ;;
    esac
    shift 2
  done
}

python_image() {
  local out="$1" name="$2" app="$3" exe rootfs envs=()
  shift 3
  parse_envs "$@"
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' RETURN
  base_files "$rootfs"
  exe="$(add_python "$rootfs" "$(consumer_python python)")"
  mkdir -p "$rootfs/app"
  install -m 0444 "$app" "$rootfs/app/app.py"
  bash "$REPO_ROOT/scripts/oci-archive.sh" --name "$name" --out "$out" --rootfs "$rootfs" \
    --entrypoint "[\"$exe\",\"-B\",\"/app/app.py\"]" --user 10001:10001 --workdir /app \
    --env PYTHONPATH=/opt/venv --env PYTHONUNBUFFERED=1 --env HOME=/tmp \
    --env SSL_CERT_FILE=/etc/ca-certificates.crt "${envs[@]+"${envs[@]}"}"
}

awscli_image() {
  local out="$1" name="$2" exe rootfs
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' RETURN
  base_files "$rootfs"
  add_busybox "$rootfs"
  exe="$(add_python "$rootfs" "$(consumer_python awscli)")"
  mkdir -p "$rootfs/usr/local/bin"
  printf '#!/bin/sh\nexec %s -B -m awscli "$@"\n' "$exe" >"$rootfs/usr/local/bin/aws"
  chmod 0755 "$rootfs/usr/local/bin/aws"
  bash "$REPO_ROOT/scripts/oci-archive.sh" --name "$name" --out "$out" --rootfs "$rootfs" \
    --entrypoint '["/usr/local/bin/aws"]' --user 10001:10001 --workdir /tmp \
    --env PATH=/usr/local/bin:/usr/bin:/bin --env PYTHONPATH=/opt/venv --env PYTHONUNBUFFERED=1 \
    --env HOME=/tmp --env AWS_CA_BUNDLE=/etc/ca-certificates.crt
}

node_image() {
  local out="$1" name="$2" app="$3" rootfs envs=()
  shift 3
  parse_envs "$@"
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' RETURN
  base_files "$rootfs"
  add_busybox "$rootfs"
  add_node "$rootfs" "$(realpath "$(command -v node)")"
  mkdir -p "$rootfs/app"
  # The app and the JS SDK as one CommonJS file (the SDK's packages load parts with require()).
  "$REPO_ROOT/node_modules/.bin/esbuild" "$app" --bundle --platform=node --target=node24 --format=cjs \
    --log-level=warning --outfile="$rootfs/app/app.cjs"
  chmod 0444 "$rootfs/app/app.cjs"
  bash "$REPO_ROOT/scripts/oci-archive.sh" --name "$name" --out "$out" --rootfs "$rootfs" \
    --entrypoint '["/nodejs/bin/node","/app/app.cjs"]' --user 10001:10001 --workdir /app \
    --env PATH=/bin --env HOME=/tmp --env NODE_EXTRA_CA_CERTS=/etc/ca-certificates.crt \
    "${envs[@]+"${envs[@]}"}"
}

usage() {
  echo "usage: $0 python <out.tar> <name> <app.py> [--env KEY=VALUE]... | awscli <out.tar> <name> |" \
    "node <out.tar> <name> <app.ts> [--env KEY=VALUE]..." >&2
  exit 2
}

case "${1:-}" in
  python)
    shift
    [ $# -ge 3 ] || usage
    python_image "$@"
    ;;
  awscli)
    shift
    [ $# -eq 2 ] || usage
    awscli_image "$@"
    ;;
  node)
    shift
    [ $# -ge 3 ] || usage
    node_image "$@"
    ;;
  *) usage ;;
esac
