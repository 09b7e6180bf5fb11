#!/usr/bin/env bash
# The README's two commands, on a fresh clone with only python3 (>= 3.10): set up when needed, then run.
#
#   ./surd.sh sample [ARGS]   set up, then the sample pipeline: surd run pipelines/sample.yaml → runs/sample/
#   ./surd.sh test [ARGS]     set up, then the test suite: python -m pytest ARGS
#   ./surd.sh setup [ARGS]    only set up (ARGS go to scripts/setup.sh: --venv DIR, --no-browser, --dry-run)
#
# The environment is .venv (or $SURD_VENV); activate it (. .venv/bin/activate) to call `surd` yourself.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${SURD_VENV:-.venv}
verb=${1:-}
[ $# -gt 0 ] && shift
case "$verb" in
  sample)
    scripts/setup.sh --venv "$VENV" --no-browser
    exec "$VENV/bin/surd" run pipelines/sample.yaml "$@"
    ;;
  test)
    scripts/setup.sh --venv "$VENV"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  setup)
    exec scripts/setup.sh --venv "$VENV" "$@"
    ;;
  *)
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { print substr($0, 3) }' "$0" >&2
    exit 2
    ;;
esac
