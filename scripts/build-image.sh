#!/usr/bin/env bash
# Builds the sidecar image WITHOUT Docker, as an OCI image archive, from the same pieces as the Dockerfile
# (which stays the reference build; test/k8s/image.test.ts fails when the two disagree):
#   /nodejs/bin/node          Node 24: the binary of the npm package node@24 (scripts/env.sh installs it),
#                             with the shared libraries `ldd` names and the loader, at their paths
#   /etc/ssl/certs/ca-certificates.crt   the machine's CA bundle (Debian's ca-certificates)
#   /etc/passwd, /etc/group   root and nonroot (65532), as in distroless :nonroot; /tmp (1777)
#   /app/sts-sidecar.mjs, /app/sts-sidecar.mjs.LEGAL.txt   the bundle (npm run build), root-owned, 0444
#   /app/sts-sidecar.cjs, /app/sts-sidecar.code.cjs        the fast start: the loader and the CommonJS bundle
#   /app/sts-sidecar.code.cjs.cache   its V8 code cache, made here by that same Node binary with the
#                             ENTRYPOINT's flags (scripts/code-cache.mjs), as the Dockerfile's cache stage does
# and the Dockerfile's ENTRYPOINT, CMD, USER 65532:65532, WORKDIR /app, ENV, EXPOSE and labels. Nothing in
# it is writable by the image's user: it runs with readOnlyRootFilesystem: true.
#
#   bash scripts/build-image.sh [--out dist/sts-sidecar-image.tar] [--name ghcr.io/example-org/sts-sidecar:0.1.0]
#
# Then push it with any OCI tool, e.g. `skopeo copy oci-archive:dist/sts-sidecar-image.tar
# docker://registry.example/sts-sidecar:0.1.0`, or load it into containerd: `ctr -n k8s.io images import`.
# NODE_BIN overrides the Node binary (it must be Node 24 for linux/amd64). Prints the manifest digest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/env.sh
. scripts/env.sh
# shellcheck source=scripts/rootfs.sh
. scripts/rootfs.sh
VERSION="$(node -p 'require("./package.json").version')"
out="dist/sts-sidecar-image.tar"
name="ghcr.io/example-org/sts-sidecar:$VERSION"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2" ;;
    --name) name="$2" ;;
    *)
      echo "build-image: unknown argument $1" >&2
      exit 2
      ;;
  esac
  shift 2
done
NODE_BIN="$(realpath "${NODE_BIN:-$(command -v node)}")"
case "$("$NODE_BIN" --version)" in
  v24.*) ;;
  *) echo "build-image: $NODE_BIN is $("$NODE_BIN" --version), not Node 24" >&2 && exit 1 ;;
esac
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[ -s "$CA_BUNDLE" ] || {
  echo "build-image: no $CA_BUNDLE (apt-get install ca-certificates)" >&2
  exit 1
}

t0="$(date +%s.%N)"
for f in dist/sts-sidecar.mjs dist/sts-sidecar.cjs dist/sts-sidecar.code.cjs; do [ -s "$f" ] || npm run build >&2; done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs/app" "$rootfs/etc/ssl/certs" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
# The binary, and the libraries the dynamic loader resolves for it and the loader itself, at the same paths.
add_node "$rootfs" "$NODE_BIN"
install -m 0444 "$CA_BUNDLE" "$rootfs$CA_BUNDLE"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
chmod 0444 "$rootfs/etc/passwd" "$rootfs/etc/group"
[ -s dist/sts-sidecar.mjs.LEGAL.txt ] || touch dist/sts-sidecar.mjs.LEGAL.txt
install -m 0444 dist/sts-sidecar.mjs "$rootfs/app/sts-sidecar.mjs"
install -m 0444 dist/sts-sidecar.mjs.LEGAL.txt "$rootfs/app/sts-sidecar.mjs.LEGAL.txt"
install -m 0444 dist/sts-sidecar.cjs "$rootfs/app/sts-sidecar.cjs"
install -m 0444 dist/sts-sidecar.code.cjs "$rootfs/app/sts-sidecar.code.cjs"
# V8 accepts the cache only from the Node binary (and flag hash) that runs it: this one, the ENTRYPOINT's flags.
"$NODE_BIN" --max-semi-space-size=1 scripts/code-cache.mjs "$rootfs/app/sts-sidecar.code.cjs" >&2
chmod 0444 "$rootfs/app/sts-sidecar.code.cjs.cache"
# The Dockerfile's smoke tests, in the final file tree (chroot: only what the image holds is there).
if [ "$(id -u)" -eq 0 ]; then
  chroot --userspec=65532:65532 "$rootfs" /nodejs/bin/node /app/sts-sidecar.mjs --version >&2
  chroot --userspec=65532:65532 "$rootfs" /nodejs/bin/node --max-semi-space-size=1 /app/sts-sidecar.cjs --version >&2
fi

# Kept in step with the Dockerfile's runtime stage by test/k8s/image.test.ts.
digest="$(bash scripts/oci-archive.sh --name "$name" --out "$out" --rootfs "$rootfs" \
  --entrypoint '["/nodejs/bin/node","--max-semi-space-size=1","/app/sts-sidecar.cjs"]' \
  --cmd '["run"]' --user 65532:65532 --workdir /app --expose 8081/tcp \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --env MALLOC_ARENA_MAX=2 \
  --label org.opencontainers.image.title=sts-sidecar --label org.opencontainers.image.licenses=Apache-2.0 \
  --label "org.opencontainers.image.version=$VERSION" \
  --label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  --label org.opencontainers.image.source=https://github.com/example-org/sts-sidecar)"
echo "build-image: $name $digest -> $out ($(du -h "$out" | cut -f1), $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'))" >&2
echo "$digest"
