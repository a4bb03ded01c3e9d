#!/usr/bin/env bash
# SeaweedFS (`weed mini`: master, volume, filer, S3 with STS) plus a fixed-port OIDC issuer, on loopback only.
#
#   test/stack/seaweedfs.sh install   build `weed` from the Go module proxy into the cache when missing
#   test/stack/seaweedfs.sh up        start the issuer and weed (idempotent: prints the env when already up)
#   test/stack/seaweedfs.sh down      stop exactly the PIDs in the pid files, remove the state dir
#   test/stack/seaweedfs.sh status    print the env and exit 0 when up; exit 1 otherwise
#
# Why an issuer of its own: SeaweedFS reads its OIDC providers from the IAM config once, at start, so the
# issuer URL must be known and stable before weed starts. The issuer (test/stack/seaweedfs-issuer.ts, the
# same code as the tests' issuer) listens on a fixed port with a key kept in the state dir; tests mint
# their tokens with that key (test/stack/seaweedfs.ts). A second provider ("outage") points at
# SEAWEEDFS_OUTAGE_ISSUER_PORT, where nothing listens unless a test starts its own issuer there: the
# issuer-outage case owns it. (SeaweedFS caches a provider's JWKS for an hour and refetches on an unknown
# kid; 4.53 does not read jwksCacheTTLSeconds from this file.)
#
# Environment (every port on 127.0.0.1; weed's gRPC ports are the HTTP ports + 10000):
#   STACK_DIR                     state dir (default <repo>/.stack/seaweedfs)
#   SEAWEEDFS_S3_PORT             S3 + STS + IAM (default 18530)
#   SEAWEEDFS_MASTER_PORT         master (default 18531)
#   SEAWEEDFS_VOLUME_PORT         volume server (default 18532)
#   SEAWEEDFS_FILER_PORT          filer (default 18533)
#   SEAWEEDFS_ISSUER_PORT         the stack's OIDC issuer (default 18534)
#   SEAWEEDFS_OUTAGE_ISSUER_PORT  the outage test's issuer (default 18535)
#   SEAWEEDFS_ADMIN_PORT          weed mini's admin server, started even without its UI (default 18536)
#   WEED_CACHE_DIR                where built binaries live (default ~/.cache/sts-sidecar)
#
# `up` writes ${STACK_DIR}/env (KEY=VALUE) and ${STACK_DIR}/env.json; timings go to stderr.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO_ROOT/test/stack"
MODULE_DIR="$HERE/seaweedfs"
STACK_DIR="${STACK_DIR:-$REPO_ROOT/.stack/seaweedfs}"
S3_PORT="${SEAWEEDFS_S3_PORT:-18530}"
MASTER_PORT="${SEAWEEDFS_MASTER_PORT:-18531}"
VOLUME_PORT="${SEAWEEDFS_VOLUME_PORT:-18532}"
FILER_PORT="${SEAWEEDFS_FILER_PORT:-18533}"
ISSUER_PORT="${SEAWEEDFS_ISSUER_PORT:-18534}"
OUTAGE_ISSUER_PORT="${SEAWEEDFS_OUTAGE_ISSUER_PORT:-18535}"
ADMIN_PORT="${SEAWEEDFS_ADMIN_PORT:-18536}"
REGION="us-east-1"
AUDIENCE="sts.local"

# The version is the one test/stack/seaweedfs/go.mod requires (go.sum pins its hash).
WEED_VERSION="$(awk '$1 == "github.com/seaweedfs/seaweedfs" { print $2; exit }' "$MODULE_DIR/go.mod")"
[ -n "$WEED_VERSION" ] || WEED_VERSION="$(sed -n 's/^require github.com\/seaweedfs\/seaweedfs \([^ ]*\).*/\1/p' "$MODULE_DIR/go.mod")"
CACHE_ROOT="${WEED_CACHE_DIR:-$HOME/.cache/sts-sidecar}"
WEED_BIN="$CACHE_ROOT/weed-$WEED_VERSION/weed"

RUN_DIR="$STACK_DIR/run"
LOG_DIR="$STACK_DIR/log"
DATA_DIR="$STACK_DIR/data"
WEED_PID="$RUN_DIR/weed.pid"
ISSUER_PID="$RUN_DIR/issuer.pid"
KEY_FILE="$STACK_DIR/issuer-key.json"
IAM_FILE="$STACK_DIR/iam.json"
S3_CONF="$STACK_DIR/s3.json"
ENV_FILE="$STACK_DIR/env"
ENV_JSON="$STACK_DIR/env.json"

