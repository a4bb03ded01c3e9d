#!/usr/bin/env bash
# A real node for the kube-apiserver stack (test/stack/kube-apiserver.sh): containerd + runc (Debian) and a
# kubelet, kube-controller-manager and kube-scheduler built from k8s.io/kubernetes (test/stack/kube-build.sh,
# one go build with kube-apiserver). Everything runs inside one private mount namespace held by a
# `unshare -m` holder process and under its own cgroup root, on 127.0.0.1 only; pods run with
# hostNetwork (no CNI). Nothing machine-wide changes: the three sysctls the kubelet sets are files of ours
# bind-mounted over /proc/sys inside the namespace.
#
#   test/stack/kube-node.sh install        apt containerd runc busybox-static; the kube binaries; the pause binary
#   test/stack/kube-node.sh up             start containerd, kubelet, controller-manager, scheduler (idempotent)
#   test/stack/kube-node.sh down           stop every process of the namespace, remove its cgroups and state;
#                                          then `leftovers`: exit 1, keeping the state dir, if anything remains
#   test/stack/kube-node.sh leftovers      name what a stopped node left behind (exit 1 if anything): a process
#                                          in its cgroup root or mount namespace, a cgroup of its root in any
#                                          hierarchy, a mount of the state dir (or over the three sysctls) in
#                                          the caller's mount table, one of the three sysctls not reading as
#                                          it did before `up`
#   test/stack/kube-node.sh status         print the env and exit 0 when up; exit 1 otherwise
#   test/stack/kube-node.sh import <tar>   import an OCI image archive into the node's containerd (k8s.io)
#   test/stack/kube-node.sh exec <cmd...>  run a command inside the node's mount namespace (ctr, crictl, ls)
#
# Environment:
#   KUBE_NODE_STACK_DIR   state dir (default <repo>/.stack/kube-node)
#   KUBE_STACK_DIR        the API server stack's state dir (default <repo>/.stack/kube); it must be up
#   KUBE_NODE_PORT        first of three ports on 127.0.0.1: kubelet, its healthz, containerd's stream
#                         server (default 19250)
#   KUBE_NODE_NAME        node name (default sts-node)
#   KUBE_VERSION, STS_CACHE_DIR   as in kube-build.sh
#
# `up` writes ${KUBE_NODE_STACK_DIR}/env and env.json: the node name, the holder PID (its /proc/<pid>/root
# shows the node's view: pod logs under /var/log/pods), the cgroup root and the containerd socket.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${KUBE_NODE_STACK_DIR:-$REPO_ROOT/.stack/kube-node}"
KUBE_DIR="${KUBE_STACK_DIR:-$REPO_ROOT/.stack/kube}"
NODE_PORT="${KUBE_NODE_PORT:-19250}"
NODE_NAME="${KUBE_NODE_NAME:-sts-node}"
# One cgroup root per stack dir, so two stacks (CI's and a developer's) never share one.
CGROUP_ROOT="sts-node-$(printf '%s' "$STACK_DIR" | sha256sum | cut -c1-8)"

RUN_DIR="$STACK_DIR/run"
LOG_DIR="$STACK_DIR/log"
PKI="$STACK_DIR/pki"
CTRD_DIR="$STACK_DIR/containerd"
SOCK="$CTRD_DIR/containerd.sock"
HOLDER_PID="$RUN_DIR/holder.pid"
ENV_FILE="$STACK_DIR/env"
ENV_JSON="$STACK_DIR/env.json"
DAEMONS="containerd kubelet kube-controller-manager kube-scheduler"
# What the kubelet sets at start (inside the namespace, over files of ours): the machine's values are
# recorded at `up` and must read the same after `down`.
NODE_SYSCTLS="vm.overcommit_memory kernel.panic kernel.panic_on_oops"
SYSCTL_RECORD="$STACK_DIR/machine-sysctls"
MNTNS_RECORD="$RUN_DIR/mntns"

STACK_NAME=kube-node # log and die prefix their lines with it
# shellcheck source=test/stack/lib.sh
. "$REPO_ROOT/test/stack/lib.sh"
# shellcheck source=test/stack/kube-build.sh
. "$REPO_ROOT/test/stack/kube-build.sh"
STACK_LOCK_WAIT_S=
# kube-controller-manager's comm is cut to 15 characters: the pid files are matched on the command line.
PIDFILE_MATCH_CMDLINE=1
PAUSE_BIN="$KUBE_BUILD_DIR/pause"
PAUSE_IMAGE="sts-test.local/pause:$KUBE_VERSION"

