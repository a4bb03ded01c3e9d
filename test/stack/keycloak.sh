#!/usr/bin/env bash
# A real Keycloak (the expanded-mode IAM Profile issuer) on loopback, in dev mode, for the test stack.
#
#   test/stack/keycloak.sh install   fetch org.keycloak:keycloak-quarkus-dist:<ver>:zip with Maven (cached;
#                                    safe against concurrent runs; the ~/.m2 copy is deleted after unpacking)
#   test/stack/keycloak.sh up        start it (idempotent: prints the env when already up)
#   test/stack/keycloak.sh stop      stop its whole process group (kc.sh and the JVM it forks), keep the
#                                    state (realms survive); fails when the port is still open afterwards
#   test/stack/keycloak.sh down      stop, then remove the state dir
#   test/stack/keycloak.sh status    print the env and exit 0 when up; exit 1 otherwise
#
# Environment:
#   STACK_DIR           state dir (default <repo>/.stack/keycloak): H2 database, pid, log, env, env.json
#   KEYCLOAK_PORT       HTTP port on 127.0.0.1 (default 8180)
#   KEYCLOAK_TM_PORT    the transaction manager's socket on 127.0.0.1 (default KEYCLOAK_PORT + 1): Narayana
#                       binds one to get a process id unique on the host, on a random port unless pinned
#   KEYCLOAK_VERSION    dist version (default below; 26.4.x is tested too); cached in
#                       ~/.cache/sts-sidecar/keycloak-<version>
#   KEYCLOAK_HEAP       JVM heap options (default -Xms64m -Xmx384m)
#   KEYCLOAK_LOG_LEVEL  Keycloak --log-level (default warn), e.g. warn,org.keycloak.authentication:debug
#   JAVA_HOME           the JDK to use; must be Java 17 or 21 (Keycloak 26), else the script falls back to
#                       /usr/lib/jvm/java-17-openjdk-amd64 when present and fails otherwise
#
# Realms are not imported here: tests and the demo create their own realm from
# test/stack/keycloak/realm.json through the admin REST API (test/stack/keycloak.ts), so that each one
# trusts its own stand-in service-account issuer and no two tests share clients.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${STACK_DIR:-$REPO_ROOT/.stack/keycloak}"
PORT="${KEYCLOAK_PORT:-8180}"
TM_PORT="${KEYCLOAK_TM_PORT:-$((PORT + 1))}"
VERSION="${KEYCLOAK_VERSION:-26.7.3}"
HEAP="${KEYCLOAK_HEAP:--Xms64m -Xmx384m}"
CACHE_ROOT="${STS_SIDECAR_CACHE:-$HOME/.cache/sts-sidecar}"
KC_HOME="$CACHE_ROOT/keycloak-$VERSION"
# Federated client authentication and Kubernetes service-account support: preview in 26.4, enabled here;
# supported and on by default in 26.7 (26.7.3's admin serverinfo lists both as DEFAULT and enabled, and it
# logs no "Experimental features enabled"). Versions in between get the flag too: it is harmless when on.
case "$VERSION" in
26.[0-6].*) FEATURE_ARGS=(--features=client-auth-federated,kubernetes-service-accounts) ;;
*) FEATURE_ARGS=() ;;
esac

PID_FILE="$STACK_DIR/keycloak.pid"
LOG_FILE="$STACK_DIR/keycloak.log"
ENV_FILE="$STACK_DIR/env"
ENV_JSON="$STACK_DIR/env.json"
LOCK_FILE="$STACK_DIR.lock"

STACK_NAME=keycloak # log and die prefix their lines with it
# shellcheck source=test/stack/lib.sh
. "$REPO_ROOT/test/stack/lib.sh"