log() { printf 'seaweedfs: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# A PID counts as alive when it exists and is not a zombie (PID 1 here may not reap).
pid_alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/stat" ] || return 1
  state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || true)"
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
# pidfile_alive <file> <what>: the PID in the file is alive and is ours: its comm is <what> or its command
# line contains <what> (Node names its main thread MainThread). A recycled PID of an unrelated process is
# never mistaken for, or stopped as, one of ours.
pidfile_alive() {
  local pid
  [ -s "$1" ] || return 1
  pid="$(tr -d '[:space:]' <"$1")"
  pid_alive "$pid" || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

rand() { # rand <len> <charset>
  local out=""
  while [ "${#out}" -lt "$1" ]; do
    out+="$(head -c 256 /dev/urandom | LC_ALL=C tr -dc "$2" || true)"
  done
  printf '%s' "${out:0:$1}"
}

# HTTP probe without curl: prints the status code of GET <path> on 127.0.0.1:<port>.
http_status() { # http_status <port> <path>
  timeout 2 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$2" >&3
    IFS= read -r line <&3 && [[ "$line" == HTTP/* ]] && printf "%s" "$line" | cut -d" " -f2
    cat <&3 >/dev/null
  ' _ "$1" "$2" 2>/dev/null
}
answers() { [ -n "$(http_status "$1" "$2")" ]; }
# The S3 port answers and the STS is initialised (an empty AssumeRoleWithWebIdentity is a 400, not 503).
sts_ready() {
  local code
  code="$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    body="Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
    printf "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s" "${#body}" "$body" >&3
    IFS= read -r line <&3 && printf "%s" "$line" | cut -d" " -f2
    cat <&3 >/dev/null
  ' _ "$S3_PORT" 2>/dev/null || true)"
  [ "$code" = 400 ]
}

wait_until() { # wait_until <seconds> <what> <pidfile> <comm> <cmd...>: fails fast when the process died
  local limit="$1" what="$2" pidfile="$3" comm="$4"
  shift 4
  local start
  start="$(now)"
  while ! "$@" >/dev/null 2>&1; do
    # Only liveness here: right after the fork the process may not have exec'd its binary yet.
    pid_alive "$(tr -d '[:space:]' <"$pidfile")" || die "$what ($comm) exited during startup (logs: $LOG_DIR)"
    if awk -v a="$start" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      die "$what not ready after ${limit}s (logs: $LOG_DIR)"
    fi
    sleep 0.2
  done
}

node_supports_ts() { [ -n "$1" ] && [ -x "$1" ] && "$1" --experimental-strip-types -e 0 >/dev/null 2>&1; }

all_up() {
  pidfile_alive "$WEED_PID" weed && pidfile_alive "$ISSUER_PID" seaweedfs-issuer.ts && [ -s "$ENV_JSON" ] && sts_ready &&
    answers "$ISSUER_PORT" /issuer/.well-known/openid-configuration
}

# Builds weed with the ordinary Go client from a module of ours that requires seaweedfs (its own go.mod has
# replace lines, so `go install module@version` is refused; ours repeats the one replace it needs).
cmd_install() {
  if [ -x "$WEED_BIN" ]; then
    log "weed $WEED_VERSION already built ($WEED_BIN)"
    return 0
  fi
  command -v go >/dev/null || die "go is not on PATH (needed to build weed $WEED_VERSION)"
  mkdir -p "$(dirname "$WEED_BIN")"
  local t0 tmp
  t0="$(now)"
  tmp="$WEED_BIN.tmp.$$"
  log "building weed $WEED_VERSION (CGO_ENABLED=0, this takes minutes on 2 cores)"
  if ! (cd "$MODULE_DIR" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" nice -n 10 go build -trimpath -ldflags='-s -w' \
    -o "$tmp" github.com/seaweedfs/seaweedfs/weed) >/tmp/seaweedfs-build.log 2>&1; then
    rm -f "$tmp"
    tail -20 /tmp/seaweedfs-build.log >&2
    die "go build failed, see /tmp/seaweedfs-build.log"
  fi
  mv -f "$tmp" "$WEED_BIN"
  log "weed built in $(since "$t0") ($(du -h "$WEED_BIN" | cut -f1), $WEED_BIN)"
}

stop_pidfile() { # stop_pidfile <file> <comm>: TERM the PID in the file, wait, then KILL
  local file="$1" name="$2" pid i
  pidfile_alive "$file" "$name" || return 0
  pid="$(tr -d '[:space:]' <"$file")"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do
    pid_alive "$pid" || {
      log "$name (pid $pid) stopped"
      return 0
    }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 20); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  log "$name (pid $pid) killed"
}

cmd_down() {
  [ -d "$STACK_DIR" ] || {
    log "nothing to stop ($STACK_DIR absent)"
    return 0
  }
  local t0
  t0="$(now)"
  stop_pidfile "$WEED_PID" weed
  stop_pidfile "$ISSUER_PID" seaweedfs-issuer.ts
  # Refuse to rm -rf anything that is not obviously our state dir.
  [ -d "$RUN_DIR" ] || [ -f "$IAM_FILE" ] || [ -z "$(ls -A "$STACK_DIR")" ] ||
    die "$STACK_DIR does not look like a seaweedfs state dir; not removing it"
  rm -rf "$STACK_DIR"
  log "down in $(since "$t0")"
}

print_env() { cat "$ENV_FILE"; }

cmd_status() {
  if [ -d "$STACK_DIR" ] && all_up; then
    print_env
    return 0
  fi
  log "not up ($STACK_DIR)"
  return 1
}

# The IAM config the project owns: the stack's issuer (and the outage slot) as OIDC providers, one coarse
# role (s3:* on every bucket: the sidecar's session policy is what narrows it), maxSessionLength 1h so that
# a longer DurationSeconds is refused (the sidecar's step-down path), a 1h role maximum.
write_iam() {
  local signing_key="$1" issuer_url="$2" outage_url="$3"
  cat >"$IAM_FILE" <<EOF
{
  "sts": {
    "tokenDuration": "1h",
    "maxSessionLength": "1h",
    "issuer": "sts-sidecar-test-seaweedfs",
    "signingKey": "$signing_key"
  },
  "policy": { "defaultEffect": "Deny" },
  "providers": [
    {
      "name": "sidecar-issuer",
      "type": "oidc",
      "enabled": true,
      "config": { "issuer": "$issuer_url", "clientIds": ["$AUDIENCE"] }
    },
    {
      "name": "outage-issuer",
      "type": "oidc",
      "enabled": true,
      "config": { "issuer": "$outage_url", "clientIds": ["$AUDIENCE"] }
    }
  ],
  "roles": [
    {
      "roleName": "sidecar",
      "roleArn": "arn:aws:iam::role/sidecar",
      "maxSessionDuration": 3600,
      "trustPolicy": {
        "Version": "2012-10-17",
        "Statement": [
          {
            "Effect": "Allow",
            "Principal": { "Federated": ["sidecar-issuer", "outage-issuer"] },
            "Action": ["sts:AssumeRoleWithWebIdentity"]
          }
        ]
      },
      "attachedPolicies": ["s3-coarse"]
    }
  ],
  "policies": [
    {
      "name": "s3-coarse",
      "document": {
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*", "arn:aws:s3:::*/*"] }]
      }
    }
  ]
}
EOF
}

