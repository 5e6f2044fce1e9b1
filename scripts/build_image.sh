#!/usr/bin/env bash
# Build the `bizra serve` image from deploy/Dockerfile with no network inside the build:
#   1. base: a Debian bookworm root filesystem made with mmdebstrap (Essential packages, no apt,
#      plus python3 3.11, python3-venv, libstdc++6 for the numpy/numba wheels, ca-certificates
#      and passwd), imported as
#      localhost/bizra-base:bookworm-<hash>;
#      skipped when BASE_IMAGE names a base to use instead (e.g. python:3.11-slim-bookworm);
#   2. wheelhouse: the bizra wheel plus every pinned `serve` dependency, built on the host with
#      Python 3.11 (pip there trusts the host's certificates, pip in a container may not);
#   3. image: `build --network none --build-arg WHEELS=context` over a context holding only
#      that wheelhouse.
#
# usage: scripts/build_image.sh [IMAGE]          IMAGE defaults to localhost/bizra:<git short hash>
# environment (all optional):
#   CONTAINER_ENGINE  engine command, split on spaces (default: podman if on PATH, else docker),
#                     e.g. "podman --root /tmp/x/root --runroot /tmp/x/run". Docker needs a
#                     running daemon and BuildKit (the Dockerfile picks its wheel stage by ARG).
#   BASE_IMAGE        base image to build on instead of making one with mmdebstrap
#   WORK              cache and context folder (default build/image): the rootfs tarball is
#                     kept there and reused while the package list is unchanged
#   PYTHON            host Python 3.11 for `pip wheel` (default .venv/bin/python, else python3)
#   DEBIAN_MIRROR     mirror URL for mmdebstrap (default: its own, deb.debian.org)
#   NUMBA_CPU_NAME    Numba cache CPU model (default generic; see the Dockerfile)
#   NUMBA_CPU_FEATURES  extra CPU features, e.g. +avx512ifma (default none; see the Dockerfile)
# Podman: unless CONTAINERS_CONF is set, WORK/containers.conf is written and used: runc as the
# runtime when installed (crun refuses a hybrid cgroup setup), cgroupfs without systemd, file
# event log, and default ulimits no higher than this shell's hard limits and kernel.pid_max
# (podman's defaults, nofile 1048576 and nproc 4194304, can exceed what a machine grants).
# Prints the image size and the time of each step; the last line is the image name.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

IMAGE="${1:-localhost/bizra:$(git rev-parse --short HEAD 2>/dev/null || echo dev)}"
WORK="${WORK:-$ROOT/build/image}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
if [ -z "${CONTAINER_ENGINE:-}" ]; then
  if command -v podman >/dev/null; then CONTAINER_ENGINE=podman
  elif command -v docker >/dev/null; then CONTAINER_ENGINE=docker
  else echo "build_image.sh: neither podman nor docker on PATH (Debian: apt-get install podman runc)" >&2; exit 2
  fi
fi
read -r -a ENGINE <<<"$CONTAINER_ENGINE"
KIND="$(basename "${ENGINE[0]}")"
case "$KIND" in
  podman) BUILD_FLAGS=(--format docker) ;;  # docker format keeps HEALTHCHECK (OCI has none)
  docker) BUILD_FLAGS=(); export DOCKER_BUILDKIT=1 ;;
  *) echo "build_image.sh: unknown engine '$KIND' (podman or docker)" >&2; exit 2 ;;
esac

if [ "$KIND" = podman ] && [ -z "${CONTAINERS_CONF:-}" ]; then
  runtime=""; command -v runc >/dev/null && runtime='runtime = "runc"'
  cgroup=""; [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] || cgroup='cgroup_manager = "cgroupfs"'
  # podman lowers its own process limit to pid_max and runc cannot raise a container above it
  nofile="$(ulimit -Hn)"; nproc="$(ulimit -Hu)"; pid_max="$(cat /proc/sys/kernel/pid_max)"
  [ "$nofile" = unlimited ] && nofile=1048576
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc="$pid_max"; fi
  cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
$runtime
$cgroup
events_logger = "file"
EOF
  export CONTAINERS_CONF="$WORK/containers.conf"
fi

now() { date +%s.%N; }
since() { python3 -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.1f} s")' "$1"; }
t_all="$(now)"

# ---- 1. base ------------------------------------------------------------------------------
if [ -z "${BASE_IMAGE:-}" ]; then
  t="$(now)"
  MM_ARGS=(--variant=essential --include=python3,python3-venv,libstdc++6,ca-certificates,passwd
           --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
           --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*'
           --dpkgopt='path-include=/usr/share/doc/*/copyright'
           --dpkgopt=force-unsafe-io bookworm)
  [ -n "${DEBIAN_MIRROR:-}" ] && MM_ARGS+=("$DEBIAN_MIRROR")
  key="$(printf '%s\n' "${MM_ARGS[@]}" | sha256sum | cut -c1-12)"
  BASE_IMAGE="localhost/bizra-base:bookworm-$key"
  if "${ENGINE[@]}" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "base: $BASE_IMAGE already in the engine"
  else
    tar="$WORK/rootfs-$key.tar"
    if [ ! -s "$tar" ]; then
      command -v mmdebstrap >/dev/null || { echo "build_image.sh: mmdebstrap missing (apt-get install mmdebstrap)" >&2; exit 2; }
      mmdebstrap --quiet --format=tar "${MM_ARGS[@]}" "$tar.part"
      mv "$tar.part" "$tar"
    fi
    "${ENGINE[@]}" import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
      "$tar" "$BASE_IMAGE" >/dev/null
    echo "base: $BASE_IMAGE from $tar ($(since "$t"))"
  fi
fi

# ---- 2. wheelhouse on the host --------------------------------------------------------------
t="$(now)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "build_image.sh: $PYTHON is not Python 3.11, the image's Python (set PYTHON)" >&2; exit 2; }
# The bizra wheel is built from a clean copy of what the Dockerfile's wheels-build stage copies
# (setuptools' build/ folder in the checkout can hold stale modules).
rm -rf "$WORK/context" "$WORK/src"
mkdir -p "$WORK/context/wheelhouse" "$WORK/src"
cp -r pyproject.toml README.md engine kernels "$WORK/src/"
find "$WORK/src" \( -name __pycache__ -o -name '*.nbi' -o -name '*.nbc' \) -prune -exec rm -rf {} +
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$WORK/context/wheelhouse" "$WORK/src[serve]"
rm -rf "$WORK/src"
echo "wheelhouse: $(ls "$WORK/context/wheelhouse" | wc -l) wheels, $(du -sh "$WORK/context/wheelhouse" | cut -f1) ($(since "$t"))"

# ---- 3. image -----------------------------------------------------------------------------
t="$(now)"
"${ENGINE[@]}" build "${BUILD_FLAGS[@]}" --network none -f "$ROOT/deploy/Dockerfile" \
  --build-arg PYTHON_IMAGE="$BASE_IMAGE" --build-arg WHEELS=context \
  --build-arg NUMBA_CPU_NAME="${NUMBA_CPU_NAME:-generic}" \
  --build-arg NUMBA_CPU_FEATURES="${NUMBA_CPU_FEATURES:-}" \
  -t "$IMAGE" "$WORK/context"
size="$("${ENGINE[@]}" image inspect --format '{{.Size}}' "$IMAGE")"
echo "image: $IMAGE, $((size / 1000000)) MB ($(since "$t") build, $(since "$t_all") in all)"
echo "$IMAGE"
