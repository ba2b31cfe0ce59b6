#!/usr/bin/env bash
# Builds the service images, one or all: infra/build-images.sh [service...]
#   services: echo-tcp daytime-tcp udp-echo keepalive-probe (default: all four)
# Tags: ${IMAGE_PREFIX:-localhost/net}/<service>:${IMAGE_TAG:-dev}. Build context: the repository root.
#
# With docker (a real Docker host), the Containerfiles' default base `node:24-slim` is pulled as usual.
# With podman and no registry (these sandboxes), infra/images/build-base.sh first builds the local base
# localhost/net-node:24 from npm packages, and podman runs with three workarounds (docs/deploy.md):
#   CONTAINERS_CONF=infra/images/containers.conf (runc, nofile/nproc 1024), --format docker (keeps HEALTHCHECK),
#   --network=host (the build steps that install from the npm registry).
# Env: ENGINE=podman|docker, BASE / BUILD_BASE (override the base images), IMAGE_PREFIX, IMAGE_TAG,
#      NET_SOURCE_URL (the org.opencontainers.image.source label; default: the git remote origin's URL).
# Labels: org.opencontainers.image.{title,version,revision,source} (version from the service's package.json,
# revision = git rev-parse HEAD).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
all=(echo-tcp daytime-tcp udp-echo keepalive-probe)
services=("$@")
[ ${#services[@]} -gt 0 ] || services=("${all[@]}")
for s in "${services[@]}"; do
  [ -f "$here/images/$s.Containerfile" ] || { echo "build-images: unknown service '$s' (one of: ${all[*]})" >&2; exit 2; }
done

if [ -z "${ENGINE:-}" ]; then
  # A docker CLI without a reachable engine (as on these sandboxes) does not count.
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then ENGINE=docker; else ENGINE=podman; fi
fi
prefix=${IMAGE_PREFIX:-localhost/net}
tag=${IMAGE_TAG:-dev}
args=()
if [ "$ENGINE" = podman ]; then
  export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/images/containers.conf}
  if [ -z "${BASE:-}" ]; then
    BASE=localhost/net-node:24
    BUILD_BASE=${BUILD_BASE:-localhost/net-node:24-build}
    BASE_IMAGE=$BASE BUILD_IMAGE=$BUILD_BASE ENGINE=podman "$here/images/build-base.sh"
  fi
  args+=(--format docker --network=host --ignorefile "$here/images/.dockerignore")
fi
[ -n "${BASE:-}" ] && args+=(--build-arg "BASE=$BASE")
[ -n "${BUILD_BASE:-}" ] && args+=(--build-arg "BUILD_BASE=$BUILD_BASE")

cd "$repo"
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
source_url=${NET_SOURCE_URL:-$(git remote get-url origin 2>/dev/null || echo unknown)}
for s in "${services[@]}"; do
  started=$(date +%s)
  version=$(node -p "require('./services/$s/package.json').version")
  "$ENGINE" build "${args[@]}" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    --build-arg "SOURCE=$source_url" -f "infra/images/$s.Containerfile" -t "$prefix/$s:$tag" .
  size=$("$ENGINE" image inspect --format '{{.Size}}' "$prefix/$s:$tag")
  echo "build-images: $prefix/$s:$tag $(( size / 1000000 )) MB in $(( $(date +%s) - started )) s"
done
