# The Kubernetes binaries of the test stack, built by ONE `go build` from k8s.io/kubernetes through the Go
# module proxy: kube-apiserver, kubelet, kube-controller-manager and kube-scheduler share nearly all their
# packages, so building the four costs little more than building one. Sourced by kube-apiserver.sh and
# kube-node.sh after log() and die(); defines functions and KUBE_BUILD_DIR only.
#
#   kube_binaries_built           every binary is there and answers --version
#   kube_build                    build them (idempotent), at nice 19; timings on stderr
#   kube_module_dir               the downloaded k8s.io/kubernetes module (pause.c lives there)
#
# Environment: KUBE_VERSION (default v1.37.2), STS_CACHE_DIR (default ~/.cache/sts-sidecar).

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
KUBE_BUILD_DIR="${STS_CACHE_DIR:-$HOME/.cache/sts-sidecar}/kube-$KUBE_VERSION"
KUBE_COMMANDS="kube-apiserver kubelet kube-controller-manager kube-scheduler"

# The machine's Go lives in /usr/local/go/bin, which a non-login shell (CI) may not have on PATH.
command -v go >/dev/null 2>&1 || [ ! -x /usr/local/go/bin/go ] || PATH="/usr/local/go/bin:$PATH"

kube_binaries_built() {
  local c
  for c in $KUBE_COMMANDS; do
    [ -x "$KUBE_BUILD_DIR/$c" ] && "$KUBE_BUILD_DIR/$c" --version >/dev/null 2>&1 || return 1
  done
}

kube_module_dir() {
  (cd "$KUBE_BUILD_DIR/src" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' k8s.io/kubernetes)
}

# k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...) with ./staging paths, so `go install`
# refuses it. A module of ours requires it and pins each staging module to the published twin
# (v1.37.2 -> v0.37.2), then builds the four commands from it in one go build.
kube_build() {
  if kube_binaries_built; then
    log "kubernetes binaries already built in $KUBE_BUILD_DIR ($("$KUBE_BUILD_DIR/kubelet" --version))"
    return 0
  fi
  command -v go >/dev/null || die "go is not on PATH"
  local t0 src staging mod ver c pkgs="" out
  t0="$(now)"
  ver="v0.${KUBE_VERSION#v1.}"
  src="$KUBE_BUILD_DIR/src"
  out="$KUBE_BUILD_DIR/.out.$$"
  rm -rf "$src" "$out"
  mkdir -p "$src" "$out"
  log "resolving k8s.io/kubernetes@$KUBE_VERSION"
  mod="$(cd "$src" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -s "$mod" ] || die "go mod download k8s.io/kubernetes@$KUBE_VERSION gave no go.mod"
  staging="$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\1#p' "$mod")"
  [ -n "$staging" ] || die "no staging replaces found in $mod"
  {
    printf 'module sts-sidecar.test/kube-build\n\ngo %s\n\n' "$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$mod")"
    printf 'require k8s.io/kubernetes %s\n\n' "$KUBE_VERSION"
    printf 'replace (\n'
    for m in $staging; do printf '\t%s => %s %s\n' "$m" "$m" "$ver"; done
    printf ')\n'
  } >"$src/go.mod"
  for c in $KUBE_COMMANDS; do pkgs="$pkgs k8s.io/kubernetes/cmd/$c"; done
  log "building$(sed 's# k8s.io/kubernetes/cmd/# #g' <<<"$pkgs") @$KUBE_VERSION in one go build ($(wc -w <<<"$staging") staging modules pinned to $ver; nice 19)"
  (
    cd "$src"
    # shellcheck disable=SC2086 # the package list splits on purpose
    GOFLAGS=-mod=mod nice -n 19 go get $(for c in $KUBE_COMMANDS; do printf 'k8s.io/kubernetes/cmd/%s@%s ' "$c" "$KUBE_VERSION"; done) >&2
    # The version stamp kube's own build sets (hack/lib/version.sh).
    # shellcheck disable=SC2086
    CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 19 go build -trimpath -o "$out/" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$KUBE_VERSION") -X k8s.io/component-base/version.gitTreeState=clean" \
      $pkgs >&2
  )
  for c in $KUBE_COMMANDS; do mv "$out/$c" "$KUBE_BUILD_DIR/$c"; done
  rmdir "$out"
  log "built $KUBE_COMMANDS $KUBE_VERSION in $(since "$t0") ($(du -ch $(for c in $KUBE_COMMANDS; do printf '%s/%s ' "$KUBE_BUILD_DIR" "$c"; done) | tail -1 | cut -f1))"
}
