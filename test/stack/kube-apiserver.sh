#!/usr/bin/env bash
# A real kube-apiserver (built from k8s.io/kubernetes through the Go module proxy) over a real etcd
# (Debian's etcd-server), on loopback only. No kubelet, no controller-manager, no scheduler: objects are
# admitted and stored, nothing runs.
#
#   test/stack/kube-apiserver.sh install   etcd-server from apt; kube-apiserver (with the node's binaries, one
#                                          go build, test/stack/kube-build.sh) built into the cache (idempotent)
#   test/stack/kube-apiserver.sh up        start etcd + kube-apiserver (idempotent: prints the env when up)
#   test/stack/kube-apiserver.sh down      stop exactly the PIDs in the pid files, remove the state dir
#   test/stack/kube-apiserver.sh status    print the env and exit 0 when up; exit 1 otherwise
#
# Environment:
#   KUBE_VERSION          k8s.io/kubernetes version (default v1.37.2; staging modules pinned to v0.<minor>.<patch>)
#   KUBE_STACK_DIR        state dir (default <repo>/.stack/kube): certs, token file, etcd data, pids, logs, env
#   KUBE_APISERVER_PORT   kube-apiserver secure port on 127.0.0.1 (default 19443)
#   KUBE_ETCD_PORT        etcd client port on 127.0.0.1 (default 19379); the peer port is KUBE_ETCD_PEER_PORT
#                         (default 19380)
#   KUBE_ISSUER_PORT      the service-account issuer is http://127.0.0.1:<port> (default 19444); nothing
#                         listens there unless a test serves the issuer's discovery (test/stack/kube-issuer.ts)
#   STS_CACHE_DIR         build cache root outside the repository (default ~/.cache/sts-sidecar)
#
# `up` writes ${KUBE_STACK_DIR}/env (shell KEY=VALUE) and env.json: the URL, the CA file and the file of
# the test's admin token (system:masters, from a static token file; the value never goes to stdout).
# Builds run at `nice -n 19` (the cores are shared); timings go to stderr.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${KUBE_STACK_DIR:-$REPO_ROOT/.stack/kube}"
API_PORT="${KUBE_APISERVER_PORT:-19443}"
ETCD_PORT="${KUBE_ETCD_PORT:-19379}"
ETCD_PEER_PORT="${KUBE_ETCD_PEER_PORT:-19380}"
# The service-account issuer: a loopback URL, so that an STS (Ceph RGW) can fetch its discovery document
# and JWKS where a test serves them (test/stack/kube-issuer.ts: the API server's key with the x5c RGW needs).
ISSUER_PORT="${KUBE_ISSUER_PORT:-19444}"
ISSUER="http://127.0.0.1:$ISSUER_PORT"

PKI="$STACK_DIR/pki"
RUN_DIR="$STACK_DIR/run"
LOG_DIR="$STACK_DIR/log"
ETCD_PID="$RUN_DIR/etcd.pid"
API_PID="$RUN_DIR/kube-apiserver.pid"
TOKEN_FILE="$STACK_DIR/admin.token"
ENV_FILE="$STACK_DIR/env"
ENV_JSON="$STACK_DIR/env.json"

STACK_NAME=kube-apiserver # log and die prefix their lines with it
# shellcheck source=test/stack/lib.sh
. "$REPO_ROOT/test/stack/lib.sh"
# shellcheck source=test/stack/kube-build.sh
. "$REPO_ROOT/test/stack/kube-build.sh"
APISERVER_BIN="$KUBE_BUILD_DIR/kube-apiserver"
# The lock of up/down waits without limit here (etcd plus kube-apiserver may take up to 150 s to start).
STACK_LOCK_WAIT_S=

etcd_bin() { command -v etcd || true; }

# ---- install --------------------------------------------------------------------------------------

