# syntax=docker/dockerfile:1
#
# sts-sidecar image: build the single-file bundle and its startup snapshot, ship them on distroless
# Node 24. The snapshot (dist/sts-sidecar.blob) only loads in the exact Node binary that built it, so it
# is built again in a stage FROM the runtime image itself, by the runtime's own /nodejs/bin/node.
#
#   docker build -t sts-sidecar:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#
# Base images are pinned by tag AND digest. The digests were copied from public Dockerfiles that pin
# the same tags (no registry was reachable when this file was written); re-pin with
#   crane digest node:24.21.0-bookworm-slim
#   crane digest gcr.io/distroless/nodejs24-debian12:nonroot
# (or docker buildx imagetools inspect <image>) and let Dependabot/Renovate keep them fresh.
# With tag@digest, the digest wins; the tag is there for humans and for update bots.

# ---- build: npm ci + esbuild -> dist/sts-sidecar.mjs and dist/sts-sidecar.snapshot.cjs ----------
FROM node:24.21.0-bookworm-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6 AS build
WORKDIR /src
# Lockfile first so the dependency layer is cached across source edits. --ignore-scripts: no
# install hooks run at build time (esbuild finds its platform binary through its optional
# dependency without its postinstall script).
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/ scripts/
COPY src/ src/
# esbuild (legalComments: linked) writes third-party notices next to the bundle; make sure the
# file exists even if no dependency carries a legal comment, so the COPY below cannot fail.
# npm run build also builds a blob with this stage's Node: that checks the snapshot builds cleanly (no
# built-in loaded that the snapshot cannot hold, no per-process value frozen); the blob itself is not
# shipped.
RUN npm run build \
 && test -s dist/sts-sidecar.mjs \
 && test -s dist/sts-sidecar.snapshot.cjs \
 && touch dist/sts-sidecar.mjs.LEGAL.txt

# ---- snapshot: the startup snapshot, built by the runtime image's own Node -------------------------
# Same image and digest as the runtime stage below: the same Node binary builds and runs the blob.
FROM gcr.io/distroless/nodejs24-debian12:nonroot@sha256:14d42e2511532589a7c7e01a753667a74fcc96266e137e8125006b87b0c32d0a AS snapshot
USER 0:0
COPY --from=build /src/dist/sts-sidecar.snapshot.cjs /snapshot/sts-sidecar.snapshot.cjs
RUN ["/nodejs/bin/node", "--snapshot-blob", "/snapshot/sts-sidecar.blob", "--build-snapshot", "/snapshot/sts-sidecar.snapshot.cjs"]

# ---- runtime: distroless Node 24, no shell, no package manager, only the bundle ------------------
# :nonroot = uid/gid 65532. Node lives at /nodejs/bin/node.
FROM gcr.io/distroless/nodejs24-debian12:nonroot@sha256:14d42e2511532589a7c7e01a753667a74fcc96266e137e8125006b87b0c32d0a AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="sts-sidecar" \
      org.opencontainers.image.description="Exchanges the pod's projected service-account token for short-lived, policy-narrowed S3 credentials and keeps them fresh on disk." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="sts-sidecar maintainers" \
      org.opencontainers.image.source="https://github.com/example-org/sts-sidecar" \
      org.opencontainers.image.documentation="https://github.com/example-org/sts-sidecar/tree/main/helm/sts-sidecar" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="gcr.io/distroless/nodejs24-debian12:nonroot"

WORKDIR /app
# Root-owned and read-only for uid 65532: the sidecar only writes into STS_SIDECAR_OUTPUT_DIR (a
# mounted emptyDir), so the container runs with readOnlyRootFilesystem: true.
COPY --from=build --chown=0:0 --chmod=0444 /src/dist/sts-sidecar.mjs /app/sts-sidecar.mjs
COPY --from=build --chown=0:0 --chmod=0444 /src/dist/sts-sidecar.mjs.LEGAL.txt /app/sts-sidecar.mjs.LEGAL.txt
COPY --from=snapshot --chown=0:0 --chmod=0444 /snapshot/sts-sidecar.blob /app/sts-sidecar.blob

USER 65532:65532

# Smoke tests in the final filesystem: no node_modules here, so these fail if the bundle is not
# self-contained, or if the blob does not load in this Node (it then exits 14 naming both versions).
# (Exec form: distroless has no shell.)
RUN ["/nodejs/bin/node", "/app/sts-sidecar.mjs", "--version"]
RUN ["/nodejs/bin/node", "--snapshot-blob", "/app/sts-sidecar.blob", "--", "--version"]

# /healthz, /readyz, /metrics (STS_SIDECAR_LISTEN, default 0.0.0.0:8081). No HEALTHCHECK: the
# kubelet probes those endpoints.
EXPOSE 8081

# glibc malloc: two arenas instead of one per thread that ever allocated (docs/benchmarks.md, memory).
ENV MALLOC_ARENA_MAX=2
# Started from the startup snapshot (about half the start-up time of the plain bundle; docs/benchmarks.md).
# `--` ends Node's options: without a script path, `--version` would otherwise be Node's own.
# --max-semi-space-size=1: a 1 MiB young generation; the sidecar allocates little, and the default sizing
# grows RSS under churn. It does not change V8's flag hash (flags that do make Node drop its code cache). No
# --no-memory-reducer any more: the sidecar runs a full GC after each write, after which the reducer
# stops by itself and the idle process is not woken at all, with or without flags.
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=1", "--snapshot-blob", "/app/sts-sidecar.blob", "--"]
CMD ["run"]
