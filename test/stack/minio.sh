#!/usr/bin/env bash
# MinIO (built from the Go module proxy) as S3 + STS with an OpenID provider, in both of MinIO's policy
# modes, plus a fixed-port OIDC issuer; every listener on 127.0.0.1 only.
#
#   test/stack/minio.sh install   `go install` minio into the cache when missing (nice 19, CGO_ENABLED=0)
#   test/stack/minio.sh up        start the issuer and the MinIO instances (idempotent: prints the env)
#   test/stack/minio.sh down      stop exactly the PIDs in the pid files, remove the state dir
#   test/stack/minio.sh status    print the env and exit 0 when up; exit 1 otherwise
#   test/stack/minio.sh hold-v6 <port>
#                                 bind [::1]:<port> (without listening) until stdin closes; prints "held"
#                                 (for a MinIO started elsewhere: test/minio/minio.test.ts's container)
#
# Two MinIO instances share the issuer (MinIO allows one claim-based provider, and a role-policy provider
# and a claim provider with the same client id would collide):
#   role   MINIO_IDENTITY_OPENID_ROLE_POLICY=readwrite: the sidecar sends the role ARN MinIO derives,
#          arn:minio:iam:::role/<base64url(sha1(client id)), no padding> (checked against MinIO's log)
#   claim  MINIO_IDENTITY_OPENID_CLAIM_NAME=policy: the token's `policy` claim names the MinIO policy; no
#          RoleArn is sent
# Both get MINIO_IDENTITY_OPENID_CLIENT_SECRET: without it MinIO accepts an HS256 token signed with an
# empty key (kid = the client id), see docs/backends.md. The built-in `readwrite` policy (s3:* on every
# bucket) is the coarse role; the sidecar's session policy narrows it.
#
# Loopback only: MinIO always adds a listener on every loopback address of the host (getServerListenAddrs
# in cmd/server-main.go: 127.0.0.1 *and* [::1]) whatever --address says, and has no flag or variable
# against it. A listen error there is only logged, so `up` holds [::1]:<port> bound (not listening, no
# SO_REUSEPORT, so MinIO's bind fails) until MinIO has started, then releases it: nothing ever accepts on
# [::1]. The console is off (MINIO_BROWSER=off): no second port. `up` checks with ss that our PIDs listen
# on 127.0.0.1:<port> and nowhere else.
#
# Environment:
#   STACK_DIR                  state dir (default <repo>/.stack/minio)
#   MINIO_PORT_BASE            issuer = base, role-mode MinIO = base+1, claim-mode MinIO = base+2 (default
#                              18900); base+5..base+9 are left to tests that start instances of their own
#   MINIO_MODES                which instances to start (default "role claim")
#   MINIO_ISSUER_URL           use this issuer instead of starting one (a test that owns its issuer)
#   MINIO_CLIENT_SECRET_UNSET  1: start without MINIO_IDENTITY_OPENID_CLIENT_SECRET (only for the test that
#                              shows why it must be set)
#   MINIO_WAIT_STS             0: `up` waits for S3 only, not for the STS (MinIO started before its issuer)
#   MINIO_CACHE_DIR            where built binaries live (default ~/.cache/sts-sidecar: minio-<version>/)
#
# `up` writes ${STACK_DIR}/env (KEY=VALUE) and ${STACK_DIR}/env.json; timings go to stderr.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${STACK_DIR:-$REPO_ROOT/.stack/minio}"
PORT_BASE="${MINIO_PORT_BASE:-18900}"
ISSUER_PORT="$PORT_BASE"
MODES="${MINIO_MODES:-role claim}"
EXTERNAL_ISSUER_URL="${MINIO_ISSUER_URL:-}"
WAIT_STS="${MINIO_WAIT_STS:-1}"
REGION="us-east-1"
CLIENT_ID="sts.local"
ROLE_POLICY="readwrite"

MINIO_MODULE="github.com/minio/minio"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
CACHE_ROOT="${MINIO_CACHE_DIR:-$HOME/.cache/sts-sidecar}"
MINIO_BIN="$CACHE_ROOT/minio-$MINIO_VERSION/minio"

RUN_DIR="$STACK_DIR/run"
LOG_DIR="$STACK_DIR/log"
ISSUER_PID="$RUN_DIR/issuer.pid"
KEY_FILE="$STACK_DIR/issuer-key.json"
ENV_FILE="$STACK_DIR/env"
ENV_JSON="$STACK_DIR/env.json"

STACK_NAME=minio # log and die prefix their lines with it
# shellcheck source=test/stack/lib.sh
. "$REPO_ROOT/test/stack/lib.sh"
PIDFILE_MATCH_CMDLINE=1

mode_port() { # mode_port <role|claim>
  case "$1" in
    role) echo $((PORT_BASE + 1)) ;;
    claim) echo $((PORT_BASE + 2)) ;;
    *) die "unknown mode $1 (MINIO_MODES: role, claim)" ;;
  esac
}