# ---- install --------------------------------------------------------------------------------------

install_packages() {
  if command -v containerd >/dev/null && command -v runc >/dev/null && command -v busybox >/dev/null; then
    log "containerd, runc, busybox already installed ($(containerd --version | cut -d' ' -f3))"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "installing containerd needs root"
  local t0 policy=/usr/sbin/policy-rc.d created_policy=0 ok=1
  t0="$(now)"
  export DEBIAN_FRONTEND=noninteractive
  # The package would start a system containerd where there is an init system: policy-rc.d says no.
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, test/stack/kube-node.sh install: no service starts\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    created_policy=1
  fi
  if ! apt-get install -y -qq --no-install-recommends containerd runc busybox-static >/tmp/kube-node-apt.log 2>&1; then
    apt-get update -qq >>/tmp/kube-node-apt.log 2>&1 || true
    apt-get install -y -qq --no-install-recommends containerd runc busybox-static >>/tmp/kube-node-apt.log 2>&1 || ok=0
  fi
  [ "$created_policy" -eq 0 ] || rm -f "$policy"
  [ "$ok" -eq 1 ] || die "apt-get install containerd runc busybox-static failed, see /tmp/kube-node-apt.log"
  log "containerd, runc, busybox-static installed in $(since "$t0")"
}

# The sandbox ("pause") process, from the kubernetes module's own source, static so its image is one file.
install_pause() {
  if [ -x "$PAUSE_BIN" ]; then
    log "pause already built"
    return 0
  fi
  if ! command -v gcc >/dev/null; then
    apt-get install -y -qq --no-install-recommends gcc libc6-dev >>/tmp/kube-node-apt.log 2>&1 ||
      die "gcc is needed to build pause (apt-get install gcc libc6-dev), see /tmp/kube-node-apt.log"
  fi
  local src
  src="$(kube_module_dir)/build/pause/linux/pause.c"
  [ -s "$src" ] || die "no $src"
  gcc -Os -static -o "$PAUSE_BIN.tmp" "$src" -DVERSION="\"$KUBE_VERSION\""
  strip "$PAUSE_BIN.tmp" 2>/dev/null || true
  mv "$PAUSE_BIN.tmp" "$PAUSE_BIN"
  log "pause built ($(du -h "$PAUSE_BIN" | cut -f1))"
}

cmd_install() {
  install_packages
  kube_build
  install_pause
}

# ---- the namespace --------------------------------------------------------------------------------

holder() { tr -d '[:space:]' <"$HOLDER_PID" 2>/dev/null || true; }
# `unshare -m sleep infinity` becomes `sleep` in its own mount namespace: both checked.
holder_alive() { pidfile_alive "$HOLDER_PID" sleep && [ "$(ns_id "$(holder)")" != "$(ns_id $$)" ]; }
in_ns() { nsenter -t "$(holder)" -m -- "$@"; }
ns_id() { readlink "/proc/$1/ns/mnt" 2>/dev/null || true; }
# A process of the node's mount namespace: its namespace id, confirmed by the namespace's own bind mount of
# our sysctl file (a namespace id can be reused once the namespace is gone).
in_node_ns() { # in_node_ns <pid> <ns-id>
  [ "$(ns_id "$1")" = "$2" ] || return 1
  awk -v want="$STACK_DIR/sysctl/panic" '$5 == "/proc/sys/kernel/panic" && $4 != "/" &&
    substr(want, length(want) - length($4) + 1) == $4 { found = 1 } END { exit !found }' \
    "/proc/$1/mountinfo" 2>/dev/null
}

# The node's mount namespace: the holder's while it lives, else the one recorded at `up` (a container or
# daemon may outlive the holder).
node_ns() {
  if holder_alive; then
    ns_id "$(holder)"
  elif [ -s "$MNTNS_RECORD" ]; then
    cat "$MNTNS_RECORD"
  fi
}

# PIDs of the node's mount namespace: the daemons, the shims and every container process.
ns_members() {
  local want p
  want="$(node_ns)"
  [ -n "$want" ] || return 0
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    [ "$p" = "$$" ] && continue
    in_node_ns "$p" "$want" && pid_alive "$p" && printf '%s\n' "$p"
  done
  return 0
}

