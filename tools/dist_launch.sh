#!/usr/bin/env bash
# bash tools/dist_launch.sh SCRIPT GPUS [SCRIPT args]: tools/SCRIPT on GPUS
# processes per node through torchrun (dist_train.sh and dist_test.sh).
# Several nodes: NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
SCRIPT=$1
GPUS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# the checkout's .venv (tools/setup_env.sh) when there is one; PYTHON wins
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python
    else PYTHON=python; fi
fi

PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec $PYTHON -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$ROOT/tools/$SCRIPT" --launcher pytorch "$@"