install_etcd() {
  if [ -n "$(etcd_bin)" ]; then
    log "etcd already installed ($(etcd --version | head -1))"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "installing etcd-server needs root"
  local t0
  t0="$(now)"
  export DEBIAN_FRONTEND=noninteractive
  # The package's postinst would start a system etcd on 2379 (invoke-rc.d, where there is an init system):
  # a policy-rc.d answering 101 ("action not allowed") stops that. Ours only if none was there, and removed
  # afterwards only if we created it.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, test/stack/kube-apiserver.sh install: no service starts\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    created_policy=1
  fi
  local ok=1
  if ! apt-get install -y -qq --no-install-recommends etcd-server >/tmp/kube-etcd-apt.log 2>&1; then
    apt-get update -qq >>/tmp/kube-etcd-apt.log 2>&1 || true
    apt-get install -y -qq --no-install-recommends etcd-server >>/tmp/kube-etcd-apt.log 2>&1 || ok=0
  fi
  [ "$created_policy" -eq 0 ] || rm -f "$policy"
  [ "$ok" -eq 1 ] || die "apt-get install etcd-server failed, see /tmp/kube-etcd-apt.log"
  log "etcd-server installed in $(since "$t0") ($(etcd --version | head -1))"
}

apiserver_built() { [ -x "$APISERVER_BIN" ] && "$APISERVER_BIN" --version >/dev/null 2>&1; }

cmd_install() {
  install_etcd
  # One go build makes kube-apiserver together with the node's binaries (kube-node.sh): they share nearly
  # all their packages, so the four cost little more than one.
  kube_build
}

# ---- up / down ------------------------------------------------------------------------------------

AUTH_HEADER="$STACK_DIR/admin.header"
auth_header() { # the admin token as a curl header file (mode 0600): never on a command line, where ps shows it
  if [ ! -s "$AUTH_HEADER" ] || [ "$TOKEN_FILE" -nt "$AUTH_HEADER" ]; then
    (umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$TOKEN_FILE")" >"$AUTH_HEADER")
  fi
  printf '%s' "$AUTH_HEADER"
}
readyz() { # readyz: the API server answers /readyz with 200 over TLS signed by our CA
  curl -fsS --max-time 2 --cacert "$PKI/ca.crt" -H "@$(auth_header)" \
    "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1
}
etcd_healthy() {
  curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'
}

all_up() {
  pidfile_alive "$ETCD_PID" etcd && pidfile_alive "$API_PID" kube-apiserver && [ -s "$ENV_JSON" ] && readyz
}

