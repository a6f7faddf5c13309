#!/usr/bin/env bash
# The two commands of the README:
#   bash tools/run.sh demo   set up .venv, then run the main job
#   bash tools/run.sh test   set up .venv, then run the whole test suite
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
case "${1:-}" in
    demo) shift; exec .venv/bin/python tools/demo.py "$@" ;;
    test) shift; exec .venv/bin/python -m pytest tests "$@" ;;
    *) echo "usage: bash tools/run.sh demo|test [args]" >&2; exit 2 ;;
esac
