#!/usr/bin/env bash
# Makes a stand-in for the Dockerfile's base image, python:3.11-slim-bookworm, on a machine that has a
# Debian mirror but no image registry (CI here, an air-gapped build host). Idempotent: does nothing when the
# image is already present or can be pulled.
#
#   deploy/standin-base-image.sh [IMAGE]        (default python:3.11-slim-bookworm; run as root)
#
# The stand-in is a debootstrap'd Debian bookworm with Debian's python3 (3.11, as the real image) and
# python-is-python3, so the Dockerfile builds unchanged. It trusts the host's extra CA certificates
# (/usr/local/share/ca-certificates), so pip inside `docker build` reaches the package index through the same
# TLS-intercepting proxy the host uses. DEBIAN_MIRROR overrides the mirror read from apt's sources.
set -euo pipefail
image="${1:-python:3.11-slim-bookworm}"

if docker image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
if timeout 20 docker pull -q "$image" >/dev/null 2>&1; then
  exit 0
fi

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  # The first Debian archive URI apt uses (deb822 .sources or one-line .list), not the security one.
  mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -v '^[[:space:]]*#' | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -n1 || true)"
fi
: "${mirror:?no Debian mirror found in /etc/apt; set DEBIAN_MIRROR}"
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }

rootfs="$(mktemp -d /tmp/standin-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "standin-base-image: debootstrap bookworm from $mirror for $image" >&2
debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
  bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -n 20 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null
fi
# What the real slim image leaves out: apt lists and caches, docs and man pages.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
# Without ENV PATH the Dockerfile's `PATH=...:${PATH}` would expand to an empty tail.
tar -C "$rootfs" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -c 'CMD ["python3"]' \
  -m "stand-in for $image made by deploy/standin-base-image.sh" - "$image" >/dev/null
echo "standin-base-image: imported $image" >&2