make_pki() {
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
      -subj "/CN=sts-sidecar-test-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >ext.cnf
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt \
      -days 2 -extfile ext.cnf 2>/dev/null
    # Service-account token signing key pair (TokenRequest issues real, verifiable SA tokens).
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 600 ./*.key
  )
  # A static token for the tests' admin client: token,user,uid,"group".
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TOKEN_FILE"
  chmod 600 "$TOKEN_FILE"
  printf '%s,sts-sidecar-test-admin,sts-sidecar-test-admin,"system:masters"\n' "$(cat "$TOKEN_FILE")" >"$PKI/tokens.csv"
  chmod 600 "$PKI/tokens.csv"
}

write_env() {
  local j
  j() { node -e 'process.stdout.write(JSON.stringify(process.argv[1]))' "$1" 2>/dev/null || printf '"%s"' "$1"; }
  cat >"$ENV_FILE" <<EOF
KUBE_APISERVER_URL=https://127.0.0.1:$API_PORT
KUBE_CA_FILE=$PKI/ca.crt
KUBE_TOKEN_FILE=$TOKEN_FILE
KUBE_ETCD_URL=http://127.0.0.1:$ETCD_PORT
KUBE_VERSION=$KUBE_VERSION
STACK_PIDS=$(cat "$ETCD_PID"),$(cat "$API_PID")
STACK_LISTEN_PORTS=$API_PORT,$ETCD_PORT,$ETCD_PEER_PORT
KUBE_SA_ISSUER=$ISSUER
EOF
  {
    printf '{\n'
    printf '  "url": "https://127.0.0.1:%s",\n' "$API_PORT"
    printf '  "caFile": %s,\n' "$(j "$PKI/ca.crt")"
    printf '  "tokenFile": %s,\n' "$(j "$TOKEN_FILE")"
    printf '  "etcdUrl": "http://127.0.0.1:%s",\n' "$ETCD_PORT"
    printf '  "version": "%s",\n' "$KUBE_VERSION"
    printf '  "issuer": "%s",\n' "$ISSUER"
    printf '  "pids": { "etcd": %s, "apiserver": %s },\n' "$(cat "$ETCD_PID")" "$(cat "$API_PID")"
    printf '  "logDir": %s\n' "$(j "$LOG_DIR")"
    printf '}\n'
  } >"$ENV_JSON.tmp"
  mv "$ENV_JSON.tmp" "$ENV_JSON"
}

cmd_down() {
  [ -d "$STACK_DIR" ] || {
    log "nothing to stop ($STACK_DIR absent)"
    return 0
  }
  stop_pidfile "$API_PID" kube-apiserver 10
  stop_pidfile "$ETCD_PID" etcd 10
  [ -d "$RUN_DIR" ] || [ -d "$PKI" ] || [ -z "$(ls -A "$STACK_DIR")" ] ||
    die "$STACK_DIR does not look like a kube stack state dir; not removing it"
  rm -rf "$STACK_DIR"
  log "down"
}

cmd_up() {
  if [ -d "$STACK_DIR" ] && all_up; then
    log "already up ($STACK_DIR)"
    cat "$ENV_FILE"
    return 0
  fi
  [ -n "$(etcd_bin)" ] || die "etcd not found; run: $0 install"
  apiserver_built || die "kube-apiserver $KUBE_VERSION not built ($APISERVER_BIN); run: $0 install"
  [ -d "$STACK_DIR" ] && {
    log "stale state in $STACK_DIR; cleaning it up"
    cmd_down
  }
  local p
  for p in "$API_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT"; do
    if port_in_use "$p"; then
      die "127.0.0.1:$p is already in use (another stack? choose KUBE_APISERVER_PORT, KUBE_ETCD_PORT, KUBE_ETCD_PEER_PORT)"
    fi
  done
  local t_all t0
  t_all="$(now)"
  # A failed start leaves nothing running (the daemons never hold the lock: fd 9 is closed for them).
  trap '[ "${UP_OK:-}" = 1 ] || { stop_pidfile "$API_PID" kube-apiserver 10; stop_pidfile "$ETCD_PID" etcd 10; }' EXIT
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$STACK_DIR/etcd"
  make_pki

  t0="$(now)"
  # etcd 3.4 (Debian 12): no --unsafe-no-fsync there; its data dir is throw-away state of the run.
  setsid "$(etcd_bin)" --name sts-test --data-dir "$STACK_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "sts-test=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --quota-backend-bytes $((512 * 1024 * 1024)) \
    </dev/null >"$LOG_DIR/etcd.log" 2>&1 9>&- &
  echo $! >"$ETCD_PID"
  wait_until 30 etcd "$ETCD_PID" etcd_healthy
  log "etcd up in $(since "$t0")"

  t0="$(now)"
  setsid "$APISERVER_BIN" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
    --service-account-issuer="$ISSUER" \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --authorization-mode=RBAC --service-cluster-ip-range=10.96.0.0/16 \
    --endpoint-reconciler-type=none \
    --cert-dir="$PKI" --profiling=false --v=1 \
    </dev/null >"$LOG_DIR/kube-apiserver.log" 2>&1 9>&- &
  echo $! >"$API_PID"
  wait_until 120 kube-apiserver "$API_PID" readyz
  require_chosen_ports kube-apiserver "$API_PORT,$ETCD_PORT,$ETCD_PEER_PORT" "$(cat "$ETCD_PID")" "$(cat "$API_PID")"
  log "kube-apiserver up in $(since "$t0") (to /readyz), rss $(awk '/VmRSS/ { print $2 / 1024 " MiB" }' "/proc/$(cat "$API_PID")/status"), etcd rss $(awk '/VmRSS/ { print $2 / 1024 " MiB" }' "/proc/$(cat "$ETCD_PID")/status")"
  write_env
  UP_OK=1
  log "up in $(since "$t_all")"
  cat "$ENV_FILE"
}

stack_main "$@"
