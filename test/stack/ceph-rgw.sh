#!/usr/bin/env bash
# Single-node Ceph (one mon, one memstore OSD, no mgr) plus radosgw with STS enabled, on loopback only.
#
#   test/stack/ceph-rgw.sh install   apt-get the Ceph packages when missing (idempotent, quiet)
#   test/stack/ceph-rgw.sh up        start mon + osd + radosgw (idempotent: prints the env when already up)
#   test/stack/ceph-rgw.sh down      stop exactly the PIDs in the pid files, remove the state dir
#   test/stack/ceph-rgw.sh status    print the env and exit 0 when up; exit 1 otherwise
#
# Environment:
#   STACK_DIR          state dir (default <repo>/.stack/ceph): conf, keyrings, pids, logs, env, env.json
#   RGW_PORT           radosgw beast port on 127.0.0.1 (default 7480)
#   CEPH_MON_PORT      mon msgr2 port on 127.0.0.1 (default 3300); msgr1 is CEPH_MON_V1_PORT (default 6789)
#   CEPH_OSD_PORT_MIN  first of the ten ports the OSD may bind (default CEPH_MON_PORT + 1)
#   CEPH_MEMSTORE_MB   memstore OSD capacity in MiB (default 512)
#
# `up` writes ${STACK_DIR}/env (shell KEY=VALUE) and ${STACK_DIR}/env.json; timings go to stderr.
# Needs root (ceph daemons, /dev/shm-free memstore). Every socket is bound to 127.0.0.1.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${STACK_DIR:-$REPO_ROOT/.stack/ceph}"
RGW_PORT="${RGW_PORT:-7480}"
MON_PORT="${CEPH_MON_PORT:-3300}"
MON_V1_PORT="${CEPH_MON_V1_PORT:-6789}"
# The OSD's eight messenger sockets (public, cluster and two heartbeat networks, msgr2 and msgr1): pinned to
# a range of ten, not Ceph's default 6800-7300, so that every port of the stack is one this script chose.
OSD_PORT_MIN="${CEPH_OSD_PORT_MIN:-$((MON_PORT + 1))}"
OSD_PORT_MAX="$((OSD_PORT_MIN + 9))"
MEMSTORE_MB="${CEPH_MEMSTORE_MB:-512}"
REGION="us-east-1"
PACKAGES=(ceph-mon ceph-osd radosgw ceph-common python3-boto3 awscli)

CONF="$STACK_DIR/ceph.conf"
RUN_DIR="$STACK_DIR/run"
LOG_DIR="$STACK_DIR/log"
ADMIN_KEYRING="$STACK_DIR/client.admin.keyring"
RGW_NAME="client.rgw.gw"
RGW_KEYRING="$STACK_DIR/$RGW_NAME.keyring"
MON_PID="$RUN_DIR/mon.a.pid"
OSD_PID="$RUN_DIR/osd.0.pid"
RGW_PID="$RUN_DIR/$RGW_NAME.pid"
RGW_ASOK="$RUN_DIR/$RGW_NAME.asok"
ENV_FILE="$STACK_DIR/env"
ENV_JSON="$STACK_DIR/env.json"

STACK_NAME=ceph-rgw # log and die prefix their lines with it
# shellcheck source=test/stack/lib.sh
. "$REPO_ROOT/test/stack/lib.sh"

ceph_admin() { timeout 30 ceph -c "$CONF" -n client.admin --keyring "$ADMIN_KEYRING" "$@"; }
rgw_admin() { timeout 60 radosgw-admin -c "$CONF" -n client.admin --keyring "$ADMIN_KEYRING" "$@"; }

