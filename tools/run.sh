#!/usr/bin/env bash
# The two commands of the README:
#   bash tools/run.sh demo   set up .venv, then run the main job
#   bash tools/run.sh test   set up both stacks' venvs, then run the whole
#                            test suite on each (newest: .venv, oldest:
#                            .venv-oldest; README, "Tests")
# MMHATNET_STACKS="newest" (or "oldest") tests one stack only.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    demo) shift
          bash tools/setup_env.sh newest
          exec .venv/bin/python tools/demo.py "$@" ;;
    test) shift
          stacks=${MMHATNET_STACKS:-newest oldest}
          for stack in $stacks; do bash tools/setup_env.sh "$stack"; done
          failed=
          for stack in $stacks; do
              venv=.venv; [ "$stack" = oldest ] && venv=.venv-oldest
              echo "[test] $stack stack: $venv/bin/python -m pytest tests"
              SECONDS=0
              "$venv/bin/python" -m pytest tests "$@" || failed="$failed $stack"
              echo "[test] $stack stack: ${SECONDS}s"
          done
          [ -z "$failed" ] || { echo "[test] failed on:$failed" >&2; exit 1; } ;;
    *) echo "usage: bash tools/run.sh demo|test [args]" >&2; exit 2 ;;
esac