cgroup_dirs() { # every cgroup directory of our root, in each v1 hierarchy and in the cgroup2 tree
  local base
  for base in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -d "$base$CGROUP_ROOT" ] && printf '%s\n' "$base$CGROUP_ROOT"
  done
  return 0
}

cgroup_members() { # every process in any cgroup of our root (containers, pause), one PID a line
  local d
  for d in $(cgroup_dirs); do find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -un
  return 0
}

remove_cgroups() {
  local d i members
  # Containers run in mount namespaces of their own, so the namespace sweep of stop_all misses a container
  # whose shim is gone (runc leaves it running, reparented to init); our cgroup root holds all of them.
  for i in 1 2 3 4 5; do
    members="$(cgroup_members)"
    [ -n "$members" ] || break
    # shellcheck disable=SC2086
    kill -KILL $members 2>/dev/null || true
    sleep 0.3
  done
  for d in $(cgroup_dirs); do
    for i in 1 2 3 4 5 6 7 8 9 10; do
      # Deepest first; rmdir on a cgroup only works once it is empty.
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$d" ] || break
      sleep 0.3
    done
    [ ! -d "$d" ] || log "warning: could not remove cgroup $d"
  done
}

# ---- what must not remain -------------------------------------------------------------------------

sysctl_path() { printf '/proc/sys/%s' "${1//.//}"; }

record_sysctls() { # the machine's values, read before the namespace exists
  local k
  for k in $NODE_SYSCTLS; do printf '%s=%s\n' "$k" "$(tr -d '[:space:]' <"$(sysctl_path "$k")")"; done \
    >"$SYSCTL_RECORD"
}

# leftovers: one line on stdout per thing the node left behind; nothing when the machine is as before.
leftovers() {
  local d f p ns k before after
  local -A seen=()
  for d in $(cgroup_dirs); do
    while IFS= read -r f; do
      for p in $(cat "$f" 2>/dev/null); do
        [ -z "${seen[$p]:-}" ] && pid_alive "$p" || continue
        seen[$p]=1
        printf 'process %s (%s) in cgroup %s\n' "$p" "$(cat "/proc/$p/comm" 2>/dev/null)" "${f%/cgroup.procs}"
      done
    done < <(find "$d" -name cgroup.procs 2>/dev/null)
    printf 'cgroup %s\n' "$d"
  done
  if [ -s "$MNTNS_RECORD" ]; then
    ns="$(cat "$MNTNS_RECORD")"
    for p in /proc/[0-9]*; do
      p="${p#/proc/}"
      [ "$p" != "$$" ] && [ -z "${seen[$p]:-}" ] && in_node_ns "$p" "$ns" && pid_alive "$p" || continue
      printf 'process %s (%s) in the node mount namespace %s\n' "$p" "$(cat "/proc/$p/comm" 2>/dev/null)" "$ns"
    done
  fi
  # Our mounts live and die in the namespace: none may show in the caller's mount table.
  awk -v dir="$STACK_DIR" '
    index($5, dir "/") == 1 || $5 == dir || index($0, " " dir "/") || index($0, "=" dir "/") ||
    $5 == "/proc/sys/vm/overcommit_memory" || $5 == "/proc/sys/kernel/panic" ||
    $5 == "/proc/sys/kernel/panic_on_oops" { print "mount " $5 " (" $0 ")" }' /proc/self/mountinfo
  if [ -s "$SYSCTL_RECORD" ]; then
    for k in $NODE_SYSCTLS; do
      before="$(sed -n "s/^$k=//p" "$SYSCTL_RECORD")"
      after="$(tr -d '[:space:]' <"$(sysctl_path "$k")")"
      [ "$before" = "$after" ] || printf 'sysctl %s is %s, was %s before up\n' "$k" "$after" "$before"
    done
  fi
  return 0
}

cmd_leftovers() {
  local found l
  found="$(leftovers)"
  if [ -n "$found" ]; then
    while IFS= read -r l; do log "left behind: $l"; done <<<"$found"
    return 1
  fi
  log "nothing left behind ($STACK_DIR)"
}

# ---- up / down ------------------------------------------------------------------------------------