# The role ARN MinIO derives for a role-policy provider: base64url(sha1(client id)), unpadded.
role_arn() {
  printf 'arn:minio:iam:::role/%s' "$(printf '%s' "$CLIENT_ID" | openssl sha1 -binary | base64 | tr '+/' '-_' | tr -d '=')"
}

s3_ready() { [ "$(http_status "$1" /minio/health/live)" = 200 ]; }
# The STS is initialised: a garbage token without RoleArn is a 400 (refused token); 503
# STSIAMNotInitialized while MinIO has not loaded its OpenID provider (the issuer was unreachable).
sts_status() { # sts_status <port>
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    body="Action=AssumeRoleWithWebIdentity&Version=2011-06-15&WebIdentityToken=probe"
    printf "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s" "${#body}" "$body" >&3
    IFS= read -r line <&3 && printf "%s" "$line" | cut -d" " -f2
    cat <&3 >/dev/null
  ' _ "$1" 2>/dev/null || true
}
sts_ready() { [ "$(sts_status "$1")" = 400 ]; }

# Once ready: the port's only listener is our PID, on 127.0.0.1.
require_only_loopback_v4() { # require_only_loopback_v4 <what> <pidfile> <port>
  local pid lines
  pid="$(tr -d '[:space:]' <"$2")"
  lines="$(listeners "$3")"
  printf '%s\n' "$lines" | grep -q "127.0.0.1:$3 .*pid=$pid," ||
    die "$1 (pid $pid) is not the listener on 127.0.0.1:$3: ${lines:-nothing listens}"
  [ "$(printf '%s\n' "$lines" | grep -c .)" = 1 ] || die "$1 listens on more than 127.0.0.1:$3: $lines"
  # Any other socket of the process (a console, a second port) would be a listener we did not ask for.
  ss -ltnpH 2>/dev/null | grep "pid=$pid," | grep -v "127.0.0.1:$3 " | grep -q . &&
    die "$1 (pid $pid) listens on more than 127.0.0.1:$3: $(ss -ltnpH | grep "pid=$pid," | tr '\n' ' ')"
  return 0
}

procs_alive() {
  local mode
  [ -n "$EXTERNAL_ISSUER_URL" ] || issuer_alive || return 1
  for mode in $MODES; do pidfile_alive "$RUN_DIR/minio-$mode.pid" minio || return 1; done
}
probes_ok() {
  local mode
  [ -s "$ENV_JSON" ] || return 1
  [ -n "$EXTERNAL_ISSUER_URL" ] || issuer_ready || return 1
  for mode in $MODES; do
    if [ "$WAIT_STS" = 1 ]; then sts_ready "$(mode_port "$mode")" || return 1; else s3_ready "$(mode_port "$mode")" || return 1; fi
  done
}
all_up() { procs_alive && probes_ok; }

cmd_install() {
  mkdir -p "$(dirname "$MINIO_BIN")"
  # Parallel installs (two worktrees, CI retries) build once: the second waits and finds the binary.
  exec 8>"$(dirname "$MINIO_BIN").lock"
  flock -w 1800 8 || die "timed out waiting for $(dirname "$MINIO_BIN").lock"
  if [ -x "$MINIO_BIN" ]; then
    log "minio $MINIO_VERSION already built ($MINIO_BIN)"
    return 0
  fi
  command -v go >/dev/null || die "go is not on PATH (needed to build minio $MINIO_VERSION)"
  local t0 gobin build_log
  t0="$(now)"
  gobin="$(dirname "$MINIO_BIN")/gobin.tmp.$$"
  build_log="$(dirname "$MINIO_BIN")/build.log"
  log "building minio $MINIO_VERSION (go install, CGO_ENABLED=0, nice 19; minutes on 2 cores)"
  # The module has no replace directives, so `go install module@version` works as is.
  if ! GOBIN="$gobin" CGO_ENABLED=0 GOFLAGS="-buildvcs=false" nice -n 19 \
    go install -trimpath -ldflags='-s -w' "$MINIO_MODULE@$MINIO_VERSION" >"$build_log" 2>&1 8>&-; then
    rm -rf "$gobin"
    tail -20 "$build_log" >&2
    die "go install failed, see $build_log"
  fi
  mv -f "$gobin/minio" "$MINIO_BIN"
  rm -rf "$gobin"
  log "minio built in $(since "$t0") ($(du -h "$MINIO_BIN" | cut -f1), $MINIO_BIN)"
}

stop_all() {
  local f
  for f in "$RUN_DIR"/minio-*.pid; do
    [ -e "$f" ] && stop_pidfile "$f" minio
  done
  stop_issuer
  return 0
}

