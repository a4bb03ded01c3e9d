#!/usr/bin/env bash
# Fresh machine to a running demo: Node 24 and the npm dependencies (scripts/env.sh), Debian's Ceph
# packages when running as root (the real RGW STS; without them the demo uses the STS stand-in), then
# the built sidecar vending and rotating credentials on the local stack.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
  bash test/stack/ceph-rgw.sh install || echo "demo: Ceph packages unavailable; using the STS stand-in" >&2
fi
# STS_DEMO_IDENTITY=keycloak: the expanded identity path (a real Keycloak between the pod and flex-auth;
# docs/identity.md). Needs the real Ceph RGW (root) and Java + Maven for Keycloak.
if [ "${STS_DEMO_IDENTITY:-}" = keycloak ]; then
  bash test/stack/keycloak.sh install
fi
# shellcheck source=scripts/env.sh
. scripts/env.sh
if [ "${STS_DEMO_IDENTITY:-}" = keycloak ]; then
  npm run build && node --experimental-strip-types test/stack/demo-keycloak.ts
else
  npm run demo
fi