node_ready_for_pods() { # the node object exists (the kubelet registered it)
  curl -fsS --max-time 2 --cacert "$KUBE_DIR/pki/ca.crt" -H "@$KUBE_DIR/admin.header" \
    "$(kube_url)/api/v1/nodes/$NODE_NAME" >/dev/null 2>&1
}
containerd_answers() { in_ns ctr -a "$SOCK" version >/dev/null 2>&1; }
kube_url() { sed -n 's/^KUBE_APISERVER_URL=//p' "$KUBE_DIR/env"; }
kube_api() { # kube_api <method> <path> [json]
  curl -fsS --max-time 10 --cacert "$KUBE_DIR/pki/ca.crt" -H "@$KUBE_DIR/admin.header" \
    -H 'Content-Type: application/json' -X "$1" "$(kube_url)$2" ${3:+--data "$3"}
}

all_up() {
  holder_alive || return 1
  local d
  for d in $DAEMONS; do pidfile_alive "$RUN_DIR/$d.pid" "$d" || return 1; done
  [ -s "$ENV_JSON" ] && node_ready_for_pods
}

client_cert() { # client_cert <name> <CN> <O>: a client certificate signed by the API server stack's CA
  (
    cd "$PKI"
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/O=$3/CN=$2" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$KUBE_DIR/pki/ca.crt" -CAkey "$KUBE_DIR/pki/ca.key" -CAcreateserial \
      -CAserial "$PKI/ca.srl" -out "$1.crt" -days 2 -extfile "$1.ext" 2>/dev/null
    chmod 600 "$1.key"
  )
  cat >"$PKI/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: sts-test
    cluster: { server: "$(kube_url)", certificate-authority: "$KUBE_DIR/pki/ca.crt" }
users:
  - name: $1
    user: { client-certificate: "$PKI/$1.crt", client-key: "$PKI/$1.key" }
contexts:
  - name: $1
    context: { cluster: sts-test, user: $1 }
current-context: $1
EOF
}

write_configs() {
  mkdir -p "$CTRD_DIR" "$STACK_DIR/cni/bin" "$STACK_DIR/cni/conf" "$STACK_DIR/kubelet" \
    "$STACK_DIR/sysctl" "$STACK_DIR/volume-plugins"
  cat >"$CTRD_DIR/config.toml" <<EOF
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD_DIR/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # root here lacks CAP_SYS_RESOURCE: runc could not give the sandbox its oom_score_adj of -998.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "$((NODE_PORT + 2))"
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$STACK_DIR/cni/bin"
    conf_dir = "$STACK_DIR/cni/conf"
EOF
  # The values the kubelet writes at start, in files of ours bind-mounted over /proc/sys in the namespace.
  printf '1\n' >"$STACK_DIR/sysctl/overcommit_memory"
  printf '10\n' >"$STACK_DIR/sysctl/panic"
  printf '1\n' >"$STACK_DIR/sysctl/panic_on_oops"
  cat >"$STACK_DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $NODE_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $((NODE_PORT + 1))
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: false }
  x509: { clientCAFile: "$KUBE_DIR/pki/ca.crt" }
authorization: { mode: AlwaysAllow }
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
cgroupsPerQOS: true
containerRuntimeEndpoint: unix://$SOCK
failSwapOn: false
resolvConf: ""
volumePluginDir: $STACK_DIR/volume-plugins
podLogsDir: /var/log/pods
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
protectKernelDefaults: false
syncFrequency: 10s
fileCheckFrequency: 0s
staticPodPath: ""
EOF
}

start_in_ns() { # start_in_ns <name> <cmd...>: a daemon inside the namespace, its PID in run/<name>.pid
  local name="$1"
  shift
  setsid nsenter -t "$(holder)" -m -- "$@" </dev/null >"$LOG_DIR/$name.log" 2>&1 9>&- &
  echo $! >"$RUN_DIR/$name.pid"
}

stop_all() {
  local d members i
  for d in kube-scheduler kube-controller-manager kubelet; do stop_pidfile "$RUN_DIR/$d.pid" "$d" 10; done
  if [ -n "$(node_ns)" ]; then
    # The shims and the containers: TERM, then KILL; containerd last but in the same sweep is fine.
    for i in 1 2; do
      members="$(ns_members | grep -vx "$(holder)" || true)"
      [ -n "$members" ] || break
      # shellcheck disable=SC2086
      kill -TERM $members 2>/dev/null || true
      for _ in $(seq 1 50); do
        members="$(ns_members | grep -vx "$(holder)" || true)"
        [ -n "$members" ] || break
        sleep 0.1
      done
      # shellcheck disable=SC2086
      [ -z "$members" ] || kill -KILL $members 2>/dev/null || true
    done
    stop_pidfile "$HOLDER_PID" sleep 5
  fi
  remove_cgroups
}

