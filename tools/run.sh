#!/usr/bin/env bash
# The two commands of the README:
#   bash tools/run.sh demo   set up .venv, then run the main job
#   bash tools/run.sh test   set up the stacks' venvs, then run the test
#                            suite on each (newest: .venv; common, torch
#                            2.0 with mmcv 2.1.0: .venv-common; py38, the
#                            bottom of the supported range: .venv-py38;
#                            README, "Tests")
#   bash tools/run.sh check  set up .venv, then check the stack on every
#                            device (tools/check.py; README, "GPU")
# MMHATNET_STACKS="newest" (or "common", "py38", ...) tests those only.
set -euo pipefail
cd "$(dirname "$0")/.."
# What the older stacks run (README, "Tests"): the whole suite but the ONNX
# deploy extra, which is tested on the newest stack only.
OLDER_ARGS=(-m "not deploy" --ignore=tests/test_apis/test_export.py
            --ignore=tests/test_models/test_export_mode.py)
# The Python 3.8 stack has the common stack's torch 2.0.1 and mmengine
# 0.8.5: what depends on those alone (exact resume, kills, the two-process
# run, the benchmark and the release reference) runs there, not again here.
R=tests/test_tools/test_reliability.py
PY38_ARGS=("${OLDER_ARGS[@]}" --ignore=tests/test_analysis
           --deselect=$R::test_killed_run_resumes_exactly
           --deselect=$R::test_kill_during_save_keeps_the_last_complete_checkpoint
           --deselect=$R::test_dist_train_then_dist_test_two_processes
           --deselect=$R::test_killed_worker_stops_the_job)
case "${1:-}" in
    demo) shift
          bash tools/setup_env.sh newest
          exec .venv/bin/python tools/demo.py "$@" ;;
    test) shift
          stacks=${MMHATNET_STACKS:-newest common py38}
          for stack in $stacks; do bash tools/setup_env.sh "$stack"; done
          failed=
          for stack in $stacks; do
              case "$stack" in
                  newest) venv=.venv; args=(tests) ;;
                  common) venv=.venv-common; args=(tests "${OLDER_ARGS[@]}") ;;
                  py38) venv=.venv-py38; args=(tests "${PY38_ARGS[@]}") ;;
              esac
              echo "[test] $stack stack: $venv/bin/python -m pytest ${args[*]}"
              SECONDS=0
              "$venv/bin/python" -m pytest "${args[@]}" "$@" \
                  || failed="$failed $stack"
              echo "[test] $stack stack: ${SECONDS}s"
          done
          [ -z "$failed" ] || { echo "[test] failed on:$failed" >&2; exit 1; } ;;
    check) shift
           bash tools/setup_env.sh newest
           exec .venv/bin/python tools/check.py "$@" ;;
    *) echo "usage: bash tools/run.sh demo|test|check [args]" >&2; exit 2 ;;
esac
