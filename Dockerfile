# syntax=docker/dockerfile:1
# The omnitron image: the daemon in a virtualenv, the demo ecosystem in /app, run as an unprivileged user.
# Build:  docker build -t omnitron-demo .
# Run:    docker run --rm -p 3001:3001 -p 9800:9800 omnitron-demo
#
# The start command is CMD, not ENTRYPOINT, on purpose: platforms that run a release command in the same
# image (Fly.io release_command, Render preDeployCommand, Railway preDeployCommand, Compose `command:`)
# replace CMD and keep ENTRYPOINT, so `omnitron infra migrate` must not be appended to `omnitron up`.

# ---- build: install omnitron and its dependencies into a self-contained virtualenv ----
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/omnitron
WORKDIR /src
COPY pyproject.toml README.md ./
COPY omnitron ./omnitron
RUN /opt/omnitron/bin/pip install --no-cache-dir .

# ---- runtime: the same base image (the venv's python links to it), no compilers, no pip cache ----
FROM python:3.11-slim-bookworm
# A fixed numeric UID/GID, so Kubernetes `runAsNonRoot` can verify it and volumes can be chowned to it.
RUN groupadd --system --gid 10001 omnitron \
 && useradd --system --no-log-init --uid 10001 --gid omnitron \
      --home-dir /var/lib/omnitron --shell /usr/sbin/nologin omnitron \
 && install -d -o omnitron -g omnitron -m 0700 /var/lib/omnitron
COPY --from=build /opt/omnitron /opt/omnitron
# The ecosystem: with WORKDIR /app the default lookup finds ./omnitron.toml, else ./config/omnitron.toml.
WORKDIR /app
COPY config ./config
COPY demo ./demo
ENV PATH="/opt/omnitron/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMNITRON_HOME=/var/lib/omnitron
USER 10001:10001
# A named volume here starts as a copy of the directory above, owned by the omnitron user.
VOLUME ["/var/lib/omnitron"]
# 9800: /healthz, /readyz, /metrics. 3001-3002: the demo API's two instances.
EXPOSE 9800 3001 3002
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["omnitron", "probe", "healthz"]
STOPSIGNAL SIGTERM
# omnitron is PID 1: it forwards nothing, it stops every app itself and reaps orphans, so no tini.
CMD ["omnitron", "up", "--foreground"]
