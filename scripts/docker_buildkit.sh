#!/usr/bin/env bash
# Print a docker command that builds with BuildKit (Dockerfile.hathora's secret and bind mounts need
# it): `docker` where the buildx component is installed (Docker 23+ builds with it by default);
# otherwise a client older than 23, which drives the engine's own BuildKit when DOCKER_BUILDKIT=1
# (Debian bookworm's docker.io 20.10 has no buildx package; its /usr/bin/docker is such a client,
# even where a newer client without buildx comes first on PATH). One line on stderr when neither exists.
set -euo pipefail
if docker buildx version >/dev/null 2>&1; then
  echo docker
  exit 0
fi
for client in $(type -ap docker); do
  major=$("$client" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1 || true)
  if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then
    echo "env DOCKER_BUILDKIT=1 $client"
    exit 0
  fi
done
echo "docker_buildkit: no BuildKit here: install the buildx component (docker-buildx-plugin), or Debian's docker.io" >&2
exit 1
