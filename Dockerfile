# The omnitron image: the daemon in a virtualenv, the demo ecosystem in /app, run as an unprivileged user.
# Build:  docker build -t omnitron-demo .
# Run:    docker run --rm -p 3001:3001 -p 9800:9800 omnitron-demo
#
# The start command is CMD, not ENTRYPOINT, on purpose: platforms that run a release command in the same
# image (Fly.io release_command, Render preDeployCommand, Railway preDeployCommand, Compose `command:`)
# replace CMD and keep ENTRYPOINT, so `omnitron infra migrate` must not be appended to `omnitron up`.
# tests/container/ builds this file and runs the image in a real engine (docs/operations.md lists what it proves).

# ---- build: install omnitron and its dependencies into a self-contained virtualenv ----
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/omnitron
WORKDIR /src
# Dependencies first, from pyproject.toml alone: a change to the code reuses this (slowest) layer.
COPY pyproject.toml ./
RUN /opt/omnitron/bin/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && /opt/omnitron/bin/pip install --no-cache-dir -r requirements.txt
COPY README.md ./
COPY omnitron ./omnitron
# The runtime needs neither pip nor setuptools (25 MB): the package goes in without them, then they go.
RUN /opt/omnitron/bin/pip install --no-cache-dir --no-deps . \
 && /opt/omnitron/bin/pip uninstall --yes --quiet setuptools pip

# ---- runtime: the same base image (the venv's python links to it), no compilers, no pip ----
FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="omnitron" \
      org.opencontainers.image.description="A process supervisor for containers and PaaS deployments (demo ecosystem)" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"
# A fixed numeric UID, so Kubernetes `runAsNonRoot` can verify it and volumes can be chowned to it. The home
# belongs to group 0 and is group-writable, as OpenShift expects: a random UID in group 0 can use it too.
RUN groupadd --system --gid 10001 omnitron \
 && useradd --system --no-log-init --uid 10001 --gid omnitron \
      --home-dir /var/lib/omnitron --shell /usr/sbin/nologin omnitron \
 && install -d -o omnitron -g root -m 0770 /var/lib/omnitron
COPY --from=build /opt/omnitron /opt/omnitron
# The ecosystem: with WORKDIR /app the default lookup finds ./omnitron.toml, else ./config/omnitron.toml.
WORKDIR /app
COPY config ./config
COPY demo ./demo
ENV PATH="/opt/omnitron/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMNITRON_HOME=/var/lib/omnitron
USER 10001:0
# A named volume here starts as a copy of the directory above: owner, group 0 and mode included.
VOLUME ["/var/lib/omnitron"]
# 9800: /healthz, /readyz, /metrics. 3001: the demo API's shared socket (both instances accept from it).
EXPOSE 9800 3001
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["omnitron", "probe", "healthz"]
STOPSIGNAL SIGTERM
# omnitron is PID 1: it forwards nothing, it stops every app itself and reaps orphans, so no tini.
CMD ["omnitron", "up", "--foreground"]
