# syntax=docker/dockerfile:1
#
# sts-sidecar image: build the single-file bundle, ship only the bundle on distroless Node 24.
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

# ---- build: npm ci + esbuild -> dist/sts-sidecar.mjs --------------------------------------------
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
RUN npm run build \
 && test -s dist/sts-sidecar.mjs \
 && touch dist/sts-sidecar.mjs.LEGAL.txt

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

USER 65532:65532

# Smoke test in the final filesystem: no node_modules here, so this fails if the bundle is not
# self-contained. (Exec form: distroless has no shell.)
RUN ["/nodejs/bin/node", "/app/sts-sidecar.mjs", "--version"]

# /healthz, /readyz, /metrics (STS_SIDECAR_LISTEN, default 0.0.0.0:8081). No HEALTHCHECK: the
# kubelet probes those endpoints.
EXPOSE 8081

# V8 flags for a small, mostly idle daemon (docs/benchmarks.md): a 1 MiB young generation (the sidecar
# allocates little; the default sizing grows RSS under churn: plateau about 252 -> 147 MB at 45
# exchanges/s), and no memory reducer, whose timer woke the idle process about 10 times a minute (idle CPU
# about 1.3 -> 0.5 ms per minute).
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=1", "--no-memory-reducer", "/app/sts-sidecar.mjs"]
CMD ["run"]