cmd_down() {
  [ -d "$STACK_DIR" ] || {
    log "nothing to stop ($STACK_DIR absent)"
    return 0
  }
  [ -d "$RUN_DIR" ] || [ -d "$PKI" ] || [ -z "$(ls -A "$STACK_DIR")" ] ||
    die "$STACK_DIR does not look like a kube-node state dir; not removing it"
  stop_all
  # Checked, not assumed: the state dir (the sysctl record with it) stays for a second look when anything does.
  cmd_leftovers || die "down left the above behind; $STACK_DIR kept"
  # The namespace is gone with its last process: its mounts with it. Overlay work dirs may be root-only 000.
  chmod -R u+rwX "$STACK_DIR" 2>/dev/null || true
  rm -rf "$STACK_DIR"
  log "down"
}

write_env() {
  cat >"$ENV_FILE" <<EOF
KUBE_NODE_NAME=$NODE_NAME
KUBE_NODE_HOLDER_PID=$(holder)
KUBE_NODE_CGROUP_ROOT=/$CGROUP_ROOT
KUBE_NODE_CONTAINERD_SOCK=$SOCK
KUBE_NODE_PAUSE_IMAGE=$PAUSE_IMAGE
EOF
  {
    printf '{\n'
    printf '  "nodeName": "%s",\n' "$NODE_NAME"
    printf '  "holderPid": %s,\n' "$(holder)"
    printf '  "cgroupRoot": "/%s",\n' "$CGROUP_ROOT"
    printf '  "containerdSocket": "%s",\n' "$SOCK"
    printf '  "pauseImage": "%s",\n' "$PAUSE_IMAGE"
    printf '  "logDir": "%s"\n' "$LOG_DIR"
    printf '}\n'
  } >"$ENV_JSON.tmp"
  mv "$ENV_JSON.tmp" "$ENV_JSON"
}

