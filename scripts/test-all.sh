#!/usr/bin/env bash
# The whole suite on a fresh machine, none skipped: installs every real server the tests use (each cached
# under ~/.cache/sts-sidecar or installed from Debian, so a second run skips the installs), makes each of
# them mandatory (a missing server fails its tests instead of skipping them), then runs `npm test`.
#
#   bash scripts/test-all.sh            # as root on Debian (apt for Ceph, etcd; Go/Maven/PyPI/npm builds)
#
# Each install step prints `setup: <step> took N s`. `.ci/run` calls this script, then the stress proofs.
# The quick inner loop is `. scripts/env.sh && npm test`: the same suite, where each server that is not
# installed skips its tests with a one-line reason.
set -euo pipefail
cd "$(dirname "$0")/.."

step() {
  local name=$1 t0
  shift
  t0=$(date +%s)
  "$@"
  echo "setup: $name took $(($(date +%s) - t0)) s" >&2
}

t_setup=$(date +%s)
# Debian's Ceph (mon, osd, radosgw: the real STS), boto3 and the aws CLI for the consumer tests.
step ceph-rgw bash test/stack/ceph-rgw.sh install
# The real SDK consumers (a venv with boto3 and aioboto3 from PyPI, a Go SDK v2 program from the Go proxy).
step consumers bash test/stack/consumers.sh install
# Keycloak (the expanded-mode IAM Profile issuer): org.keycloak:keycloak-quarkus-dist from Maven Central.
step keycloak bash test/stack/keycloak.sh install
# SeaweedFS's `weed`, built from the Go module proxy.
step seaweedfs bash test/stack/seaweedfs.sh install
# MinIO's server, `go install`ed from the Go module proxy (cached like weed).
step minio bash test/stack/minio.sh install
# podman (Debian): its Docker-API service runs the testcontainers MinIO test (test/stack/podman.sh).
step podman bash test/stack/podman.sh install
# helm, built from the Go module proxy.
step helm bash test/stack/helm.sh install
# etcd (Debian etcd-server), and kube-apiserver, kubelet, kube-controller-manager and kube-scheduler built
# from k8s.io/kubernetes through the Go module proxy in one go build (test/stack/kube-build.sh).
step kube-apiserver bash test/stack/kube-apiserver.sh install
# The real node: containerd, runc, busybox-static (Debian) and the pause binary (gcc -static).
step kube-node bash test/stack/kube-node.sh install
# Node >= 22.22 (Node 24 from the npm package node@24 when the machine's is older) and npm ci.
# shellcheck source=scripts/env.sh
step node-and-deps . scripts/env.sh
echo "setup: all installs took $(($(date +%s) - t_setup)) s (node $(node --version), npm $(npm --version))" >&2

# Every server above is mandatory from here on: its tests fail, never skip, when it is missing.
export STSTEST_REQUIRE_RGW=1 STSTEST_REQUIRE_CONSUMERS=1 STSTEST_REQUIRE_KEYCLOAK=1
export STSTEST_REQUIRE_SEAWEEDFS=1 STSTEST_REQUIRE_HELM=1 STSTEST_REQUIRE_KUBE=1
export STSTEST_REQUIRE_MINIO=1 STSTEST_REQUIRE_DOCKER=1 STSTEST_REQUIRE_NODE=1
# The secret scan must have seen real output.
export STSTEST_REQUIRE_SCAN=1

t_test=$(date +%s)
npm test
echo "test-all: npm test took $(($(date +%s) - t_test)) s" >&2
