#!/usr/bin/env bash
# Build the Dockerfile for real and run the bundled sample inside it, as the image's non-root user, with no network.
#
#   scripts/docker-check.sh [--base IMAGE] [--tag TAG] [--keep]
#
#   --base IMAGE  the base image (default: debian:bookworm-slim when a registry answers; otherwise one made here with
#                 debootstrap + `docker import`, tagged surd-base:bookworm, reused on later runs)
#   --tag TAG     the image to build (default surd:check)
#   --keep        keep the work folder (its path is printed)
#
# Packages: the build gets pip's settings only as build args (never baked into the image). Where this machine keeps
# package indexes on disk (/opt/pypi/simple: this workplace) or SURD_WHEELHOUSE names a folder, every package the
# install needs is downloaded once with the machine's own pip settings into a wheelhouse (cached per dependency set
# under ~/.cache/surd-docker/) and served on 127.0.0.1 for the build (`--network host`): PIP_NO_INDEX=1 and
# PIP_FIND_LINKS. Elsewhere PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_TRUSTED_HOST and PIP_NO_INDEX
# from the environment are passed on.
#
# Checks: the image builds; a change to the source rebuilds without reinstalling the dependencies (their layer comes
# from the cache); `surd run pipelines/sample.yaml` and `surd card runs/sample` run inside with `--network none` as
# uid 10001; the outputs are there and owned by that user. Exits 0 with "skip: <reason>" where no container engine
# can run, 1 on a failed check.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd -P)
BASE=""
TAG=surd:check
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --base) BASE=${2:?--base needs an image}; shift 2 ;;
    --tag) TAG=${2:?--tag needs a name}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { print substr($0, 3) }' "$0"; exit 0 ;;
    *) echo "docker-check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

skip() { echo "skip: $*"; exit 0; }
fail() { echo "docker-check: FAILED: $*" >&2; exit 1; }
say() { echo "docker-check: $*"; }

command -v docker >/dev/null 2>&1 || skip "no docker command (Debian: apt-get install docker.io)"
docker info >/dev/null 2>&1 || skip "no Docker engine answers (start dockerd, or run where one runs)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/surd-docker-check.XXXXXX")
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else say "kept $WORK"; fi
}
trap cleanup EXIT

# --- the base image -----------------------------------------------------------------------------------------------
if [ -z "$BASE" ]; then
  if timeout 60 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
    BASE=debian:bookworm-slim
  elif docker image inspect surd-base:bookworm >/dev/null 2>&1; then
    BASE=surd-base:bookworm
    say "no registry answered: using the local base $BASE made earlier"
  else
    command -v debootstrap >/dev/null 2>&1 || skip "no registry answers and debootstrap is missing (apt-get install debootstrap)"
    [ "$(id -u)" = 0 ] || skip "no registry answers and debootstrap needs root"
    say "no registry answered: making a base image with debootstrap (Debian bookworm, minbase)"
    MIRROR=$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' /etc/apt/sources.list.d/* /etc/apt/sources.list 2>/dev/null || true)
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "${MIRROR:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1 \
      || fail "debootstrap (log: $WORK/debootstrap.log)"
    tar -C "$WORK/rootfs" -c . | docker import - surd-base:bookworm >/dev/null
    rm -rf "$WORK/rootfs"
    BASE=surd-base:bookworm
  fi
fi
say "base image: $BASE"

# --- packages for the build (build args only) ---------------------------------------------------------------------
ARGS=(--build-arg "BASE_IMAGE=$BASE")
if [ -d /opt/pypi/simple ] || [ -n "${SURD_WHEELHOUSE:-}" ]; then
  # This workplace: pip reaches its local indexes and PyPI (through a proxy whose certificate an image does not
  # trust) only with the machine's own pip settings. So every package the install needs is downloaded here, once,
  # with those settings into a wheelhouse, which the build reads from 127.0.0.1 with no index at all.
  key=$(cat "$REPO/pyproject.toml" "$REPO/.ci/constraints.txt" "$REPO/scripts/setup.sh" | sha256sum | cut -c1-16)
  WHEELHOUSE=${SURD_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/surd-docker/wheelhouse-$key}
  if [ ! -f "$WHEELHOUSE/.complete" ]; then
    say "downloading the install's packages into $WHEELHOUSE (once per dependency set)"
    mkdir -p "$WHEELHOUSE"
    TORCH=$(sed -n 's/^TORCH=(\(.*\)).*/\1/p' "$REPO/scripts/setup.sh")
    # shellcheck disable=SC2086  # TORCH holds two requirement words; setup.sh also upgrades pip, setuptools, wheel
    (cd "$REPO" && python3 -m pip download -q -d "$WHEELHOUSE" -c .ci/constraints.txt $TORCH '.[all,dev]' \
      && python3 -m pip download -q --no-deps -d "$WHEELHOUSE" -c .ci/constraints.txt pyiqa \
      && python3 -m pip download -q -d "$WHEELHOUSE" -c .ci/constraints.txt pip setuptools wheel) \
      >"$WORK/download.log" 2>&1 || { tail -20 "$WORK/download.log"; fail "pip download"; }
    rm -f "$WHEELHOUSE"/surd-*.whl "$WHEELHOUSE"/surd-*.tar.gz  # the package itself comes from the source
    touch "$WHEELHOUSE/.complete"
  fi
  # A fixed port: the build args are part of the dependency layer's cache key, so the next run reuses that layer.
  PORT=${SURD_WHEEL_PORT:-38741}
  if ! python3 -c "import socket, sys; socket.socket().bind(('127.0.0.1', int(sys.argv[1])))" "$PORT" 2>/dev/null; then
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    say "port ${SURD_WHEEL_PORT:-38741} is taken: serving on $PORT (the dependency layer is built again)"
  fi
  python3 -m http.server --bind 127.0.0.1 --directory "$WHEELHOUSE" "$PORT" >"$WORK/wheel-server.log" 2>&1 &
  SERVER_PID=$!
  sleep 1
  ARGS+=(--build-arg "PIP_NO_INDEX=1" --build-arg "PIP_FIND_LINKS=http://127.0.0.1:$PORT/")
  say "serving $(find "$WHEELHOUSE" -maxdepth 1 -type f -name '*.*' | wc -l) packages on 127.0.0.1:$PORT for the build"