# HTTP probe without curl: any HTTP status line from radosgw means it serves requests.
rgw_answers() {
  timeout 2 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
    IFS= read -r line <&3 && [[ "$line" == HTTP/* ]] && cat <&3 >/dev/null
  ' _ "$1" 2>/dev/null
}

wait_until() { # wait_until <seconds> <what> <pidfile|-> <cmd...>: fails fast when the daemon died
  local limit="$1" what="$2" pidfile="$3"
  shift 3
  local start
  start="$(now)"
  while ! "$@" >/dev/null 2>&1; do
    if [ "$pidfile" != - ] && [ -s "$pidfile" ] && ! pidfile_alive "$pidfile"; then
      die "$what exited during startup (logs: $LOG_DIR)"
    fi
    if awk -v a="$start" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      die "$what not ready after ${limit}s (logs: $LOG_DIR)"
    fi
    sleep 0.2
  done
}

all_up() {
  pidfile_alive "$MON_PID" ceph-mon && pidfile_alive "$OSD_PID" ceph-osd && pidfile_alive "$RGW_PID" radosgw &&
    [ -s "$ENV_JSON" ] &&
    rgw_answers "$(sed -n 's/^RGW_PORT=//p' "$ENV_FILE")"
}

cmd_install() {
  local missing=()
  command -v ceph-mon >/dev/null || missing+=(ceph-mon)
  command -v ceph-osd >/dev/null || missing+=(ceph-osd)
  command -v radosgw >/dev/null || missing+=(radosgw)
  command -v ceph >/dev/null || missing+=(ceph-common)
  python3 -c 'import boto3' 2>/dev/null || dpkg -s python3-boto3 >/dev/null 2>&1 || missing+=(python3-boto3)
  [ -x /usr/bin/aws ] || missing+=(awscli) # a pyenv shim named aws may shadow it on PATH
  if [ "${#missing[@]}" -eq 0 ]; then
    log "packages already installed"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "install needs root"
  local t0
  t0="$(now)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/tmp/ceph-rgw-apt.log 2>&1; then
    apt-get update -qq >>/tmp/ceph-rgw-apt.log 2>&1 || true
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >>/tmp/ceph-rgw-apt.log 2>&1 ||
      die "apt-get install failed, see /tmp/ceph-rgw-apt.log"
  fi
  log "packages installed in $(since "$t0") (${missing[*]} were missing)"
}

cmd_down() {
  [ -d "$STACK_DIR" ] || {
    log "nothing to stop ($STACK_DIR absent)"
    return 0
  }
  local t0
  t0="$(now)"
  stop_pidfile "$RGW_PID" radosgw
  stop_pidfile "$OSD_PID" ceph-osd
  stop_pidfile "$MON_PID" ceph-mon
  # Refuse to rm -rf anything that is not obviously our state dir.
  [ -f "$CONF" ] || [ -d "$RUN_DIR" ] || [ -z "$(ls -A "$STACK_DIR")" ] ||
    die "$STACK_DIR does not look like a ceph-rgw state dir; not removing it"
  rm -rf "$STACK_DIR"
  log "down in $(since "$t0")"
}

print_env() { cat "$ENV_FILE"; }

write_conf() {
  local fsid="$1" sts_key="$2"
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon initial members = a
mon host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.1/32
ms bind ipv6 = false
ms bind ipv4 = true
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $RUN_DIR
pid file = $RUN_DIR/\$name.pid
log file = $LOG_DIR/\$name.log
log to stderr = false
err to stderr = true
admin socket =
crash dir = $STACK_DIR/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 2
mon data avail crit = 1
# One mon, no peers: commit map changes quickly (defaults wait up to 1 s per proposal).
paxos propose interval = 0.05
paxos min wait = 0.01

[client.admin]
keyring = $ADMIN_KEYRING

[mon.a]
mon data = $STACK_DIR/mon.a
keyring = $STACK_DIR/mon.a/keyring
admin socket = $RUN_DIR/\$name.asok

[osd.0]
osd data = $STACK_DIR/osd.0
keyring = $STACK_DIR/osd.0/keyring
osd objectstore = memstore
ms bind port min = $OSD_PORT_MIN
ms bind port max = $OSD_PORT_MAX
memstore device bytes = $((MEMSTORE_MB * 1024 * 1024))
osd max object name len = 256
osd max object namespace len = 64
admin socket = $RUN_DIR/\$name.asok

[$RGW_NAME]
keyring = $RGW_KEYRING
rgw data = $STACK_DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw dns name = 127.0.0.1
rgw sts key = $sts_key
rgw s3 auth use sts = true
rgw verify ssl = false
rgw enable usage log = false
admin socket = $RUN_DIR/\$name.asok
EOF
}

chosen_ports() { printf '%s' "$MON_PORT,$MON_V1_PORT,$RGW_PORT,$OSD_PORT_MIN-$OSD_PORT_MAX"; }

write_env() {
  local ak="$1" sk="$2" mon_pid osd_pid rgw_pid
  mon_pid="$(tr -d '[:space:]' <"$MON_PID")"
  osd_pid="$(tr -d '[:space:]' <"$OSD_PID")"
  rgw_pid="$(tr -d '[:space:]' <"$RGW_PID")"
  {
    printf 'RGW_ENDPOINT=%s\n' "http://127.0.0.1:$RGW_PORT"
    printf 'RGW_PORT=%s\n' "$RGW_PORT"
    printf 'RGW_REGION=%s\n' "$REGION"
    printf 'RGW_ACCESS_KEY=%s\n' "$ak"
    printf 'RGW_SECRET_KEY=%s\n' "$sk"
    printf 'RGW_ADMIN_SOCKET=%q\n' "$RGW_ASOK"
    printf 'CEPH_CONF=%q\n' "$CONF"
    printf 'CEPH_ADMIN_KEYRING=%q\n' "$ADMIN_KEYRING"
    printf 'STACK_DIR=%q\n' "$STACK_DIR"
    printf 'MON_PID_FILE=%q\n' "$MON_PID"
    printf 'OSD_PID_FILE=%q\n' "$OSD_PID"
    printf 'RGW_PID_FILE=%q\n' "$RGW_PID"
    # What test/stack/listeners.test.ts checks: the process groups (each daemon leads its own) and every port
    # they may listen on.
    printf 'STACK_PIDS=%s\n' "$mon_pid,$osd_pid,$rgw_pid"
    printf 'STACK_LISTEN_PORTS=%s\n' "$(chosen_ports)"
  } >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  # Values are generated here (alnum keys, paths under STACK_DIR); escape \ and " for JSON anyway.
  j() { local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"; }
  {
    printf '{\n'
    printf '  "endpoint": %s,\n' "$(j "http://127.0.0.1:$RGW_PORT")"
    printf '  "port": %s,\n' "$RGW_PORT"
    printf '  "region": %s,\n' "$(j "$REGION")"
    printf '  "accessKeyId": %s,\n' "$(j "$ak")"
    printf '  "secretAccessKey": %s,\n' "$(j "$sk")"
    printf '  "adminSocket": %s,\n' "$(j "$RGW_ASOK")"
    printf '  "cephConf": %s,\n' "$(j "$CONF")"
    printf '  "adminKeyring": %s,\n' "$(j "$ADMIN_KEYRING")"
    printf '  "stackDir": %s,\n' "$(j "$STACK_DIR")"
    printf '  "pidFiles": { "mon": %s, "osd": %s, "rgw": %s },\n' "$(j "$MON_PID")" "$(j "$OSD_PID")" "$(j "$RGW_PID")"
    printf '  "pids": { "mon": %s, "osd": %s, "rgw": %s },\n' "$mon_pid" "$osd_pid" "$rgw_pid"
    printf '  "logDir": %s\n' "$(j "$LOG_DIR")"
    printf '}\n'
  } >"$ENV_JSON.tmp"
  mv "$ENV_JSON.tmp" "$ENV_JSON"
}

cmd_up() {
  if [ -d "$STACK_DIR" ] && all_up; then
    log "already up ($STACK_DIR)"
    print_env
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "up needs root"
  for b in ceph-mon ceph-osd radosgw ceph radosgw-admin ceph-authtool monmaptool; do
    command -v "$b" >/dev/null || die "$b not found; run: $0 install"
  done
  if [ -d "$STACK_DIR" ]; then
    log "stale state in $STACK_DIR; cleaning it up"
    cmd_down
  fi
  local p
  for p in "$MON_PORT" "$MON_V1_PORT" "$RGW_PORT" $(seq "$OSD_PORT_MIN" "$OSD_PORT_MAX"); do
    if port_in_use "$p"; then
      die "127.0.0.1:$p is already in use (another Ceph stack, e.g. one started from another checkout? stop it with that checkout's test/stack/ceph-rgw.sh down, or choose other ports with RGW_PORT, CEPH_MON_PORT, CEPH_MON_V1_PORT and CEPH_OSD_PORT_MIN)"
    fi
  done
  local t_all t0 fsid sts_key ak sk osd_uuid
  t_all="$(now)"
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$STACK_DIR/mon.a" "$STACK_DIR/osd.0" "$STACK_DIR/rgw" "$STACK_DIR/crash"
  chmod 700 "$STACK_DIR"
  fsid="$(uuidgen 2>/dev/null || cat /proc/sys/kernel/random/uuid)"
  sts_key="$(rand 16 'A-Za-z0-9')"
  ak="$(rand 20 'A-Z0-9')"
  sk="$(rand 40 'A-Za-z0-9')"
  write_conf "$fsid" "$sts_key"

  # --- mon ---
  t0="$(now)"
  ceph-authtool --create-keyring "$STACK_DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$ADMIN_KEYRING" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$STACK_DIR/mon.keyring" --import-keyring "$ADMIN_KEYRING" >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]" \
    "$STACK_DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$STACK_DIR/monmap" --keyring "$STACK_DIR/mon.keyring" 2>>"$LOG_DIR/setup.log"
  ceph-mon -c "$CONF" -i a 2>>"$LOG_DIR/setup.log" 9>&-
  wait_until 20 ceph-mon "$MON_PID" ceph_admin --connect-timeout 2 mon stat
  log "mon up in $(since "$t0") (pid $(cat "$MON_PID"))"

  # --- osd (memstore) ---
  t0="$(now)"
  osd_uuid="$(uuidgen 2>/dev/null || cat /proc/sys/kernel/random/uuid)"
  local osd_id
  osd_id="$(ceph_admin osd new "$osd_uuid")"
  [ "$osd_id" = 0 ] || die "expected osd id 0, got '$osd_id'"
  ceph-osd -c "$CONF" -i 0 --mkfs --mkkey --osd-uuid "$osd_uuid" --no-mon-config >>"$LOG_DIR/setup.log" 2>&1
  ceph_admin auth add osd.0 osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
    -i "$STACK_DIR/osd.0/keyring" >/dev/null 2>&1
  ceph-osd -c "$CONF" -i 0 2>>"$LOG_DIR/setup.log" 9>&-
  osd_is_up() { ceph_admin osd dump 2>/dev/null | grep -Eq '^osd\.0 up'; }
  wait_until 30 ceph-osd "$OSD_PID" osd_is_up
  log "osd up in $(since "$t0") (pid $(cat "$OSD_PID"), memstore ${MEMSTORE_MB} MiB)"

  # --- radosgw ---
  t0="$(now)"
  ceph_admin auth get-or-create "$RGW_NAME" mon 'allow rw' osd 'allow rwx' -o "$RGW_KEYRING" 2>/dev/null
  radosgw -c "$CONF" -n "$RGW_NAME" 2>>"$LOG_DIR/setup.log" 9>&-
  wait_until 45 radosgw "$RGW_PID" rgw_answers "$RGW_PORT"
  pidfile_alive "$RGW_PID" || die "radosgw pid file missing"
  log "radosgw answers on 127.0.0.1:$RGW_PORT in $(since "$t0") (pid $(cat "$RGW_PID"))"
  require_chosen_ports ceph "$(chosen_ports)" "$(cat "$MON_PID")" "$(cat "$OSD_PID")" "$(cat "$RGW_PID")"

  # --- admin user ---
  t0="$(now)"
  rgw_admin user create --uid=admin --display-name="sts-sidecar test admin" \
    --access-key="$ak" --secret-key="$sk" --caps="roles=*;oidc-provider=*;user-policy=*" \
    >/dev/null 2>>"$LOG_DIR/setup.log" || die "radosgw-admin user create failed (see $LOG_DIR/setup.log)"
  log "admin user in $(since "$t0")"

  write_env "$ak" "$sk"
  log "up in $(since "$t_all") ($STACK_DIR)"
  print_env
}

stack_main "$@"
