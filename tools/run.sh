#!/usr/bin/env bash
# The two commands of the README:
#   bash tools/run.sh demo   set up .venv, then run the main job
#   bash tools/run.sh test   set up .venv, then run the whole test suite
#   bash tools/run.sh check  set up .venv, then check the stack on every
#                            device (tools/check.py; README, "GPU")
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
case "${1:-}" in
    demo) shift; exec .venv/bin/python tools/demo.py "$@" ;;
    test) shift; exec .venv/bin/python -m pytest tests "$@" ;;
    check) shift; exec .venv/bin/python tools/check.py "$@" ;;  # issue 11
    *) echo "usage: bash tools/run.sh demo|test|check [args]" >&2; exit 2 ;;
esac
