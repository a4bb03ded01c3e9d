#!/usr/bin/env bash
# A real Keycloak (the expanded-mode IAM Profile issuer) on loopback, in dev mode, for the test stack.
#
#   test/stack/keycloak.sh install   fetch org.keycloak:keycloak-quarkus-dist:<ver>:zip with Maven (cached)
#   test/stack/keycloak.sh up        start it (idempotent: prints the env when already up)
#   test/stack/keycloak.sh stop      stop exactly the PID in the pid file, keep the state (realms survive)
#   test/stack/keycloak.sh down      stop, then remove the state dir
#   test/stack/keycloak.sh status    print the env and exit 0 when up; exit 1 otherwise
#
# Environment:
#   STACK_DIR           state dir (default <repo>/.stack/keycloak): H2 database, pid, log, env, env.json
#   KEYCLOAK_PORT       HTTP port on 127.0.0.1 (default 8180)
#   KEYCLOAK_VERSION    dist version (default below); cached in ~/.cache/sts-sidecar/keycloak-<version>
#   KEYCLOAK_HEAP       JVM heap options (default -Xms64m -Xmx384m)
#   KEYCLOAK_LOG_LEVEL  Keycloak --log-level (default warn), e.g. warn,org.keycloak.authentication:debug
#
# Realms are not imported here: tests and the demo create their own realm from
# test/stack/keycloak/realm.json through the admin REST API (test/stack/keycloak.ts), so that each one
# trusts its own stand-in service-account issuer and no two tests share clients.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${STACK_DIR:-$REPO_ROOT/.stack/keycloak}"
PORT="${KEYCLOAK_PORT:-8180}"
VERSION="${KEYCLOAK_VERSION:-26.4.0}"
HEAP="${KEYCLOAK_HEAP:--Xms64m -Xmx384m}"
CACHE_ROOT="${STS_SIDECAR_CACHE:-$HOME/.cache/sts-sidecar}"
KC_HOME="$CACHE_ROOT/keycloak-$VERSION"
FEATURES="client-auth-federated,kubernetes-service-accounts"

PID_FILE="$STACK_DIR/keycloak.pid"
LOG_FILE="$STACK_DIR/keycloak.log"
ENV_FILE="$STACK_DIR/env"
ENV_JSON="$STACK_DIR/env.json"
LOCK_FILE="$STACK_DIR.lock"

log() { printf 'keycloak: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

pid_alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/stat" ] || return 1
  state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || true)"
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
# The PID in the pid file is alive and is a JVM (kc.sh execs java), so a recycled PID is never stopped.
kc_alive() {
  local pid
  [ -s "$PID_FILE" ] || return 1
  pid="$(tr -d '[:space:]' <"$PID_FILE")"
  pid_alive "$pid" || return 1
  case "$(cat "/proc/$pid/comm" 2>/dev/null)" in java | kc.sh | bash) return 0 ;; *) return 1 ;; esac
}

discovery_ok() {
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/realms/master/.well-known/openid-configuration" 2>/dev/null
}

cmd_install() {
  if [ -x "$KC_HOME/bin/kc.sh" ]; then
    log "keycloak $VERSION already cached in $KC_HOME"
    return 0
  fi
  command -v java >/dev/null || die "java not found (Keycloak $VERSION needs Java 17 or 21)"
  command -v unzip >/dev/null || die "unzip not found"
  if ! command -v mvn >/dev/null; then
    [ "$(id -u)" -eq 0 ] || die "mvn not found and not root to apt-get it"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends maven unzip >/tmp/keycloak-apt.log 2>&1 ||
      die "apt-get install maven failed, see /tmp/keycloak-apt.log"
  fi
  local t0 zip tmp
  t0="$(now)"
  nice -n 10 mvn -B -q dependency:get -Dtransitive=false \
    -Dartifact="org.keycloak:keycloak-quarkus-dist:$VERSION:zip" >&2 ||
    die "maven could not fetch org.keycloak:keycloak-quarkus-dist:$VERSION:zip"
  zip="$HOME/.m2/repository/org/keycloak/keycloak-quarkus-dist/$VERSION/keycloak-quarkus-dist-$VERSION.zip"
  [ -s "$zip" ] || die "$zip missing after mvn dependency:get"
  mkdir -p "$CACHE_ROOT"
  tmp="$(mktemp -d "$CACHE_ROOT/.keycloak-$VERSION.XXXXXX")"
  unzip -q "$zip" -d "$tmp"
  mv "$tmp/keycloak-$VERSION" "$KC_HOME"
  rm -rf "$tmp"
  log "keycloak $VERSION installed in $KC_HOME in $(since "$t0") ($(du -sh "$zip" | cut -f1) zip)"
}

stop_kc() {
  kc_alive || return 0
  local pid i
  pid="$(tr -d '[:space:]' <"$PID_FILE")"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    pid_alive "$pid" || {
      log "stopped (pid $pid)"
      rm -f "$PID_FILE"
      return 0
    }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 30); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  rm -f "$PID_FILE"
  log "killed (pid $pid)"
}