write_env() {
  local ak="$1" sk="$2" issuer_url="$3" outage_url="$4"
  cat >"$ENV_FILE" <<EOF
SEAWEEDFS_ENDPOINT=http://127.0.0.1:$S3_PORT
SEAWEEDFS_S3_PORT=$S3_PORT
SEAWEEDFS_REGION=$REGION
SEAWEEDFS_ROLE_ARN=arn:aws:iam::role/sidecar
SEAWEEDFS_ISSUER_URL=$issuer_url
SEAWEEDFS_OUTAGE_ISSUER_URL=$outage_url
SEAWEEDFS_OUTAGE_ISSUER_PORT=$OUTAGE_ISSUER_PORT
SEAWEEDFS_AUDIENCE=$AUDIENCE
SEAWEEDFS_ISSUER_KEY_FILE=$KEY_FILE
SEAWEEDFS_VERSION=$WEED_VERSION
AWS_ACCESS_KEY_ID=$ak
EOF
  cat >"$ENV_JSON" <<EOF
{
  "endpoint": "http://127.0.0.1:$S3_PORT",
  "region": "$REGION",
  "roleArn": "arn:aws:iam::role/sidecar",
  "issuerUrl": "$issuer_url",
  "outageIssuerUrl": "$outage_url",
  "outageIssuerPort": $OUTAGE_ISSUER_PORT,
  "audience": "$AUDIENCE",
  "issuerKeyFile": "$KEY_FILE",
  "version": "$WEED_VERSION",
  "accessKeyId": "$ak",
  "secretAccessKey": "$sk",
  "stackDir": "$STACK_DIR"
}
EOF
  chmod 600 "$ENV_JSON" "$ENV_FILE"
}