cmd_up() {
  if [ -d "$STACK_DIR" ] && all_up; then
    log "already up ($STACK_DIR)"
    cat "$ENV_FILE"
    return 0
  fi
  command -v containerd >/dev/null || die "containerd not installed; run: $0 install"
  kube_binaries_built || die "kubernetes binaries not built in $KUBE_BUILD_DIR; run: $0 install"
  [ -x "$PAUSE_BIN" ] || die "pause not built ($PAUSE_BIN); run: $0 install"
  [ -s "$KUBE_DIR/env" ] && [ -s "$KUBE_DIR/admin.header" ] || [ -s "$KUBE_DIR/admin.token" ] ||
    die "the kube-apiserver stack is not up ($KUBE_DIR); run: test/stack/kube-apiserver.sh up"
  [ -s "$KUBE_DIR/admin.header" ] ||
    (umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$KUBE_DIR/admin.token")" >"$KUBE_DIR/admin.header")
  [ -d "$STACK_DIR" ] && {
    log "stale state in $STACK_DIR; cleaning it up"
    cmd_down
  }
  local p
  for p in "$NODE_PORT" "$((NODE_PORT + 1))" "$((NODE_PORT + 2))"; do
    port_in_use "$p" && die "127.0.0.1:$p is already in use (choose KUBE_NODE_PORT)"
  done
  [ -z "$(cgroup_dirs)" ] || remove_cgroups
  local t_all t0
  t_all="$(now)"
  trap '[ "${UP_OK:-}" = 1 ] || stop_all' EXIT
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$PKI" "$STACK_DIR/varlog" "$STACK_DIR/images"
  record_sysctls
  write_configs
  client_cert kubelet "system:node:$NODE_NAME" system:nodes
  client_cert controller-manager system:kube-controller-manager ''
  client_cert scheduler system:kube-scheduler ''
  # RBAC only (no Node authorizer): the kubelets' group gets the system:node role.
  kube_api PUT /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/sts-test-system-nodes \
    '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"sts-test-system-nodes"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"system:node"},"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"system:nodes"}]}' >/dev/null ||
    die "could not bind system:node to system:nodes"

  # The holder: a process in a private mount namespace, kept alive until down.
  setsid unshare -m --propagation private sleep infinity </dev/null >/dev/null 2>&1 9>&- &
  echo $! >"$HOLDER_PID"
  for _ in $(seq 1 50); do
    holder_alive && break
    sleep 0.05
  done
  holder_alive || die "unshare -m failed"
  ns_id "$(holder)" >"$MNTNS_RECORD"
  # Inside the namespace only: a tmpfs for /run (shim sockets, runc state), our /var/log, the sysctls.
  in_ns sh -euc "
    mount -t tmpfs -o mode=0755 tmpfs /run
    mkdir -p /run/containerd
    mount --bind '$STACK_DIR/varlog' /var/log
    mount --bind '$STACK_DIR/sysctl/overcommit_memory' /proc/sys/vm/overcommit_memory
    mount --bind '$STACK_DIR/sysctl/panic' /proc/sys/kernel/panic
    mount --bind '$STACK_DIR/sysctl/panic_on_oops' /proc/sys/kernel/panic_on_oops
  "
  for p in /sys/fs/cgroup/*/; do
    [ "$(basename "$p")" = unified ] && continue
    mkdir -p "$p$CGROUP_ROOT"
  done
  # cpuset: a new cgroup starts with no CPUs or memory nodes; copy the parent's.
  if [ -d "/sys/fs/cgroup/cpuset/$CGROUP_ROOT" ]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$CGROUP_ROOT/cpuset.cpus"
    cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$CGROUP_ROOT/cpuset.mems"
  fi

  t0="$(now)"
  start_in_ns containerd containerd --config "$CTRD_DIR/config.toml"
  wait_until 30 containerd "$RUN_DIR/containerd.pid" containerd_answers
  log "containerd up in $(since "$t0")"
  cmd_import_quiet "$(pause_archive)"

  t0="$(now)"
  start_in_ns kubelet "$KUBE_BUILD_DIR/kubelet" --config "$STACK_DIR/kubelet/config.yaml" \
    --kubeconfig "$PKI/kubelet.kubeconfig" --root-dir "$STACK_DIR/kubelet/root" --cert-dir "$PKI/kubelet-serving" \
    --hostname-override "$NODE_NAME" --v=1
  start_in_ns kube-controller-manager "$KUBE_BUILD_DIR/kube-controller-manager" \
    --kubeconfig "$PKI/controller-manager.kubeconfig" --use-service-account-credentials=true \
    --root-ca-file "$KUBE_DIR/pki/ca.crt" --service-account-private-key-file "$KUBE_DIR/pki/sa.key" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 --v=1
  start_in_ns kube-scheduler "$KUBE_BUILD_DIR/kube-scheduler" --kubeconfig "$PKI/scheduler.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 --v=1
  wait_until 60 kubelet "$RUN_DIR/kubelet.pid" node_ready_for_pods
  log "node $NODE_NAME registered in $(since "$t0")"
  write_env
  UP_OK=1
  log "up in $(since "$t_all")"
  cat "$ENV_FILE"
}

# ---- images ---------------------------------------------------------------------------------------

pause_archive() { # the pause image as an OCI archive (made once per stack dir)
  local out="$STACK_DIR/images/pause.tar"
  [ -s "$out" ] || bash "$REPO_ROOT/scripts/oci-archive.sh" --name "$PAUSE_IMAGE" --entrypoint '["/pause"]' \
    --user 65535:65535 --file "$PAUSE_BIN:/pause:0755" --out "$out" >/dev/null
  printf '%s' "$out"
}

cmd_import_quiet() {
  [ -s "$1" ] || die "no image archive $1"
  in_ns ctr -a "$SOCK" -n k8s.io images import "$1" >/dev/null ||
    die "ctr images import $1 failed"
}

case "${1:-}" in
  import)
    [ $# -eq 2 ] || die "usage: $0 import <oci-archive.tar>"
    holder_alive || die "the node is not up"
    t0="$(now)"
    cmd_import_quiet "$(realpath "$2")"
    log "imported $2 in $(since "$t0")"
    ;;
  leftovers) cmd_leftovers ;;
  exec)
    shift
    holder_alive || die "the node is not up"
    in_ns "$@"
    ;;
  *) stack_main "$@" ;;
esac
