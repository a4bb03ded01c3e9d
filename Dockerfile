# syntax=docker/dockerfile:1
#
# sts-sidecar image: build the bundle and its fast start, ship them on distroless Node 24. The fast start
# (docs/benchmarks.md, issue 21) is the CommonJS bundle run by a small loader with V8's code cache for it;
# V8 only accepts a cache made by the same Node binary (and flag hash), so the cache is produced again in a
# stage FROM the runtime image itself, by the runtime's own /nodejs/bin/node with the ENTRYPOINT's flags.
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

# ---- build: npm ci + esbuild -> dist/sts-sidecar.mjs, dist/sts-sidecar.cjs + sts-sidecar.code.cjs ----
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
# npm run build also produces a code cache and the startup snapshot with this stage's Node (checks that
# the warm-up run and the snapshot build succeed); neither is shipped: the cache is produced again below.
RUN npm run build \
 && test -s dist/sts-sidecar.mjs \
 && test -s dist/sts-sidecar.cjs \
 && test -s dist/sts-sidecar.code.cjs \
 && touch dist/sts-sidecar.mjs.LEGAL.txt

# ---- cache: the code cache, produced by the runtime image's own Node -------------------------------
# Same image and digest as the runtime stage below, and the ENTRYPOINT's V8 flags: V8 accepts the cache.
# scripts/code-cache.mjs runs `once` against in-process fakes on 127.0.0.1 and writes the cache next to
# the bundle.
FROM gcr.io/distroless/nodejs24-debian12:nonroot@sha256:14d42e2511532589a7c7e01a753667a74fcc96266e137e8125006b87b0c32d0a AS cache
USER 0:0
COPY --from=build /src/dist/sts-sidecar.code.cjs /cache/sts-sidecar.code.cjs
COPY --from=build /src/scripts/code-cache.mjs /cache/code-cache.mjs
RUN ["/nodejs/bin/node", "--max-semi-space-size=1", "/cache/code-cache.mjs", "/cache/sts-sidecar.code.cjs"]

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
COPY --from=build --chown=0:0 --chmod=0444 /src/dist/sts-sidecar.cjs /app/sts-sidecar.cjs
COPY --from=build --chown=0:0 --chmod=0444 /src/dist/sts-sidecar.code.cjs /app/sts-sidecar.code.cjs
COPY --from=cache --chown=0:0 --chmod=0444 /cache/sts-sidecar.code.cjs.cache /app/sts-sidecar.code.cjs.cache

USER 65532:65532

# Smoke tests in the final filesystem: no node_modules here, so these fail if a bundle is not
# self-contained. (Exec form: distroless has no shell.)
RUN ["/nodejs/bin/node", "/app/sts-sidecar.mjs", "--version"]
RUN ["/nodejs/bin/node", "--max-semi-space-size=1", "/app/sts-sidecar.cjs", "--version"]

# /healthz, /readyz, /metrics (STS_SIDECAR_LISTEN, default 0.0.0.0:8081). No HEALTHCHECK: the
# kubelet probes those endpoints.
EXPOSE 8081

# glibc malloc: two arenas instead of one per thread that ever allocated (docs/benchmarks.md, memory).
ENV MALLOC_ARENA_MAX=2
# The fast start: the CommonJS bundle with the code cache produced above (about the start-up time of the
# startup snapshot or better, without its memory: the snapshot's blob stays resident, about 10 MB per
# pod; docs/benchmarks.md). The plain /app/sts-sidecar.mjs runs the same code without the cache.
# --max-semi-space-size=1: a 1 MiB young generation; the sidecar allocates little, and the default sizing
# grows RSS under churn. It does not change V8's flag hash (a flag that does makes V8 reject the cache).
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=1", "/app/sts-sidecar.cjs"]
CMD ["run"]
