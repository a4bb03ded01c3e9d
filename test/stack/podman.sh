#!/usr/bin/env bash
# A Docker-API engine for testcontainers without Docker: Debian's podman, run as a service on a unix socket
# under the state dir, with its storage there too, and MinIO's image made locally (no registry).
#
#   test/stack/podman.sh install   apt-get install podman (Debian 12: 4.3) when missing
#   test/stack/podman.sh up        start `podman system service` and import the image (idempotent)
#   test/stack/podman.sh down      stop the service, remove its containers, storage and state dir
#   test/stack/podman.sh status    print the env and exit 0 when up; exit 1 otherwise
#
# Nothing machine-wide: storage (--root/--runroot/--tmpdir) and containers.conf (CONTAINERS_CONF) live in
# the state dir; containers run with host networking only (netns = "host": no network namespace, no bridge,
# no CNI network is ever created); the image is an OCI archive of the Go-built `minio` (test/stack/minio.sh
# install) made with tar and loaded with `podman import`. Podman puts its containers' cgroups under
# libpod_parent in this machine's cgroup tree; `down` removes those it left empty.
# Podman's default ulimits (nofile 1048576) cannot be set without CAP_SYS_RESOURCE here (runc: "error
# setting rlimit type 7: operation not permitted"): containers.conf sets none, containers keep the host's.
#
# Environment: STACK_DIR (default <repo>/.stack/podman).
# `up` writes ${STACK_DIR}/env: DOCKER_HOST, STSTEST_MINIO_LOCAL_IMAGE.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${STACK_DIR:-$REPO_ROOT/.stack/podman}"
MINIO_VERSION="$(sed -n 's/^MINIO_VERSION="\(.*\)"$/\1/p' "$REPO_ROOT/test/stack/minio.sh")"
MINIO_BIN="${MINIO_CACHE_DIR:-$HOME/.cache/sts-sidecar}/minio-$MINIO_VERSION/minio"
IMAGE="localhost/sts-sidecar-minio:${MINIO_VERSION##*-}"
SOCKET="$STACK_DIR/podman.sock"
PID_FILE="$STACK_DIR/service.pid"
ENV_FILE="$STACK_DIR/env"
CONF="$STACK_DIR/containers.conf"

STACK_NAME=podman # log and die prefix their lines with it
# shellcheck source=test/stack/lib.sh
. "$REPO_ROOT/test/stack/lib.sh"

podman_() {
  CONTAINERS_CONF="$CONF" podman --root "$STACK_DIR/root" --runroot "$STACK_DIR/run" --tmpdir "$STACK_DIR/tmp" \
    --storage-driver vfs "$@"
}

ping_ok() { [ -S "$SOCKET" ] && [ "$(curl -s --max-time 2 --unix-socket "$SOCKET" http://d/_ping 2>/dev/null || true)" = OK ]; }
all_up() { pidfile_alive "$PID_FILE" podman && ping_ok; }

cmd_install() {
  if command -v podman >/dev/null; then
    log "podman already installed ($(podman --version))"
    return 0
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends podman >&2
}

cmd_up() {
  if all_up && podman_ image exists "$IMAGE"; then
    log "already up ($SOCKET)"
    cat "$ENV_FILE"
    return 0
  fi
  command -v podman >/dev/null || die "podman is not installed; run test/stack/podman.sh install"
  command -v curl >/dev/null || die "curl is needed to probe the podman service"
  [ -x "$MINIO_BIN" ] || die "minio $MINIO_VERSION is not built; run test/stack/minio.sh install"
  local t0
  t0="$(now)"
  stop_pidfile "$PID_FILE" podman
  mkdir -p "$STACK_DIR"/{root,run,tmp}
  chmod 700 "$STACK_DIR"
  mkdir -p "$STACK_DIR/networks"
  # network_config_dir: an empty directory of ours, so the machine's CNI configuration (Debian's podman
  # ships a bridge with a private-range subnet) is never read: host networking is the only one there is.
  cat >"$CONF" <<EOF2
[containers]
default_ulimits = []
netns = "host"
[network]
network_config_dir = "$STACK_DIR/networks"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF2
  rm -f "$SOCKET"
  CONTAINERS_CONF="$CONF" setsid podman --root "$STACK_DIR/root" --runroot "$STACK_DIR/run" \
    --tmpdir "$STACK_DIR/tmp" --storage-driver vfs system service --time=0 "unix://$SOCKET" \
    </dev/null >"$STACK_DIR/service.log" 2>&1 9>&- &
  echo $! >"$PID_FILE"
  local i
  for i in $(seq 1 100); do
    ping_ok && break
    pid_alive "$(cat "$PID_FILE")" || die "podman system service exited (see $STACK_DIR/service.log)"
    sleep 0.2
  done
  ping_ok || die "podman system service does not answer on $SOCKET"
  if ! podman_ image exists "$IMAGE"; then
    local rootfs="$STACK_DIR/tmp/rootfs"
    rm -rf "$rootfs"
    mkdir -p "$rootfs/data" "$rootfs/tmp"
    cp "$MINIO_BIN" "$rootfs/minio"
    tar -C "$rootfs" -cf "$STACK_DIR/tmp/minio-rootfs.tar" .
    podman_ import --change 'ENTRYPOINT ["/minio"]' --change 'ENV HOME=/tmp' \
      "$STACK_DIR/tmp/minio-rootfs.tar" "$IMAGE" >/dev/null
    rm -rf "$rootfs" "$STACK_DIR/tmp/minio-rootfs.tar"
  fi
  cat >"$ENV_FILE" <<EOF2
DOCKER_HOST=unix://$SOCKET
STSTEST_MINIO_LOCAL_IMAGE=$IMAGE
EOF2
  log "up in $(since "$t0") ($SOCKET, image $IMAGE)"
  cat "$ENV_FILE"
}

cmd_down() {
  [ -d "$STACK_DIR" ] || {
    log "nothing to stop ($STACK_DIR absent)"
    return 0
  }
  if all_up; then podman_ rm -af -t 2 >/dev/null 2>&1 || true; fi
  stop_pidfile "$PID_FILE" podman
  podman_ system reset -f >/dev/null 2>&1 || rm -rf "$STACK_DIR/root" "$STACK_DIR/run"
  rm -rf "$STACK_DIR"
  # Empty cgroups podman left (it creates libpod_parent/ under each controller it uses).
  local d
  for d in /sys/fs/cgroup/*/libpod_parent; do
    # A cgroup directory is never "empty" (control files); rmdir succeeds once it has no tasks or children.
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  log "down"
}

stack_status() {
  if all_up; then
    cat "$ENV_FILE"
    return 0
  fi
  log "not up ($STACK_DIR)"
  return 1
}

stack_main "$@"
