#!/usr/bin/env bash
# bash tools/dist_train.sh CONFIG GPUS [train.py args]
# Several nodes: NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
CONFIG=$1
GPUS=$2
shift 2
exec bash "$(dirname "$0")/dist_launch.sh" train.py "$GPUS" "$CONFIG" "$@"