# The PID in the pid file leads the process group setsid gave kc.sh (kc.sh forks the JVM; it only execs it
# after a rebuild). The group is ours when one of its members runs on our database (the state dir is in the
# command line of kc.sh and of the JVM), so a recycled PID or another checkout's Keycloak is never stopped.
kc_pgid() {
  [ -s "$PID_FILE" ] || return 1
  tr -d '[:space:]' <"$PID_FILE"
}
kc_group_ours() {
  local pgid p
  pgid="$(kc_pgid)" || return 1
  for p in $(group_members "$pgid"); do
    case "$(cat "/proc/$p/comm" 2>/dev/null)" in java | kc.sh) ;; *) continue ;; esac
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "jdbc:h2:file:$STACK_DIR/h2/" && return 0
  done
  return 1
}
# Alive: the group leader (kc.sh, or the JVM it became) still runs, not just a child it left behind.
kc_alive() {
  kc_group_ours || return 1
  pid_alive "$(kc_pgid)"
}

# Keycloak 26 runs on Java 17 or 21: makes JAVA_HOME/PATH point kc.sh at such a JDK.
java_major() { "$1" -version 2>&1 | sed -nE '1s/^[^"]*"(1\.)?([0-9]+).*$/\2/p'; }
pick_java() {
  local java major fallback=/usr/lib/jvm/java-17-openjdk-amd64
  if [ -n "${JAVA_HOME:-}" ]; then java="$JAVA_HOME/bin/java"; else java="$(command -v java || true)"; fi
  major=""
  if [ -n "$java" ] && [ -x "$java" ]; then major="$(java_major "$java")"; fi
  case "$major" in 17 | 21) return 0 ;; esac
  if [ -x "$fallback/bin/java" ] && [ "$(java_major "$fallback/bin/java")" = 17 ]; then
    log "${java:-java} is Java ${major:-?}; Keycloak $VERSION needs 17 or 21: using $fallback"
    export JAVA_HOME="$fallback"
    export PATH="$fallback/bin:$PATH"
    return 0
  fi
  die "Keycloak $VERSION needs Java 17 or 21; ${java:-no java on PATH} is Java ${major:-?} and $fallback is absent (set JAVA_HOME)"
}

discovery_ok() {
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/realms/master/.well-known/openid-configuration" 2>/dev/null
}

apt_install() {
  [ "$(id -u)" -eq 0 ] || die "$* not found and not root to apt-get it"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "$@" >/tmp/keycloak-apt.log 2>&1; then
    # A fresh machine has no package lists yet.
    apt-get update -qq >>/tmp/keycloak-apt.log 2>&1 || true
    apt-get install -y -qq --no-install-recommends "$@" >>/tmp/keycloak-apt.log 2>&1 ||
      die "apt-get install $* failed, see /tmp/keycloak-apt.log"
  fi
}