cmd_down() {
  [ -d "$STACK_DIR" ] || {
    log "nothing to stop ($STACK_DIR absent)"
    return 0
  }
  local t0
  t0="$(now)"
  stop_all
  [ -d "$RUN_DIR" ] || [ -z "$(ls -A "$STACK_DIR")" ] ||
    die "$STACK_DIR does not look like a minio state dir; not removing it"
  rm -rf "$STACK_DIR"
  log "down in $(since "$t0")"
}

# hold_v6 <port> <ready-file>: a process that binds [::1]:<port> without listening and keeps it until its
# stdin closes. Prints nothing; touches <ready-file> once bound (or when the host has no ::1 at all).
hold_v6() {
  python3 -c '
import socket, sys
port, ready = int(sys.argv[1]), sys.argv[2]
try:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.bind(("::1", port))
except OSError as e:
    # No IPv6 loopback here: MinIO cannot listen there either. Anything else is a real problem.
    if e.errno not in (97, 99):
        sys.stderr.write("cannot hold [::1]:%d: %s\n" % (port, e)); sys.exit(1)
open(ready, "w").close()
sys.stdin.read()
' "$1" "$2"
}

start_minio() { # start_minio <mode> <issuer_url>
  local mode="$1" issuer_url="$2" port pidfile data hold_ready hold_fd hold_pid t0
  port="$(mode_port "$mode")"
  pidfile="$RUN_DIR/minio-$mode.pid"
  data="$STACK_DIR/data-$mode"
  mkdir -p "$data"
  local -a mode_env
  if [ "$mode" = role ]; then
    mode_env=(MINIO_IDENTITY_OPENID_ROLE_POLICY="$ROLE_POLICY")
  else
    mode_env=(MINIO_IDENTITY_OPENID_CLAIM_NAME=policy)
  fi
  if [ "${MINIO_CLIENT_SECRET_UNSET:-0}" != 1 ]; then
    mode_env+=(MINIO_IDENTITY_OPENID_CLIENT_SECRET="$CLIENT_SECRET")
  fi
  t0="$(now)"
  hold_ready="$RUN_DIR/hold-v6-$mode"
  rm -f "$hold_ready"
  coproc HOLD { hold_v6 "$port" "$hold_ready"; }
  hold_fd="${HOLD[1]}"
  hold_pid="$HOLD_PID"
  for _ in $(seq 1 50); do
    [ -e "$hold_ready" ] && break
    pid_alive "$hold_pid" || die "could not hold [::1]:$port for MinIO's startup"
    sleep 0.1
  done
  [ -e "$hold_ready" ] || die "could not hold [::1]:$port for MinIO's startup"
  env MINIO_ROOT_USER="$ROOT_USER" MINIO_ROOT_PASSWORD="$ROOT_PASSWORD" \
    MINIO_UPDATE=off MINIO_BROWSER=off MINIO_CALLHOME_ENABLE=off \
    MINIO_IDENTITY_OPENID_CONFIG_URL="$issuer_url/.well-known/openid-configuration" \
    MINIO_IDENTITY_OPENID_CLIENT_ID="$CLIENT_ID" \
    "${mode_env[@]}" \
    setsid "$MINIO_BIN" server "$data" --address "127.0.0.1:$port" --anonymous \
    </dev/null >"$LOG_DIR/minio-$mode.log" 2>&1 8>&- 9>&- {hold_fd}>&- &
  echo $! >"$pidfile"
  # MinIO has tried [::1] once S3 answers (the HTTP server binds all its addresses before serving).
  wait_until 60 "minio ($mode)" "$pidfile" s3_ready "$port"
  eval "exec ${hold_fd}>&-"
  wait "$hold_pid" 2>/dev/null || true
  if [ "$WAIT_STS" = 1 ]; then
    wait_until 60 "minio ($mode) STS" "$pidfile" sts_ready "$port"
  fi
  require_only_loopback_v4 "minio ($mode)" "$pidfile" "$port"
  log "minio ($mode) in $(since "$t0") (S3/STS on 127.0.0.1:$port)"
}

# Every port our processes may listen on, and their process groups (each started with setsid).
chosen_ports() {
  local mode out=""
  [ -n "$EXTERNAL_ISSUER_URL" ] || out="$ISSUER_PORT"
  for mode in $MODES; do out="${out:+$out,}$(mode_port "$mode")"; done
  printf '%s' "$out"
}
stack_pids() {
  local mode out=""
  [ -n "$EXTERNAL_ISSUER_URL" ] || out="$(cat "$ISSUER_PID")"
  for mode in $MODES; do out="${out:+$out,}$(cat "$RUN_DIR/minio-$mode.pid")"; done
  printf '%s' "$out"
}