print_env() { cat "$ENV_FILE"; }

cmd_status() {
  if [ -s "$ENV_FILE" ] && kc_alive && discovery_ok "$(sed -n 's/^KEYCLOAK_PORT=//p' "$ENV_FILE")"; then
    print_env
    return 0
  fi
  log "not up ($STACK_DIR)"
  return 1
}

write_env() {
  local pass="$1" pid
  pid="$(tr -d '[:space:]' <"$PID_FILE")"
  {
    printf 'KEYCLOAK_URL=%s\n' "http://127.0.0.1:$PORT"
    printf 'KEYCLOAK_PORT=%s\n' "$PORT"
    printf 'KEYCLOAK_ADMIN_USER=admin\n'
    printf 'KEYCLOAK_ADMIN_PASSWORD=%s\n' "$pass"
    printf 'KEYCLOAK_VERSION=%s\n' "$VERSION"
    printf 'KEYCLOAK_PID_FILE=%q\n' "$PID_FILE"
    printf 'KEYCLOAK_LOG=%q\n' "$LOG_FILE"
  } >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  printf '{"url":"http://127.0.0.1:%s","port":%s,"adminUser":"admin","adminPassword":"%s","version":"%s","pid":%s,"pidFile":"%s","log":"%s","stackDir":"%s"}\n' \
    "$PORT" "$PORT" "$pass" "$VERSION" "$pid" "$PID_FILE" "$LOG_FILE" "$STACK_DIR" >"$ENV_JSON.tmp"
  mv "$ENV_JSON.tmp" "$ENV_JSON"
}

cmd_up() {
  if cmd_status >/dev/null 2>&1; then
    log "already up ($STACK_DIR)"
    print_env
    return 0
  fi
  [ -x "$KC_HOME/bin/kc.sh" ] || die "keycloak $VERSION not installed; run: $0 install"
  kc_alive && stop_kc # alive but not answering: a stuck earlier start
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "127.0.0.1:$PORT is already in use (another Keycloak? choose another port with KEYCLOAK_PORT)"
  fi
  mkdir -p "$STACK_DIR"
  chmod 700 "$STACK_DIR"
  local pass t0 pid
  # The admin password survives a stop/up cycle: the H2 database keeps the admin user it was created with.
  if [ -s "$ENV_FILE" ]; then pass="$(sed -n 's/^KEYCLOAK_ADMIN_PASSWORD=//p' "$ENV_FILE")"; fi
  if [ -z "${pass:-}" ]; then pass="$(head -c 64 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9' | head -c 24)"; fi
  t0="$(now)"
  # setsid: the JVM must not die with the shell that started it; 9>&-: nor hold the lock for its life.
  # KUBERNETES_SERVICE_*: Keycloak 26.4.0's Kubernetes JWKS loader compares the configured JWKS URL with
  # one built from these and throws a NullPointerException when they are unset (outside a cluster). Any
  # value that differs from the realm's JWKS URL makes it fetch the configured one.
  KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT_HTTPS=1 \
    KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD="$pass" JAVA_OPTS_KC_HEAP="$HEAP" \
    setsid "$KC_HOME/bin/kc.sh" start-dev \
    --http-host=127.0.0.1 --http-port="$PORT" --hostname="http://127.0.0.1:$PORT" \
    --features="$FEATURES" \
    --db=dev-file --db-url="jdbc:h2:file:$STACK_DIR/h2/keycloakdb;NON_KEYWORDS=VALUE" \
    --log-level="${KEYCLOAK_LOG_LEVEL:-warn}" --cache=local \
    </dev/null >>"$LOG_FILE" 2>&1 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"
  write_env "$pass"
  # Poll discovery; fail fast when the JVM died (port taken, bad option, Java too old).
  local limit=240
  while ! discovery_ok "$PORT"; do
    pid_alive "$pid" || die "keycloak exited during start-up (log: $LOG_FILE): $(tail -5 "$LOG_FILE" | tr '\n' ' ')"
    if awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      die "keycloak not answering after ${limit}s (log: $LOG_FILE)"
    fi
    sleep 0.25
  done
  log "up in $(since "$t0") at http://127.0.0.1:$PORT (pid $pid)"
  print_env
}

cmd_stop() { stop_kc; }

cmd_down() {
  stop_kc
  if [ -d "$STACK_DIR" ]; then
    [ -f "$ENV_FILE" ] || [ -d "$STACK_DIR/h2" ] || [ -z "$(ls -A "$STACK_DIR")" ] ||
      die "$STACK_DIR does not look like a keycloak state dir; not removing it"
    rm -rf "$STACK_DIR"
  fi
  log "down"
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
  install) cmd_install ;;
  up | stop | down | status)
    mkdir -p "$(dirname "$STACK_DIR")"
    exec 9>"$LOCK_FILE"
    flock -w 300 9 || die "could not take $LOCK_FILE"
    "cmd_$cmd"
    ;;
  *)
    echo "usage: $0 install|up|stop|down|status" >&2
    exit 2
    ;;
  esac
}
main "$@"
