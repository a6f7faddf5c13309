#!/usr/bin/env bash
# bash tools/slurm_launch.sh SCRIPT PARTITION JOB_NAME [SCRIPT args]:
# tools/SCRIPT through srun (slurm_train.sh and slurm_test.sh).
# GPUS (default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS.
set -x
SCRIPT=$1
PARTITION=$2
JOB_NAME=$3
shift 3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# the checkout's .venv (tools/setup_env.sh) when there is one; PYTHON wins
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python
    else PYTHON=python; fi
fi

PYTHONPATH="$ROOT:${PYTHONPATH:-}" srun -p "$PARTITION" \
    --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    $PYTHON -u "$ROOT/tools/$SCRIPT" --launcher=slurm "$@"
