#!/usr/bin/env bash
# Builds local load balancer images from this host's Debian packages, for hosts that cannot pull the public images
# (these sandboxes, CI): the same way build-base.sh builds the Node base, a root filesystem of the binary, the
# libraries it links (ldd), busybox-static for /bin/sh and an /etc/passwd, imported with `podman import`.
#
#   localhost/net-haproxy:2.6   Debian's haproxy (2.6), run as the official haproxy:2.6 image runs it: user haproxy
#                               (uid 99), config at /usr/local/etc/haproxy/haproxy.cfg, `haproxy -W -db -f ...`.
#   localhost/net-nginx:1.22    Debian's nginx (nginx-light or nginx) + libnginx-mod-stream, config at
#                               /etc/nginx/nginx.conf as in nginx:1.27; the dynamic stream module is loaded from
#                               /etc/nginx/modules-enabled/, which infra/nginx/nginx.conf includes (the official
#                               image has the module built in and no such directory: the include matches nothing).
#
# The public images stay the defaults of infra/compose (HAPROXY_IMAGE, NGINX_IMAGE); these replace them only here.
# Usage: infra/images/build-lb.sh [--force]      (skips images that exist unless --force)
# Env:   HAPROXY_IMAGE (localhost/net-haproxy:2.6), NGINX_IMAGE (localhost/net-nginx:1.22), ENGINE (podman|docker)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
HAPROXY_IMAGE=${HAPROXY_IMAGE:-localhost/net-haproxy:2.6}
NGINX_IMAGE=${NGINX_IMAGE:-localhost/net-nginx:1.22}
ENGINE=${ENGINE:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
force=${1:-}

exists() { "$ENGINE" image exists "$1" 2>/dev/null || "$ENGINE" image inspect "$1" >/dev/null 2>&1; }
if [ "$force" != "--force" ] && exists "$HAPROXY_IMAGE" && exists "$NGINX_IMAGE"; then
  echo "build-lb: $HAPROXY_IMAGE and $NGINX_IMAGE exist (--force rebuilds)"
  exit 0
fi

install() { # Debian packages
  echo "build-lb: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}
command -v haproxy >/dev/null 2>&1 || install haproxy
command -v nginx >/dev/null 2>&1 || install nginx-light
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || install libnginx-mod-stream
busybox=""
for candidate in /bin/busybox /usr/bin/busybox; do
  if [ -x "$candidate" ] && ! ldd "$candidate" >/dev/null 2>&1; then busybox=$candidate; break; fi
done
[ -n "$busybox" ] || { echo "build-lb: no static busybox (apt-get install busybox-static)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A root filesystem with busybox, the given files, and every library they link at the loader's path.
rootfs() { # dir, files...
  local root=$1
  shift
  mkdir -p "$root"/{bin,usr/bin,usr/sbin,etc,tmp,var/run,lib64,lib/x86_64-linux-gnu}
  chmod 1777 "$root/tmp"
  cp "$(readlink -f "$busybox")" "$root/bin/busybox"
  for applet in $("$busybox" --list); do [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"; done
  for f in "$@"; do mkdir -p "$root$(dirname "$f")" && cp -L "$f" "$root$f"; done
  for lib in $(for f in "$@"; do ldd "$f" 2>/dev/null || true; done | grep -o '/[^ ]*' | sort -u); do
    case "$lib" in
      /lib64/*) cp -L "$lib" "$root/lib64/" ;;
      *) cp -L "$lib" "$root/lib/x86_64-linux-gnu/" ;;
    esac
  done
  echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
}

started=$(date +%s)
h="$work/haproxy"
rootfs "$h" /usr/sbin/haproxy
mkdir -p "$h/usr/local/etc/haproxy" "$h/var/lib/haproxy"
printf 'root:x:0:0:root:/root:/bin/sh\nhaproxy:x:99:99:haproxy:/var/lib/haproxy:/bin/false\n' >"$h/etc/passwd"
printf 'root:x:0:\nhaproxy:x:99:\n' >"$h/etc/group"
tar -C "$h" -c . | "$ENGINE" import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'USER haproxy' --change 'STOPSIGNAL SIGUSR1' \
  --change "LABEL org.opencontainers.image.version=$(haproxy -v | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p')" \
  --change 'CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]' \
  - "$HAPROXY_IMAGE" >/dev/null

n="$work/nginx"
rootfs "$n" /usr/sbin/nginx /usr/lib/nginx/modules/ngx_stream_module.so
mkdir -p "$n/etc/nginx/modules-enabled" "$n/var/log/nginx" "$n/var/lib/nginx" "$n/var/cache/nginx"
echo 'load_module /usr/lib/nginx/modules/ngx_stream_module.so;' >"$n/etc/nginx/modules-enabled/50-mod-stream.conf"
# Debian's nginx opens its compiled-in error log before reading the configuration: send it to stderr.
ln -sf /dev/stderr "$n/var/log/nginx/error.log"
# Without a `user` directive (infra/nginx/nginx.conf has none) Debian's nginx runs its workers as nobody:nogroup.
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$n/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$n/etc/group"
tar -C "$n" -c . | "$ENGINE" import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'STOPSIGNAL SIGQUIT' \
  --change "LABEL org.opencontainers.image.version=$(nginx -v 2>&1 | sed -n 's/.*nginx\/\([^ ]*\).*/\1/p')" \
  --change 'CMD ["nginx", "-g", "daemon off;"]' \
  - "$NGINX_IMAGE" >/dev/null
echo "build-lb: $HAPROXY_IMAGE ($("$ENGINE" image inspect --format '{{.Size}}' "$HAPROXY_IMAGE") bytes)," \
  "$NGINX_IMAGE ($("$ENGINE" image inspect --format '{{.Size}}' "$NGINX_IMAGE") bytes) in $(( $(date +%s) - started )) s"
