#!/usr/bin/env bash
# The two commands of the README:
#   bash tools/run.sh demo   set up .venv, then run the main job
#   bash tools/run.sh test   set up both stacks' venvs, then run the whole
#                            test suite on each (newest: .venv, oldest:
#                            .venv-oldest; README, "Tests")
#   bash tools/run.sh check  set up .venv, then check the stack on every
#                            device (tools/check.py; README, "GPU")
# MMHATNET_STACKS="newest" (or "oldest") tests one stack only.
set -euo pipefail
cd "$(dirname "$0")/.."
# What the oldest stack does not run, and why (README, "Tests"): the ONNX
# deploy extra is tested on the newest stack only.
OLDEST_ARGS=(-m "not deploy" --ignore=tests/test_apis/test_export.py
             --ignore=tests/test_models/test_export_mode.py)
case "${1:-}" in
    demo) shift
          bash tools/setup_env.sh newest
          exec .venv/bin/python tools/demo.py "$@" ;;
    test) shift
          stacks=${MMHATNET_STACKS:-newest oldest}
          for stack in $stacks; do bash tools/setup_env.sh "$stack"; done
          failed=
          for stack in $stacks; do
              venv=.venv; args=()
              [ "$stack" = oldest ] && venv=.venv-oldest && args=("${OLDEST_ARGS[@]}")
              echo "[test] $stack stack: $venv/bin/python -m pytest tests ${args[*]}"
              SECONDS=0
              "$venv/bin/python" -m pytest tests "${args[@]}" "$@" \
                  || failed="$failed $stack"
              echo "[test] $stack stack: ${SECONDS}s"
          done
          [ -z "$failed" ] || { echo "[test] failed on:$failed" >&2; exit 1; } ;;
    check) shift
           bash tools/setup_env.sh newest
           exec .venv/bin/python tools/check.py "$@" ;;
    *) echo "usage: bash tools/run.sh demo|test|check [args]" >&2; exit 2 ;;
esac
