#!/usr/bin/env bash
# bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
# Several nodes: NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
exec bash "$(dirname "$0")/dist_launch.sh" test.py "$GPUS" "$CONFIG" \
    "$CHECKPOINT" "$@"
