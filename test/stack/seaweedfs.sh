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
# Environment (every port on 127.0.0.1; weed's gRPC ports are the HTTP ports + SEAWEEDFS_GRPC_OFFSET):
#   STACK_DIR                     state dir (default <repo>/.stack/seaweedfs)
#   SEAWEEDFS_S3_PORT             S3 + STS + IAM (default 18530)
#   SEAWEEDFS_MASTER_PORT         master (default 18531)
#   SEAWEEDFS_VOLUME_PORT         volume server (default 18532)
#   SEAWEEDFS_FILER_PORT          filer (default 18533)
#   SEAWEEDFS_ISSUER_PORT         the stack's OIDC issuer (default 18534)
#   SEAWEEDFS_OUTAGE_ISSUER_PORT  the outage test's issuer (default 18535)
#   SEAWEEDFS_ADMIN_PORT          weed mini's admin server, started even without its UI (default 18536)
#   SEAWEEDFS_GRPC_OFFSET         gRPC port = HTTP port + this (default 10000); keep the gRPC ports under the
#                                 ephemeral floor (32768): weed moves a gRPC port that an outgoing connection
#                                 holds to another one, which `up` then refuses (a port it did not choose)
#   WEED_CACHE_DIR                where built binaries live (default ~/.cache/sts-sidecar; install builds
#                                 under <dir>/weed-<version>.lock and logs to weed-<version>/build.log)
#   SEAWEEDFS_UP_PROBE_RETRY_S    how long `up` re-probes a stack whose processes are alive (default 30);
#                                 it restarts only a stack with a dead process, never a slow one
#
# `up` refuses ports that something else listens on, and once ready checks that our PIDs are the listeners.
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
GRPC="${SEAWEEDFS_GRPC_OFFSET:-10000}"
# How long `up` keeps probing a stack whose processes are alive before giving up (never restarting it).
UP_PROBE_RETRY_S="${SEAWEEDFS_UP_PROBE_RETRY_S:-30}"
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

STACK_NAME=seaweedfs # log and die prefix their lines with it
# shellcheck source=test/stack/lib.sh
. "$REPO_ROOT/test/stack/lib.sh"
# Our PIDs are recognised by comm or command line (Node names its main thread MainThread).
PIDFILE_MATCH_CMDLINE=1

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

# Once ready: each port's listener is the PID we started, not someone else's.
require_owned_ports() { # require_owned_ports <what> <pidfile> <port...>
  local what="$1" pid port
  pid="$(tr -d '[:space:]' <"$2")"
  shift 2
  for port in "$@"; do
    listeners "$port" | grep -q "pid=$pid," ||
      die "$what (pid $pid) is not the listener on port $port: $(listeners "$port" | head -1)"
  done
}

procs_alive() { pidfile_alive "$WEED_PID" weed && issuer_alive; }
probes_ok() { [ -s "$ENV_JSON" ] && sts_ready && issuer_ready; }
all_up() { procs_alive && probes_ok; }

