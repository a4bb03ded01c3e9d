#!/usr/bin/env bash
# helm, built from the Go module proxy with the ordinary Go client (no download from anywhere else).
#
#   test/stack/helm.sh install   build helm into the cache unless it is there (idempotent); prints its path
#   test/stack/helm.sh path      print the binary's path and exit 0 when built; exit 1 otherwise
#
# Environment:
#   HELM_VERSION   helm.sh/helm/v3 module version (default v3.22.0)
#   STS_CACHE_DIR  cache root outside the repository (default ~/.cache/sts-sidecar)
#
# The build runs at `nice -n 19` (the machine's cores are shared); timings go to stderr.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE_ROOT="${STS_CACHE_DIR:-$HOME/.cache/sts-sidecar}"
DIR="$CACHE_ROOT/helm-$HELM_VERSION"
BIN="$DIR/helm"

log() { printf 'helm: %s\n' "$*" >&2; }
# The machine's Go lives in /usr/local/go/bin, which a non-login shell (CI) may not have on PATH.
command -v go >/dev/null 2>&1 || [ ! -x /usr/local/go/bin/go ] || PATH="/usr/local/go/bin:$PATH"
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }

built() { [ -x "$BIN" ] && "$BIN" version --short >/dev/null 2>&1; }

install() {
  if built; then
    printf '%s\n' "$BIN"
    return 0
  fi
  command -v go >/dev/null || { log "error: go is not on PATH"; exit 1; }
  mkdir -p "$DIR"
  local t0 tmp
  t0="$(now)"
  tmp="$(mktemp -d "$DIR/.build.XXXXXX")"
  log "building helm.sh/helm/v3/cmd/helm@$HELM_VERSION (go install, nice 19)"
  # -ldflags: helm's own release build stamps its version the same way.
  GOBIN="$tmp" GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0 nice -n 19 go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  mv "$tmp/helm" "$BIN"
  rmdir "$tmp"
  log "built $("$BIN" version --short) in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s, $(du -h "$BIN" | cut -f1)"
  printf '%s\n' "$BIN"
}

case "${1:-}" in
  install) install ;;
  path) built && printf '%s\n' "$BIN" ;;
  *)
    echo "usage: $0 install|path" >&2
    exit 2
    ;;
esac