cmd_up() {
  if [ -d "$STACK_DIR" ] && all_up; then
    log "already up ($STACK_DIR)"
    print_env
    return 0
  fi
  [ -x "$WEED_BIN" ] || die "weed $WEED_VERSION is not built; run test/stack/seaweedfs.sh install"
  # The issuer is TypeScript run by Node's type stripping: Node >= 22.22 (scripts/env.sh provides it).
  local node_bin="$REPO_ROOT/scripts/node24/node_modules/node/bin/node"
  if ! node_supports_ts "$node_bin"; then
    node_bin="$(command -v node || true)"
    node_supports_ts "$node_bin" || die "no Node >= 22.22 for the issuer (. scripts/env.sh)"
  fi
  local t_all t0
  t_all="$(now)"
  # Leftovers of a half-started stack: stop what we own, start from a clean dir.
  stop_pidfile "$WEED_PID" weed
  stop_pidfile "$ISSUER_PID" seaweedfs-issuer.ts
  rm -rf "$STACK_DIR"
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$DATA_DIR"
  chmod 700 "$STACK_DIR"

  local issuer_url="http://127.0.0.1:$ISSUER_PORT/issuer"
  local outage_url="http://127.0.0.1:$OUTAGE_ISSUER_PORT/issuer"
  t0="$(now)"
  ISSUER_PORT="$ISSUER_PORT" ISSUER_KEY_FILE="$KEY_FILE" \
    setsid "$node_bin" --experimental-strip-types --no-warnings "$HERE/seaweedfs-issuer.ts" \
    </dev/null >"$LOG_DIR/issuer.log" 2>&1 9>&- &
  echo $! >"$ISSUER_PID"
  wait_until 30 issuer "$ISSUER_PID" seaweedfs-issuer.ts answers "$ISSUER_PORT" /issuer/.well-known/openid-configuration
  [ -s "$KEY_FILE" ] || die "issuer wrote no key file ($KEY_FILE)"
  log "issuer in $(since "$t0") ($issuer_url)"

  local ak sk signing_key
  ak="$(rand 20 'A-Z0-9')"
  sk="$(rand 40 'A-Za-z0-9')"
  signing_key="$(head -c 32 /dev/urandom | base64 -w0)"
  write_iam "$signing_key" "$issuer_url" "$outage_url"
  cat >"$S3_CONF" <<EOF
{ "identities": [ { "name": "admin", "credentials": [ { "accessKey": "$ak", "secretKey": "$sk" } ],
    "actions": ["Admin", "Read", "Write", "List", "Tagging"] } ] }
EOF
  chmod 600 "$IAM_FILE" "$S3_CONF"

  t0="$(now)"
  (
    cd "$STACK_DIR"
    exec setsid "$WEED_BIN" mini -dir="$DATA_DIR" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -master.port="$MASTER_PORT" -master.port.grpc=$((MASTER_PORT + 10000)) -master.telemetry=false \
      -volume.port="$VOLUME_PORT" -volume.port.grpc=$((VOLUME_PORT + 10000)) \
      -filer.port="$FILER_PORT" -filer.port.grpc=$((FILER_PORT + 10000)) \
      -filer.localSocket="$RUN_DIR/filer.sock" \
      -s3.port="$S3_PORT" -s3.port.grpc=$((S3_PORT + 10000)) -s3.port.iceberg=0 -s3.port.lance=0 \
      -s3.localSocket="$RUN_DIR/s3.sock" \
      -s3.config="$S3_CONF" -s3.iam.config="$IAM_FILE" \
      -admin.port="$ADMIN_PORT" -admin.port.grpc=$((ADMIN_PORT + 10000)) -admin.port.legacy=0 \
      -webdav=false -admin.ui=false </dev/null >"$LOG_DIR/weed.log" 2>&1 9>&-
  ) &
  echo $! >"$WEED_PID"
  wait_until 120 weed "$WEED_PID" weed sts_ready
  log "weed in $(since "$t0") (S3/STS on 127.0.0.1:$S3_PORT)"

  write_env "$ak" "$sk" "$issuer_url" "$outage_url"
  log "up in $(since "$t_all") ($STACK_DIR)"
  print_env
}

# up/down of one STACK_DIR are serialized (parallel test workers may all call `up`). The lock file sits
# next to STACK_DIR because `down` removes STACK_DIR. Daemons are started with fd 9 closed.
with_lock() {
  mkdir -p "$(dirname "$STACK_DIR")"
  exec 9>"${STACK_DIR%/}.lock"
  flock -w 180 9 || die "timed out waiting for ${STACK_DIR%/}.lock"
  "$@"
}

case "${1:-}" in
  install) cmd_install ;;
  up) with_lock cmd_up ;;
  down) with_lock cmd_down ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 install|up|down|status" >&2
    exit 2
    ;;
esac
