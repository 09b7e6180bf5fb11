#!/usr/bin/env bash
# Set up surd in a virtual environment, idempotently. The README's two commands (./surd.sh), CI (.ci/run) and the
# Dockerfile all run this script, so CI proves the install the image uses. Run again with nothing changed, it only
# checks (about a second); after a dependency change it brings the environment up to date in place.
#
#   scripts/setup.sh [--venv DIR] [--no-browser] [--dry-run]
#
#   --venv DIR    the virtual environment (default: $SURD_VENV, else .venv in the repository)
#   --no-browser  leave out Chromium + ChromeDriver (only the review page's browser test uses them)
#   --dry-run     say what would be done and change nothing
#
# Needs python3 >= 3.10 (another one: PYTHON=/path/to/python3.12). As root with apt (Debian/Ubuntu) it installs
# what is missing: python3 + python3-venv (a bare image) and Debian's chromium + chromium-driver.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd -P)

VENV=${SURD_VENV:-$REPO/.venv}
BROWSER=1
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) VENV=${2:?--venv needs a folder}; shift 2 ;;
    --venv=*) VENV=${1#*=}; shift ;;
    --no-browser) BROWSER=0; shift ;;
    --dry-run) DRY=1; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { print substr($0, 3) }' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $1 (see scripts/setup.sh --help)" >&2; exit 2 ;;
  esac
done

case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac  # relative to where the script was called from
cd "$REPO"

TORCH=(torch==2.14.1 torchvision==0.29.1)  # CPU works; the Linux wheels also run on CUDA GPUs
STAMP="$VENV/.surd-setup"
WANT=$(cat pyproject.toml .ci/constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)

say() { echo "setup: $*"; }
run() { echo "+ $*"; if [ "$DRY" = 0 ]; then "$@"; fi; }
fail() { echo "setup: $*" >&2; exit 1; }
can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_install() {  # apt_install [--no-install-recommends] PACKAGE...
  run apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

find_python() {
  local p
  for p in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python3.10; do
    if [ -n "$p" ] && command -v "$p" >/dev/null 2>&1 \
      && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

venv_works() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; }

# This checkout, not an older clone, is what the venv's `surd` imports (a cached venv outlives its clone).
linked_here() {
  [ "$(cd / && "$VENV/bin/python" -c 'import os, surd; print(os.path.dirname(os.path.dirname(os.path.realpath(surd.__file__))))' 2>/dev/null)" = "$REPO" ]
}

install_venv() {
  local py
  if ! py=$(find_python); then
    can_apt || fail "needs python3 >= 3.10: install it (Debian/Ubuntu: apt-get install python3 python3-venv), or point PYTHON at one"
    apt_install --no-install-recommends python3 python3-venv
    [ "$DRY" = 1 ] && py=python3 || py=$(find_python) || fail "apt's python3 is older than 3.10: point PYTHON at a python3 >= 3.10"
  fi
  if ! venv_works; then
    if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then  # Debian splits venv/ensurepip into python3-venv
      can_apt || fail "$py cannot make virtual environments: install python3-venv (apt-get install python3-venv) and rerun"
      apt_install --no-install-recommends python3-venv
    fi
    run rm -rf "$VENV"
    run "$py" -m venv "$VENV"
  fi
  run "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
  run "$VENV/bin/python" -m pip install -q "${TORCH[@]}"
  run "$VENV/bin/python" -m pip install -q -c .ci/constraints.txt -e '.[all,dev]'
  # pyiqa (BRISQUE, MUSIQ for `surd eval`) without its requirements, which pull in training tools; the eval extra
  # above holds what it needs at run time. Its version is the pin in .ci/constraints.txt.
  run "$VENV/bin/python" -m pip install -q --no-deps -c .ci/constraints.txt pyiqa
  if [ "$DRY" = 0 ]; then echo "$WANT" >"$STAMP"; fi
}

if venv_works && [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ]; then
  say "$VENV is up to date"
  if ! linked_here; then
    run "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
  fi
else
  say "installing into $VENV (torch, then surd with every extra; a few minutes the first time)"
  install_venv
fi

if [ "$BROWSER" = 1 ] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  if can_apt; then
    apt_install chromium chromium-driver  # Debian's browser for the review page's test; nothing downloaded elsewhere
  else
    say "chromium/chromedriver missing and not root: the browser tests will be skipped"
  fi
fi
say "ready: $VENV/bin/surd"
