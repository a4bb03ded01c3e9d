#!/usr/bin/env bash
# The real SDK consumers of the delivery tests, installed outside the repository (never product deps):
#   - a Python venv with a current boto3 and aioboto3 (test/consumers/python/requirements.txt, pinned),
#     cached as ~/.cache/sts-sidecar/consumers-venv-<hash of requirements.txt>;
#   - a Python venv with the AWS CLI v1 from PyPI (test/consumers/awscli/requirements.txt, pinned; the `aws`
#     command of examples/once-job.yaml, packed into an image by test/stack/app-images.sh awscli), cached as
#     ~/.cache/sts-sidecar/awscli-venv-<hash of its requirements.txt>;
#   - the AWS SDK for Go v2 consumer (test/consumers/go), built from the Go module proxy with its module and
#     build caches under ~/.cache/sts-sidecar/go, binary ~/.cache/sts-sidecar/go-consumer-<hash of its sources>.
# Debian's boto3 1.26 (/usr/bin/python3, python3-boto3) comes from test/stack/ceph-rgw.sh install.
#
# Usage: consumers.sh install | where      (where: one JSON object with the paths, for the tests)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${STS_SIDECAR_CACHE:-$HOME/.cache/sts-sidecar}"
req="$root/test/consumers/python/requirements.txt"
godir="$root/test/consumers/go"
venv="$cache/consumers-venv-$(sha256sum "$req" | cut -c1-12)"
awscli_req="$root/test/consumers/awscli/requirements.txt"
awscli_venv="$cache/awscli-venv-$(sha256sum "$awscli_req" | cut -c1-12)"
gobin="$cache/go-consumer-$(cat "$godir/go.mod" "$godir/go.sum" "$godir/main.go" | sha256sum | cut -c1-12)/consumer"

install_venv() { # install_venv <venv> <requirements.txt>
  local dir="$1" requirements="$2" py
  [ -f "$dir/.complete" ] && return 0
  py="$(command -v python3.11 || command -v python3)"
  rm -rf "$dir"
  "$py" -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements"
  touch "$dir/.complete"
}

install_go() {
  [ -x "$gobin" ] && return 0
  mkdir -p "$(dirname "$gobin")"
  (cd "$godir" && GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
    nice -n 10 go build -trimpath -o "$gobin.tmp" . && mv "$gobin.tmp" "$gobin")
}

case "${1:-}" in
  install)
    t0=$(date +%s)
    install_venv "$venv" "$req"
    install_venv "$awscli_venv" "$awscli_req"
    install_go
    echo "consumers: venv $venv, awscli $awscli_venv, go $gobin ($(($(date +%s) - t0)) s)"
    ;;
  where)
    printf '{"python":"%s","awscli":"%s","go":"%s"}\n' "$venv/bin/python" "$awscli_venv/bin/python" "$gobin"
    ;;
  *)
    echo "usage: $0 install | where" >&2
    exit 2
    ;;
esac
