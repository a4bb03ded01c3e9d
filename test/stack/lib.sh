# Helpers shared by the test-stack scripts (ceph-rgw.sh, seaweedfs.sh, keycloak.sh, kube-apiserver.sh, kube-node.sh).
# Source it after setting STACK_NAME (the prefix of log lines); it defines functions only.
#
#   log <msg...> / die <msg...>              a line on stderr prefixed with STACK_NAME; die exits 1
#   now / since <t0>                         wall clock (seconds, fractional) and "1.2s" since t0
#   pid_alive <pid>                          the PID exists and is not a zombie
#   pidfile_alive <file> [what]              the PID in the file is alive and is ours (see below)
#   stop_pidfile <file> <what> [term_s]      TERM the PID in the file, wait term_s (default 5), then KILL
#   group_members <pgid>                     the live PIDs of a process group, one a line
#   stop_group <pgid> <name> [term_seconds]  TERM the whole group, wait, KILL, wait until it is empty
#   port_in_use <port>                       something accepts connections on 127.0.0.1:<port>
#   rand <len> <charset>                     random characters from /dev/urandom (tr -dc charset)
#   http_status <port> <path>                the status code of GET <path> on 127.0.0.1:<port> (no curl)
#   listeners <port>                         the `ss` lines of TCP listeners on the port (any address)
#   require_free_ports <what> <port...>      die unless nothing listens on each port
#   node_supports_ts <node>                  the binary runs TypeScript by type stripping (Node >= 22.22)
#   wait_until <s> <what> <pidfile> <cmd...>  poll cmd until it succeeds; die when the daemon died or after s
#   with_lock <cmd...>                       run cmd holding ${STACK_DIR%/}.lock (fd 9)
#   start_issuer / stop_issuer               the fixed-port OIDC issuer of minio.sh and seaweedfs.sh (below)
#   issuer_alive / issuer_ready              its PID is ours and alive / it serves its discovery document
#   stack_status                             print ${ENV_FILE} and exit 0 when all_up; exit 1 otherwise
#   stack_main <command>                     install|up|down|status: calls cmd_install, cmd_up, cmd_down

log() { printf '%s: %s\n' "${STACK_NAME:?set STACK_NAME before sourcing lib.sh}" "$*" >&2; }
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

