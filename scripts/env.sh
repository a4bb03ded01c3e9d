# Source this file (". scripts/env.sh"): it makes sure a Node >= 22.22 is first on PATH (installing
# Node 24 from the npm package node@24 into scripts/node24/ when the machine's Node is older) and that
# the project's dependencies are installed. Safe to source repeatedly.
_sts_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_sts_node_ok() {
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=22)?0:1)' 2>/dev/null
}
if ! _sts_node_ok; then
  if [ ! -x "$_sts_root/scripts/node24/node_modules/node/bin/node" ]; then
    echo "sts-sidecar: installing Node 24 (npm package node@24) into scripts/node24/" >&2
    (cd "$_sts_root/scripts/node24" && npm install --no-audit --no-fund --loglevel=error >&2) || return 1 2>/dev/null || exit 1
  fi
  export PATH="$_sts_root/scripts/node24/node_modules/node/bin:$PATH"
fi
if [ ! -d "$_sts_root/node_modules" ] || [ "$_sts_root/package-lock.json" -nt "$_sts_root/node_modules/.package-lock.json" ]; then
  echo "sts-sidecar: installing dependencies (npm ci)" >&2
  (cd "$_sts_root" && npm ci --no-audit --no-fund --loglevel=error >&2) || return 1 2>/dev/null || exit 1
fi
unset -f _sts_node_ok
unset _sts_root
