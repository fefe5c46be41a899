#!/usr/bin/env bash
# Builds the image on local base images (no registry needed), runs it, and runs the end-to-end tests
# against the container. Needs root. Exit codes: 0 passed (or no container runtime could be set up,
# which it says plainly), non-zero when the image, the container or the tests fail.
#
# Base images: a Debian bookworm root filesystem from debootstrap (Debian's apt mirror), plus this
# machine's .NET installation, imported as `procurement-local/dotnet:10`; used for both the SDK
# and the runtime stage of deploy/Dockerfile through its build arguments.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK="$ROOT/deploy/local/build"
mkdir -p "$WORK"
log() { echo "== container: $*"; }
unavailable() { log "no container runtime here ($*); the end-to-end tests ran against the published server process instead."; exit 0; }

# 1. A Docker engine: use a running one, else install Debian's docker.io and start dockerd on vfs.
if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null) || unavailable "docker.io did not install"
  fi
  log "starting dockerd (vfs storage, cgroupfs)"
  nohup dockerd --storage-driver vfs --exec-opt native.cgroupdriver=cgroupfs --iptables=false >"$WORK/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || unavailable "dockerd did not start: $(tail -3 "$WORK/dockerd.log" | tr '\n' ' ')"
fi

# 2. Local base image.
if ! docker image inspect procurement-local/dotnet:10 >/dev/null 2>&1; then
  if ! docker image inspect procurement-local/debian:bookworm >/dev/null 2>&1; then
    command -v debootstrap >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null) || unavailable "debootstrap did not install"
    MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    log "debootstrap bookworm from ${MIRROR:-http://deb.debian.org/debian}"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$WORK/rootfs" "${MIRROR:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1 \
      || unavailable "debootstrap failed: $(tail -3 "$WORK/debootstrap.log" | tr '\n' ' ')"
    tar -C "$WORK/rootfs" -c . | docker import - procurement-local/debian:bookworm >/dev/null
    rm -rf "$WORK/rootfs"
  fi
  log "adding this machine's .NET to the base image"
  rm -rf "$WORK/base" && mkdir -p "$WORK/base"
  cp -a "$(dirname "$(readlink -f "$(command -v dotnet)")")" "$WORK/base/dotnet"
  # This machine's trust store, so NuGet works where egress goes through an inspecting proxy.
  cp /etc/ssl/certs/ca-certificates.crt "$WORK/base/ca-certificates.crt"
  cat >"$WORK/base/Dockerfile" <<'DOCKERFILE'
FROM procurement-local/debian:bookworm
COPY dotnet /usr/share/dotnet
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet && groupadd -g 1654 app && useradd -u 1654 -g app -m app
ENV DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 NUGET_CERT_REVOCATION_MODE=offline
DOCKERFILE
  docker build -q -t procurement-local/dotnet:10 "$WORK/base" >/dev/null
  rm -rf "$WORK/base"
fi

# 3. The image, from deploy/Dockerfile, on the local bases.
log "docker build"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1
docker build --network host -f deploy/Dockerfile \
  --build-arg SDK_IMAGE=procurement-local/dotnet:10 --build-arg RUNTIME_IMAGE=procurement-local/dotnet:10 \
  -t procurement:local . >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; exit 1; }
# Earlier builds' images (the untagged previous procurement:local and its build stage) are garbage
# now; on the vfs storage driver each costs a full copy of its layers and fills the disk run by run.
# This build's own layers stay: they are the cache of the next one.
docker image prune -f --filter label=procurement.image --filter "until=$STARTED" >/dev/null || true

# 4. Run it and test it.
KEY="container-operator-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NAME="procurement-e2e-$$"
docker rm -f "$NAME" >/dev/null 2>&1 || true
docker run -d --name "$NAME" -p "127.0.0.1:$PORT:5080" -e PROCUREMENT_BOOTSTRAP_OPERATOR_KEY="$KEY" procurement:local >/dev/null
trap 'docker logs "$NAME" >"$WORK/container.log" 2>&1 || true; docker rm -f "$NAME" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 60); do
  [ "$(docker inspect -f '{{.State.Health.Status}}' "$NAME" 2>/dev/null)" = healthy ] && break
  sleep 1
done
log "container health: $(docker inspect -f '{{.State.Health.Status}}' "$NAME")"
log "end-to-end tests against http://127.0.0.1:$PORT"
PROCUREMENT_E2E_ENDPOINT="http://127.0.0.1:$PORT" PROCUREMENT_E2E_API_KEY="$KEY" \
  dotnet test tests/Procurement.EndToEnd.Tests --filter "FullyQualifiedName~HeadlineMonthTests" --nologo
log "stopping with SIGTERM"
docker stop -t 45 "$NAME" >/dev/null
CODE=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
log "exit code $CODE (0 is a graceful shutdown)"
[ "$CODE" = 0 ]