else
  for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_TRUSTED_HOST PIP_NO_INDEX; do
    if [ -n "${!v:-}" ]; then ARGS+=(--build-arg "$v=${!v}"); fi
  done
fi

# --- build, from the files git knows (what a clone holds) ---------------------------------------------------------
CTX="$WORK/context"
mkdir -p "$CTX"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "$CTX"/) \
  || fail "copying the build context"
start=$(date +%s)
docker build --network host "${ARGS[@]}" -t "$TAG" "$CTX" >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "docker build"; }
say "built $TAG in $(( $(date +%s) - start )) s (log: $WORK/build.log)"

# A source change must not reinstall the dependencies: rebuild with one source file changed.
echo "# docker-check: a source change" >>"$CTX/surd/__main__.py"
start=$(date +%s)
docker build --network host "${ARGS[@]}" -t "$TAG-srcchange" "$CTX" >"$WORK/rebuild.log" 2>&1 || { tail -40 "$WORK/rebuild.log"; fail "rebuild"; }
grep -qE "Using cache|CACHED" "$WORK/rebuild.log" || fail "the rebuild used no cached layer (log: $WORK/rebuild.log)"
if grep -qE "Collecting torch|Downloading torch|Installing collected packages" "$WORK/rebuild.log"; then
  fail "a source change reinstalled the dependencies (log: $WORK/rebuild.log)"
fi
say "a source change rebuilt in $(( $(date +%s) - start )) s, dependencies from the cache"
docker image rm "$TAG-srcchange" >/dev/null 2>&1 || true

# No pip setting may be kept in the image.
if docker image inspect "$TAG" --format '{{json .Config.Env}}' | grep -q "PIP_EXTRA_INDEX_URL\|PIP_FIND_LINKS\|PIP_INDEX_URL"; then
  fail "a package-index setting was baked into the image's environment"
fi

# --- run the sample inside: no network, the image's user ----------------------------------------------------------
DATA="$WORK/data"
mkdir -p "$DATA"
cp -r "$REPO/pipelines" "$REPO/manifests" "$DATA"/
chmod -R a+rwX "$DATA"
run() { docker run --rm --network none --user 10001:10001 -v "$DATA:/work" "$TAG" "$@"; }
[ "$(docker run --rm --network none --entrypoint id "$TAG" -u)" = 10001 ] || fail "the image does not run as uid 10001"
start=$(date +%s)
run run pipelines/sample.yaml >"$WORK/sample.log" 2>&1 || { tail -30 "$WORK/sample.log"; fail "surd run pipelines/sample.yaml inside"; }
run card runs/sample >>"$WORK/sample.log" 2>&1 || { tail -30 "$WORK/sample.log"; fail "surd card runs/sample inside"; }
say "sample + card inside the container: $(( $(date +%s) - start )) s"

for f in runs/sample/05_embed/00000.stats.json runs/sample/05_embed/00001.stats.json \
  runs/sample/06_train_adapter/adapter_model.safetensors runs/sample/README.md runs/sample/croissant.json \
  runs/sample/card.html runs/sample/provenance.parquet; do
  [ -s "$DATA/$f" ] || fail "missing output $f"
  [ "$(stat -c %u "$DATA/$f")" = 10001 ] || fail "$f is not owned by uid 10001"
done
kept=$(python3 -c 'import json, sys; print(sum(json.load(open(f))["kept"] for f in sys.argv[1:]))' \
  "$DATA"/runs/sample/05_embed/0000*.stats.json)
[ "$kept" -gt 0 ] || fail "the sample kept no sample"
say "OK: image $TAG ($(docker image inspect "$TAG" --format '{{.Size}}' | awk '{printf "%.1f GB", $1/1e9}')), sample ran as uid 10001 with no network, $kept samples kept, card written"
