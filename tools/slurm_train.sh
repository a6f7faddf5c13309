#!/usr/bin/env bash
# bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# GPUS (default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS.
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
exec bash "$(dirname "$0")/slurm_launch.sh" train.py "$PARTITION" \
    "$JOB_NAME" "$CONFIG" --work-dir="$WORK_DIR" "$@"
