# syntax=docker/dockerfile:1
# stepline in a container: a static-enough build stage, a small runtime
# stage (Debian slim, CA certificates, bash for the health check), a
# non-root user, the data in the /data volume. docs/operations.md,
# "Containers", shows how to run it and what to configure first.
#
#   docker build -t stepline .
#   docker run -d --name stepline -p 127.0.0.1:8083:8083 -v stepline-data:/data stepline

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target directory are cache mounts: a rebuild after a
# source change compiles only what changed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p stepline --bin stepline \
    && install -m 0755 target/release/stepline /usr/local/bin/stepline

FROM debian:bookworm-slim
# CA certificates: HTTP tasks with [tasks.http] system_roots, and the CLI.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin stepline \
    && install -d -m 0750 -o stepline -g stepline /data
COPY --from=build /usr/local/bin/stepline /usr/local/bin/stepline
USER stepline:stepline
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8083
# Ready means the store is open, recovery is over and a flush succeeds.
# Plain HTTP to the loopback address inside the container, through bash's
# /dev/tcp (the image has no curl); with [tls], probe the port instead or
# replace this with a client that speaks TLS.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8083 && printf 'GET /ready HTTP/1.1\\r\\nHost: 127.0.0.1:8083\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["stepline"]
# 0.0.0.0 so that the published port reaches it. Without credentials in a
# stepline.toml anyone who reaches the port can run your state machines:
# see docs/operations.md before publishing it beyond this machine.
CMD ["serve", "--listen", "0.0.0.0:8083", "--data-dir", "/data"]