# Unpacks with unzip (apt-getting it when root), else with the JDK's jar, which drops the exec bits.
unpack() {
  local zip="$1" dest="$2"
  if ! command -v unzip >/dev/null && [ "$(id -u)" -eq 0 ]; then apt_install unzip; fi
  if command -v unzip >/dev/null; then
    unzip -q "$zip" -d "$dest"
  else
    log "unzip unavailable: unpacking with jar"
    (cd "$dest" && "${JAVA_HOME:+$JAVA_HOME/bin/}jar" xf "$zip") || die "jar xf $zip failed"
    chmod +x "$dest"/keycloak-*/bin/*.sh
  fi
}

cmd_install() {
  if [ -x "$KC_HOME/bin/kc.sh" ]; then
    log "keycloak $VERSION already cached in $KC_HOME"
    return 0
  fi
  mkdir -p "$CACHE_ROOT"
  # The cache is shared by every checkout on the machine: one install at a time; a waiter reuses the result.
  exec 8>"$CACHE_ROOT/.keycloak-$VERSION.lock"
  flock -w 900 8 || die "timed out waiting for $CACHE_ROOT/.keycloak-$VERSION.lock"
  if [ -x "$KC_HOME/bin/kc.sh" ]; then
    log "keycloak $VERSION installed meanwhile in $KC_HOME"
    return 0
  fi
  pick_java
  command -v mvn >/dev/null || apt_install maven
  local t0 zip tmp size
  t0="$(now)"
  nice -n 10 mvn -B -q dependency:get -Dtransitive=false \
    -Dartifact="org.keycloak:keycloak-quarkus-dist:$VERSION:zip" >&2 ||
    die "maven could not fetch org.keycloak:keycloak-quarkus-dist:$VERSION:zip"
  zip="$HOME/.m2/repository/org/keycloak/keycloak-quarkus-dist/$VERSION/keycloak-quarkus-dist-$VERSION.zip"
  [ -s "$zip" ] || die "$zip missing after mvn dependency:get"
  size="$(du -sh "$zip" | cut -f1)"
  tmp="$(mktemp -d "$CACHE_ROOT/.keycloak-$VERSION.XXXXXX")"
  unpack "$zip" "$tmp"
  [ -x "$tmp/keycloak-$VERSION/bin/kc.sh" ] || die "$zip did not unpack to keycloak-$VERSION/bin/kc.sh"
  rm -rf "$KC_HOME" # a partial copy left by an interrupted run
  mv "$tmp/keycloak-$VERSION" "$KC_HOME"
  rm -rf "$tmp"
  # The unpacked copy is the cache; the zip in ~/.m2 would only double the disk use (about 150 MB).
  rm -rf "$(dirname "$zip")"
  log "keycloak $VERSION installed in $KC_HOME in $(since "$t0") ($size zip, removed from ~/.m2)"
}

stop_kc() {
  local port
  port="$(sed -n 's/^KEYCLOAK_PORT=//p' "$ENV_FILE" 2>/dev/null || true)"
  if kc_group_ours; then stop_group "$(kc_pgid)" keycloak 10; fi
  rm -f "$PID_FILE"
  # Whatever still holds the port is not ours to kill, but a stop that leaves it open has failed.
  if [ -n "$port" ] && port_in_use "$port"; then die "127.0.0.1:$port is still open after stopping keycloak"; fi
  return 0
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
    printf 'KEYCLOAK_TM_PORT=%s\n' "$TM_PORT"
    printf 'KEYCLOAK_ADMIN_USER=admin\n'
    printf 'KEYCLOAK_ADMIN_PASSWORD=%s\n' "$pass"
    printf 'KEYCLOAK_VERSION=%s\n' "$VERSION"
    printf 'KEYCLOAK_PID_FILE=%q\n' "$PID_FILE"
    printf 'KEYCLOAK_LOG=%q\n' "$LOG_FILE"
    # What test/stack/listeners.test.ts checks: the process groups and every port they may listen on.
    printf 'STACK_PIDS=%s\n' "$pid"
    printf 'STACK_LISTEN_PORTS=%s\n' "$PORT,$TM_PORT"
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
  if kc_group_ours; then stop_kc; fi # not answering: a stuck earlier start, or a JVM its kc.sh left behind
  pick_java
  if port_in_use "$PORT"; then
    die "127.0.0.1:$PORT is already in use (another Keycloak? choose another port with KEYCLOAK_PORT)"
  fi
  if port_in_use "$TM_PORT"; then
    die "127.0.0.1:$TM_PORT is already in use (another Keycloak? choose another port with KEYCLOAK_TM_PORT)"
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
    JAVA_OPTS_APPEND="-Dcom.arjuna.ats.internal.arjuna.utils.SocketProcessIdPort=$TM_PORT" \
    setsid "$KC_HOME/bin/kc.sh" start-dev \
    --http-host=127.0.0.1 --http-port="$PORT" --hostname="http://127.0.0.1:$PORT" \
    "${FEATURE_ARGS[@]}" \
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
  require_chosen_ports keycloak "$PORT,$TM_PORT" "$pid"
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