# pidfile_alive <file> [what]: the PID in the file is alive and, when <what> is given, is ours: its comm is
# <what> (or, with PIDFILE_MATCH_CMDLINE=1, its command line contains <what>: Node names its main thread
# MainThread). A recycled PID of an unrelated process is never mistaken for, or stopped as, one of ours.
pidfile_alive() {
  local pid
  [ -s "$1" ] || return 1
  pid="$(tr -d '[:space:]' <"$1")"
  pid_alive "$pid" || return 1
  [ -z "${2:-}" ] && return 0
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && return 0
  [ "${PIDFILE_MATCH_CMDLINE:-0}" = 1 ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# stop_pidfile <file> <what> [term_seconds]: TERM the PID in the file, wait (default 5 s), then KILL.
stop_pidfile() {
  local file="$1" name="$2" limit="${3:-5}" pid i
  pidfile_alive "$file" "$name" || return 0
  pid="$(tr -d '[:space:]' <"$file")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do
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

# group_members <pgid>: live (non-zombie) members of the process group.
group_members() {
  local p
  [[ "$1" =~ ^[0-9]+$ ]] || return 0
  for p in $(pgrep -g "$1" 2>/dev/null || true); do
    pid_alive "$p" && printf '%s\n' "$p"
  done
  return 0
}

# stop_group <pgid> <name> [term_seconds]: a launcher started with setsid leads its own process group, and
# its children (a JVM a wrapper script forks rather than execs) are in it: stopping only the leader would
# leave them running. TERM the group, wait up to term_seconds (default 10), KILL it, wait until it is empty.
stop_group() {
  local pgid="$1" name="$2" limit="${3:-10}" i
  [[ "$pgid" =~ ^[0-9]+$ ]] && [ "$pgid" -gt 1 ] || return 0
  [ -n "$(group_members "$pgid")" ] || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do
    if [ -z "$(group_members "$pgid")" ]; then
      log "$name (process group $pgid) stopped"
      return 0
    fi
    sleep 0.1
  done
  kill -KILL -- "-$pgid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    if [ -z "$(group_members "$pgid")" ]; then
      log "$name (process group $pgid) killed"
      return 0
    fi
    sleep 0.1
  done
  die "$name (process group $pgid) still has members after SIGKILL: $(group_members "$pgid" | tr '\n' ' ')"
}

# wait_until <seconds> <what> <pidfile> <cmd...>: polls cmd every 0.2 s; fails fast when the daemon in the
# pid file died, or after <seconds> (the message points at ${LOG_DIR}).
wait_until() {
  local limit="$1" what="$2" pidfile="$3" start
  shift 3
  start="$(now)"
  while ! "$@"; do
    pidfile_alive "$pidfile" || die "$what exited during startup (logs: $LOG_DIR)"
    if awk -v a="$start" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      die "$what not ready after ${limit}s (logs: $LOG_DIR)"
    fi
    sleep 0.2
  done
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

rand() { # rand <len> <charset>
  local out=""
  while [ "${#out}" -lt "$1" ]; do
    out+="$(head -c 256 /dev/urandom | LC_ALL=C tr -dc "$2" || true)"
  done
  printf '%s' "${out:0:$1}"
}

http_status() { # http_status <port> <path>
  timeout 2 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$2" >&3
    IFS= read -r line <&3 && [[ "$line" == HTTP/* ]] && printf "%s" "$line" | cut -d" " -f2
    cat <&3 >/dev/null
  ' _ "$1" "$2" 2>/dev/null
}

listeners() { ss -ltnpH "sport = :$1" 2>/dev/null || true; }
# Every port we are about to bind must be free: otherwise a stranger's server (another engineer's stack, a
# leftover) would answer our readiness probes and we would report its stack as ours.
require_free_ports() { # require_free_ports <what> <port...>
  local what="$1" port
  shift
  for port in "$@"; do
    [ -z "$(listeners "$port")" ] || die "port $port (for $what) is already in use: $(listeners "$port" | head -1)"
  done
}

node_supports_ts() { [ -n "$1" ] && [ -x "$1" ] && "$1" --experimental-strip-types -e 0 >/dev/null 2>&1; }

# group_listen_ports <pgid...>: the TCP ports any live member of these process groups listens on (any
# address), one per line. Each stack starts its servers with setsid, so a group holds a server and whatever
# it forked (kc.sh's JVM).
group_listen_ports() {
  local pgid p
  for pgid in "$@"; do
    for p in $(group_members "$pgid"); do
      ss -ltnpH 2>/dev/null | awk -v pat="pid=$p," 'index($0, pat) { n = split($4, a, ":"); print a[n] }'
    done
  done | sort -un
}

# require_chosen_ports <what> <port or lo-hi,...> <pgid...>: every port the groups listen on is one the
# script chose, so that two stacks (two checkouts, CI beside a developer) can never meet on a port that
# nobody picked. Dies naming the stray listener.
require_chosen_ports() {
  local what="$1" chosen="$2" port c ok
  shift 2
  for port in $(group_listen_ports "$@"); do
    ok=0
    for c in ${chosen//,/ }; do
      case "$c" in
      *-*) if [ "$port" -ge "${c%-*}" ] && [ "$port" -le "${c#*-}" ]; then ok=1; fi ;;
      *) if [ "$port" = "$c" ]; then ok=1; fi ;;
      esac
    done
    [ "$ok" = 1 ] || die "$what listens on 127.0.0.1:$port, a port the script did not choose (chosen: $chosen)"
  done
}

# The fixed-port OIDC issuer minio.sh and seaweedfs.sh start before their server (which reads the issuer
# URL once, at start): test/stack/seaweedfs-issuer.ts, the tests' issuer code, with its key kept in the
# stack's KEY_FILE; TypeScript run by Node's type stripping. The script sets ISSUER_PORT, ISSUER_PID,
# KEY_FILE, LOG_DIR and defines wait_until with this file's signature.
issuer_alive() { pidfile_alive "$ISSUER_PID" seaweedfs-issuer.ts; }
issuer_ready() {
  [ -s "$KEY_FILE" ] && [ -n "$(http_status "$ISSUER_PORT" /issuer/.well-known/openid-configuration)" ]
}
stop_issuer() { stop_pidfile "$ISSUER_PID" seaweedfs-issuer.ts; }

# start_issuer: on a free ISSUER_PORT, with a Node >= 22.22 (the repo's Node 24 of scripts/env.sh, else the
# PATH's); waits until it serves its discovery and checks that our PID is the port's listener.
start_issuer() {
  local node_bin="$REPO_ROOT/scripts/node24/node_modules/node/bin/node" t0 pid
  node_supports_ts "$node_bin" || node_bin="$(command -v node || true)"
  node_supports_ts "$node_bin" || die "no Node >= 22.22 for the issuer (. scripts/env.sh)"
  require_free_ports issuer "$ISSUER_PORT"
  t0="$(now)"
  ISSUER_PORT="$ISSUER_PORT" ISSUER_KEY_FILE="$KEY_FILE" \
    setsid "$node_bin" --experimental-strip-types --no-warnings "$REPO_ROOT/test/stack/seaweedfs-issuer.ts" \
    </dev/null >"$LOG_DIR/issuer.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$ISSUER_PID"
  wait_until 30 issuer "$ISSUER_PID" issuer_ready
  listeners "$ISSUER_PORT" | grep -q "pid=$pid," ||
    die "issuer (pid $pid) is not the listener on port $ISSUER_PORT: $(listeners "$ISSUER_PORT" | head -1)"
  log "issuer in $(since "$t0") (http://127.0.0.1:$ISSUER_PORT/issuer)"
}

# with_lock <cmd...>: up/down of one STACK_DIR are serialized (parallel test workers may all call `up`). The
# lock file sits next to STACK_DIR because `down` removes STACK_DIR. Daemons are started with fd 9 closed.
# STACK_LOCK_WAIT_S: how long to wait for the lock (default 180; empty: without limit).
with_lock() {
  mkdir -p "$(dirname "$STACK_DIR")"
  exec 9>"${STACK_DIR%/}.lock"
  if [ -n "${STACK_LOCK_WAIT_S-180}" ]; then
    flock -w "${STACK_LOCK_WAIT_S-180}" 9 || die "timed out waiting for ${STACK_DIR%/}.lock"
  else
    flock 9
  fi
  "$@"
}

# stack_status: the env of a stack that is up (the script's all_up says so) on stdout, else exit 1.
stack_status() {
  if [ -d "$STACK_DIR" ] && all_up; then
    cat "$ENV_FILE"
    return 0
  fi
  log "not up ($STACK_DIR)"
  return 1
}

# stack_main <command>: the command dispatch of a stack script; up and down run under with_lock.
stack_main() {
  case "${1:-}" in
    install) cmd_install ;;
    up) with_lock cmd_up ;;
    down) with_lock cmd_down ;;
    status) stack_status ;;
    *)
      echo "usage: $0 install|up|down|status" >&2
      exit 2
      ;;
  esac
}