write_env() {
  local issuer_url="$1" arn
  arn="$(role_arn)"
  cat >"$ENV_FILE" <<EOF2
MINIO_ROLE_ENDPOINT=http://127.0.0.1:$((PORT_BASE + 1))
MINIO_CLAIM_ENDPOINT=http://127.0.0.1:$((PORT_BASE + 2))
MINIO_REGION=$REGION
MINIO_ROLE_ARN=$arn
MINIO_ISSUER_URL=$issuer_url
MINIO_CLIENT_ID=$CLIENT_ID
MINIO_ISSUER_KEY_FILE=$KEY_FILE
MINIO_VERSION=$MINIO_VERSION
MINIO_MODES="$MODES"
STACK_PIDS=$(stack_pids)
STACK_LISTEN_PORTS=$(chosen_ports)
EOF2
  cat >"$ENV_JSON" <<EOF2
{
  "roleEndpoint": "http://127.0.0.1:$((PORT_BASE + 1))",
  "claimEndpoint": "http://127.0.0.1:$((PORT_BASE + 2))",
  "modes": "$MODES",
  "region": "$REGION",
  "roleArn": "$arn",
  "rolePolicy": "$ROLE_POLICY",
  "issuerUrl": "$issuer_url",
  "clientId": "$CLIENT_ID",
  "clientSecret": "$CLIENT_SECRET",
  "issuerKeyFile": "$KEY_FILE",
  "version": "$MINIO_VERSION",
  "binary": "$MINIO_BIN",
  "accessKeyId": "$ROOT_USER",
  "secretAccessKey": "$ROOT_PASSWORD",
  "stackDir": "$STACK_DIR"
}
EOF2
  chmod 600 "$ENV_JSON" "$ENV_FILE"
}

cmd_up() {
  if [ -d "$STACK_DIR" ] && procs_alive && [ -s "$ENV_JSON" ]; then
    local t_probe
    t_probe="$(now)"
    while ! probes_ok; do
      procs_alive || break
      if awk -v a="$t_probe" -v b="$(now)" 'BEGIN { exit !(b - a > 30) }'; then
        die "minio and the issuer run but do not answer after 30s; not restarting them (logs: $LOG_DIR; minio.sh down to reset)"
      fi
      sleep 1
    done
    if procs_alive; then
      log "already up ($STACK_DIR)"
      cat "$ENV_FILE"
      return 0
    fi
    log "a stack process died; restarting"
  fi
  [ -x "$MINIO_BIN" ] || die "minio $MINIO_VERSION is not built; run test/stack/minio.sh install"
  command -v python3 >/dev/null || die "python3 is needed to keep MinIO off [::1]"
  local t_all t0 mode issuer_url
  t_all="$(now)"
  stop_all
  rm -rf "$STACK_DIR"
  for mode in $MODES; do require_free_ports "minio ($mode)" "$(mode_port "$mode")"; done
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  chmod 700 "$STACK_DIR"

  if [ -n "$EXTERNAL_ISSUER_URL" ]; then
    issuer_url="$EXTERNAL_ISSUER_URL"
  else
    issuer_url="http://127.0.0.1:$ISSUER_PORT/issuer"
    start_issuer
  fi

  ROOT_USER="$(rand 20 'A-Z0-9')"
  ROOT_PASSWORD="$(rand 40 'A-Za-z0-9')"
  CLIENT_SECRET="$(rand 40 'A-Za-z0-9')"
  [ "${MINIO_CLIENT_SECRET_UNSET:-0}" = 1 ] && CLIENT_SECRET=""
  for mode in $MODES; do start_minio "$mode" "$issuer_url"; done
  if [[ " $MODES " == *" role "* ]] && [ "$WAIT_STS" = 1 ]; then
    # MinIO logs the role ARN it derived ("IAM Roles: ...") once the provider is loaded: ours must match.
    grep -qF "IAM Roles: $(role_arn)" "$LOG_DIR/minio-role.log" ||
      die "MinIO did not derive $(role_arn): $(grep -F 'IAM Roles' "$LOG_DIR/minio-role.log" || echo 'no IAM Roles line')"
  fi
  # shellcheck disable=SC2046
  require_chosen_ports minio "$(chosen_ports)" $(stack_pids | tr ',' ' ')
  write_env "$issuer_url"
  log "up in $(since "$t_all") ($STACK_DIR)"
  cat "$ENV_FILE"
}

if [ "${1:-}" = hold-v6 ]; then
  [[ "${2:-}" =~ ^[0-9]+$ ]] || die "usage: $0 hold-v6 <port>"
  ready="$(mktemp)"
  rm -f "$ready"
  hold_v6 "$2" "$ready" <&0 &
  for _ in $(seq 1 50); do
    [ -e "$ready" ] && break
    sleep 0.1
  done
  [ -e "$ready" ] || die "could not hold [::1]:$2"
  rm -f "$ready"
  echo held
  wait
  exit 0
fi
stack_main "$@"
