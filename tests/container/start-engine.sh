#!/usr/bin/env bash
# CI: install and start a Docker engine and make the image's base, so tests/container runs (idempotent).
# With no systemd nothing starts dockerd; --iptables=false --ip-forward=false leave the host's firewall and
# ip_forward alone (the defaults set the FORWARD policy to DROP), so builds use --network host and containers
# are reached through -p 127.0.0.1:PORT:... .
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
# A PID file left by a dockerd (or its containerd) that died with the last machine session would make the new
# one refuse to start if that PID now belongs to another process: drop those that name no such daemon.
drop_stale_pidfile() {
  local file="$1" name="$2" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file" 2>/dev/null || true)"
  if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" != "$name" ]; then
    rm -f "$file"
  fi
}
if ! docker info >/dev/null 2>&1; then
  drop_stale_pidfile /var/run/docker.pid dockerd
  drop_stale_pidfile /var/run/docker/containerd/containerd.pid containerd
  setsid dockerd --iptables=false --ip-forward=false >/tmp/omnitron-ci-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 300); do
    docker info >/dev/null 2>&1 && break
    sleep 0.1
  done
  docker info >/dev/null 2>&1 || { tail -n 20 /tmp/omnitron-ci-dockerd.log >&2; exit 1; }
fi
bash deploy/standin-base-image.sh python:3.11-slim-bookworm
