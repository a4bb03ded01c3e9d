#!/usr/bin/env bash
# Packs a root filesystem into an OCI image archive (an OCI image layout as one tar: oci-layout, index.json,
# blobs/sha256/...; one uncompressed layer), with no Docker engine and no registry. Any OCI tool reads it:
#   ctr -n k8s.io images import <out>            (containerd; what test/stack/kube-node.sh does)
#   skopeo copy oci-archive:<out> docker://registry.example/sts-sidecar:0.1.0
#   crane push <out> registry.example/sts-sidecar:0.1.0   (after: tar -xf <out> -C dir; crane push dir ...)
#
#   scripts/oci-archive.sh --name <ref> --out <file.tar> [--rootfs <dir>] [--file <src>:<dst>:<mode>]...
#       [--entrypoint <json array>] [--cmd <json array>] [--user <uid:gid>] [--workdir <dir>]
#       [--env <KEY=VALUE>]... [--label <key=value>]... [--expose <port/tcp>]
#
# Files are owned by root (0:0) in the layer, with their modes; times are fixed (SOURCE_DATE_EPOCH, default 0)
# and entries sorted, so the same inputs give the same digests. Prints the image's manifest digest.
set -euo pipefail

name="" out="" rootfs="" entrypoint="" cmd="" user="" workdir="" expose=""
files=() envs=() labels=()
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="$2" ;;
    --out) out="$2" ;;
    --rootfs) rootfs="$2" ;;
    --file) files+=("$2") ;;
    --entrypoint) entrypoint="$2" ;;
    --cmd) cmd="$2" ;;
    --user) user="$2" ;;
    --workdir) workdir="$2" ;;
    --env) envs+=("$2") ;;
    --label) labels+=("$2") ;;
    --expose) expose="$2" ;;
    *)
      echo "oci-archive: unknown argument $1" >&2
      exit 2
      ;;
  esac
  shift 2
done
[ -n "$name" ] && [ -n "$out" ] || {
  echo "usage: $0 --name <ref> --out <file.tar> [--rootfs dir] [--file src:dst:mode]..." >&2
  exit 2
}

json_str() { # a JSON string literal (the values here are paths, refs, env entries: no control characters)
  local s="${1//\\/\\\\}"
  printf '"%s"' "${s//\"/\\\"}"
}
json_list() { # json_list <item>...: a JSON array of strings
  local first=1 x
  printf '['
  for x in "$@"; do
    [ "$first" = 1 ] || printf ','
    first=0
    json_str "$x"
  done
  printf ']'
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
stage="$work/rootfs"
mkdir -p "$stage" "$work/layout/blobs/sha256"
[ -z "$rootfs" ] || cp -a "$rootfs/." "$stage/"
# The image's / is 0755 whatever the mode of the directory it came from (mktemp -d makes 0700).
chmod 0755 "$stage"
for f in "${files[@]+"${files[@]}"}"; do
  IFS=: read -r src dst mode <<<"$f"
  mkdir -p "$stage$(dirname "$dst")"
  cp -L "$src" "$stage$dst"
  chmod "${mode:-0444}" "$stage$dst"
done

epoch="${SOURCE_DATE_EPOCH:-0}"
layer="$work/layer.tar"
tar --sort=name --numeric-owner --owner=0 --group=0 --mtime="@$epoch" --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$stage" -cf "$layer" .
layer_digest="$(sha "$layer")"
mv "$layer" "$work/layout/blobs/sha256/$layer_digest"

created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"
{
  printf '{"architecture":"amd64","os":"linux","created":"%s","config":{' "$created"
  sep=""
  if [ -n "$user" ]; then printf '%s"User":%s' "$sep" "$(json_str "$user")"; sep=","; fi
  if [ ${#envs[@]} -gt 0 ]; then printf '%s"Env":%s' "$sep" "$(json_list "${envs[@]}")"; sep=","; fi
  if [ -n "$entrypoint" ]; then printf '%s"Entrypoint":%s' "$sep" "$entrypoint"; sep=","; fi
  if [ -n "$cmd" ]; then printf '%s"Cmd":%s' "$sep" "$cmd"; sep=","; fi
  if [ -n "$workdir" ]; then printf '%s"WorkingDir":%s' "$sep" "$(json_str "$workdir")"; sep=","; fi
  if [ -n "$expose" ]; then printf '%s"ExposedPorts":{%s:{}}' "$sep" "$(json_str "$expose")"; sep=","; fi
  if [ ${#labels[@]} -gt 0 ]; then
    printf '%s"Labels":{' "$sep"
    lsep=""
    for l in "${labels[@]}"; do
      printf '%s%s:%s' "$lsep" "$(json_str "${l%%=*}")" "$(json_str "${l#*=}")"
      lsep=","
    done
    printf '}'
  fi
  printf '},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},' "$layer_digest"
  printf '"history":[{"created":"%s","created_by":"scripts/oci-archive.sh"}]}' "$created"
} >"$work/config.json"
config_digest="$(sha "$work/config.json")"
config_size="$(size "$work/config.json")"
mv "$work/config.json" "$work/layout/blobs/sha256/$config_digest"

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config_digest" "$config_size" "$layer_digest" "$(size "$work/layout/blobs/sha256/$layer_digest")" >"$work/manifest.json"
manifest_digest="$(sha "$work/manifest.json")"
manifest_size="$(size "$work/manifest.json")"
mv "$work/manifest.json" "$work/layout/blobs/sha256/$manifest_digest"

printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":%s,"org.opencontainers.image.ref.name":%s}}]}' \
  "$manifest_digest" "$manifest_size" "$(json_str "$name")" "$(json_str "${name##*:}")" >"$work/layout/index.json"

mkdir -p "$(dirname "$out")"
tar --sort=name --numeric-owner --owner=0 --group=0 --mtime="@$epoch" -C "$work/layout" -cf "$out.tmp.$$" .
mv "$out.tmp.$$" "$out"
printf 'sha256:%s\n' "$manifest_digest"
