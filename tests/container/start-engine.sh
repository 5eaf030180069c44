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
if ! docker info >/dev/null 2>&1; then
  setsid dockerd --iptables=false --ip-forward=false >/tmp/omnitron-ci-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 300); do
    docker info >/dev/null 2>&1 && break
    sleep 0.1
  done
  docker info >/dev/null 2>&1 || { tail -n 20 /tmp/omnitron-ci-dockerd.log >&2; exit 1; }
fi
bash deploy/standin-base-image.sh python:3.11-slim-bookworm
