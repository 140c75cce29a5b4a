#!/usr/bin/env bash
# Print the base image for docker/Dockerfile.cpu: the official python:3.11-slim-bookworm where it is
# present or can be pulled; otherwise (no Docker Hub: these machines, CI, an air-gapped host) a local
# stand-in of the same Debian release and Python minor version, made once with debootstrap from the
# Debian mirror apt already uses (~50 s, 265 MB) and kept. What it did goes to stderr in one line.
set -euo pipefail
OFFICIAL=python:3.11-slim-bookworm
STANDIN=local/python:3.11-slim-bookworm

if docker image inspect "$OFFICIAL" >/dev/null 2>&1 || timeout 60 docker pull -q "$OFFICIAL" >/dev/null 2>&1; then
  echo "$OFFICIAL"
  exit 0
fi
if ! docker image inspect "$STANDIN" >/dev/null 2>&1; then
  mirror=$(sed -n 's/^URIs: *//p; s/^deb \(http[^ ]*\) .*/\1/p' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 || true)
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" \
    "${mirror:-http://deb.debian.org/debian}" >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; exit 1; }
  # The registries may be reached through a proxy whose CA only this host trusts: pip in a build needs it.
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  tar -C "$rootfs" -c . | docker import - "$STANDIN" >/dev/null
  rm -f "$rootfs.log"
fi
echo "==> $OFFICIAL cannot be pulled here: using $STANDIN (debootstrap bookworm, Python 3.11)" >&2
echo "$STANDIN"