# Builds weed with the ordinary Go client from a module of ours that requires seaweedfs (its own go.mod has
# replace lines, so `go install module@version` is refused; ours repeats the one replace it needs).
cmd_install() {
  mkdir -p "$(dirname "$WEED_BIN")"
  # Parallel installs (two worktrees, CI retries) build once: the second waits and finds the binary.
  exec 8>"$(dirname "$WEED_BIN").lock"
  flock -w 1800 8 || die "timed out waiting for $(dirname "$WEED_BIN").lock"
  if [ -x "$WEED_BIN" ]; then
    log "weed $WEED_VERSION already built ($WEED_BIN)"
    return 0
  fi
  command -v go >/dev/null || die "go is not on PATH (needed to build weed $WEED_VERSION)"
  local t0 tmp build_log
  t0="$(now)"
  tmp="$WEED_BIN.tmp.$$"
  build_log="$(dirname "$WEED_BIN")/build.log"
  log "building weed $WEED_VERSION (CGO_ENABLED=0, this takes minutes on 2 cores)"
  if ! (cd "$MODULE_DIR" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" nice -n 10 go build -trimpath -ldflags='-s -w' \
    -o "$tmp" github.com/seaweedfs/seaweedfs/weed) >"$build_log" 2>&1 8>&-; then
    rm -f "$tmp"
    tail -20 "$build_log" >&2
    die "go build failed, see $build_log"
  fi
  mv -f "$tmp" "$WEED_BIN"
  log "weed built in $(since "$t0") ($(du -h "$WEED_BIN" | cut -f1), $WEED_BIN)"
}

cmd_down() {
  [ -d "$STACK_DIR" ] || {
    log "nothing to stop ($STACK_DIR absent)"
    return 0
  }
  local t0
  t0="$(now)"
  stop_pidfile "$WEED_PID" weed
  stop_issuer
  # Refuse to rm -rf anything that is not obviously our state dir.
  [ -d "$RUN_DIR" ] || [ -f "$IAM_FILE" ] || [ -z "$(ls -A "$STACK_DIR")" ] ||
    die "$STACK_DIR does not look like a seaweedfs state dir; not removing it"
  rm -rf "$STACK_DIR"
  log "down in $(since "$t0")"
}

print_env() { cat "$ENV_FILE"; }

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

# Every port weed and the issuer may listen on (the outage issuer is the tests' own, not started here).
chosen_ports() {
  local p out="$ISSUER_PORT"
  for p in "$S3_PORT" "$MASTER_PORT" "$VOLUME_PORT" "$FILER_PORT" "$ADMIN_PORT"; do out="$out,$p,$((p + GRPC))"; done
  printf '%s' "$out"
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
STACK_PIDS=$(cat "$WEED_PID"),$(cat "$ISSUER_PID")
STACK_LISTEN_PORTS=$(chosen_ports)
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
  if [ -d "$STACK_DIR" ] && procs_alive && [ -s "$ENV_JSON" ]; then
    # Both processes run: a slow probe (a loaded machine, a long GC) is no reason to tear down a stack
    # other test files are using. Only a dead process is restarted.
    local t_probe
    t_probe="$(now)"
    while ! probes_ok; do
      procs_alive || break
      if awk -v a="$t_probe" -v b="$(now)" -v l="$UP_PROBE_RETRY_S" 'BEGIN { exit !(b - a > l) }'; then
        die "weed and the issuer run but do not answer after ${UP_PROBE_RETRY_S}s; not restarting them (logs: $LOG_DIR; seaweedfs.sh down to reset)"
      fi
      sleep 1
    done
    if procs_alive; then
      log "already up ($STACK_DIR)"
      print_env
      return 0
    fi
    log "a stack process died; restarting"
  fi
  [ -x "$WEED_BIN" ] || die "weed $WEED_VERSION is not built; run test/stack/seaweedfs.sh install"
  local t_all t0
  t_all="$(now)"
  # Leftovers of a half-started stack: stop what we own, start from a clean dir.
  stop_pidfile "$WEED_PID" weed
  stop_issuer
  rm -rf "$STACK_DIR"
  require_free_ports issuer "$ISSUER_PORT"
  require_free_ports weed "$S3_PORT" "$MASTER_PORT" "$VOLUME_PORT" "$FILER_PORT" "$ADMIN_PORT" \
    $((S3_PORT + GRPC)) $((MASTER_PORT + GRPC)) $((VOLUME_PORT + GRPC)) $((FILER_PORT + GRPC)) \
    $((ADMIN_PORT + GRPC))
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$DATA_DIR"
  chmod 700 "$STACK_DIR"

  local issuer_url="http://127.0.0.1:$ISSUER_PORT/issuer"
  local outage_url="http://127.0.0.1:$OUTAGE_ISSUER_PORT/issuer"
  start_issuer

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
      -master.port="$MASTER_PORT" -master.port.grpc=$((MASTER_PORT + GRPC)) -master.telemetry=false \
      -volume.port="$VOLUME_PORT" -volume.port.grpc=$((VOLUME_PORT + GRPC)) \
      -filer.port="$FILER_PORT" -filer.port.grpc=$((FILER_PORT + GRPC)) \
      -filer.localSocket="$RUN_DIR/filer.sock" \
      -s3.port="$S3_PORT" -s3.port.grpc=$((S3_PORT + GRPC)) -s3.port.iceberg=0 -s3.port.lance=0 \
      -s3.localSocket="$RUN_DIR/s3.sock" \
      -s3.config="$S3_CONF" -s3.iam.config="$IAM_FILE" \
      -admin.port="$ADMIN_PORT" -admin.port.grpc=$((ADMIN_PORT + GRPC)) -admin.port.legacy=0 \
      -webdav=false -admin.ui=false </dev/null >"$LOG_DIR/weed.log" 2>&1 9>&-
  ) &
  echo $! >"$WEED_PID"
  wait_until 120 weed "$WEED_PID" sts_ready
  require_owned_ports weed "$WEED_PID" "$S3_PORT" "$MASTER_PORT" "$FILER_PORT"
  require_chosen_ports seaweedfs "$(chosen_ports)" "$(cat "$WEED_PID")" "$(cat "$ISSUER_PID")"
  log "weed in $(since "$t0") (S3/STS on 127.0.0.1:$S3_PORT)"

  write_env "$ak" "$sk" "$issuer_url" "$outage_url"
  log "up in $(since "$t_all") ($STACK_DIR)"
  print_env
}

stack_main "$@"
