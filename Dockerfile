# syntax=docker/dockerfile:1
#
# fiaas-deploy-daemon (Rust), a drop-in for the Python image: same binaries on the PATH, uid/gid
# 1001, port 5000, `fiaas-deploy-daemon` as the default command.
#
#   docker build -t ghcr.io/fiaas/fiaas-deploy-daemon-rs:dev .
#
# Needs BuildKit (the default builder) for the cache mounts.

# Base images are pinned by digest, so a rebuild uses the bytes that were reviewed; the tag stays
# for readers. To move to a newer image: `docker buildx imagetools inspect <image:tag>` and copy
# the index digest (the multi-platform one) here.
FROM rust:1.95-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS builder
WORKDIR /src
# The whole workspace: cargo reads every member's manifest even when building a few packages.
# .dockerignore keeps target/ and .git out of the context.
COPY . .
# The cache mounts keep the registry and compiled dependencies between builds; the binaries are
# copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p fiaas-daemon -p fiaas-bootstrap -p fiaas-cli \
    && mkdir -p /out \
    && cp target/release/fiaas-deploy-daemon \
          target/release/fiaas-deploy-daemon-bootstrap \
          target/release/fiaas \
          /out/

# glibc, libgcc and CA certificates (the API server and usage-reporting clients use the system
# trust store), no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
LABEL org.opencontainers.image.title="fiaas-deploy-daemon" \
      org.opencontainers.image.description="Deploys fiaas Applications to Kubernetes" \
      org.opencontainers.image.source="https://github.com/fiaas/fiaas-rs" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/fiaas-deploy-daemon /out/fiaas-deploy-daemon-bootstrap /out/fiaas /usr/local/bin/
# The same numeric user as the upstream image, so existing securityContexts keep working.
USER 1001:1001
# Web server: /healthz, /internal-backstage/prometheus, /metrics, /, /defaults, /transform.
EXPOSE 5000
# Bootstrap pods run `fiaas-deploy-daemon-bootstrap` by setting the container's `command`, which
# replaces this entrypoint.
ENTRYPOINT ["fiaas-deploy-daemon"]
