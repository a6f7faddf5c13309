#!/usr/bin/env bash
# Create or update a venv with a pinned OpenMMLab stack and mmhatnet.
#   bash tools/setup_env.sh [newest|common|py38]   (or MMHATNET_STACK=...)
# Idempotent: a second run with nothing changed returns in about a second.
# The compiled mmcv wheel is kept per torch version, Python tag, CUDA
# version and GPU architectures in ${XDG_CACHE_HOME:-~/.cache}/mmhatnet, so
# a new checkout does not compile mmcv again. On NVIDIA GPUs see README,
# "GPU".
set -euo pipefail
cd "$(dirname "$0")/.."

# --- stack selection ------------------------------------------------------------
# newest: requirements/stack.txt in .venv, the default.
# common: requirements/common.txt in .venv-common, on Python 3.9 (the oldest
# Python numpy 1.26 supports): torch 2.0 with mmcv 2.1.0, the environment
# most OpenMMLab projects have.
# py38: requirements/py38.txt in .venv-py38, on Python 3.8: the bottom of
# the supported range (mmcv 2.0.1, mmdet 3.0). See README, "Environment".
STACK=${1:-${MMHATNET_STACK:-newest}}
CHECK='import mmcv.ops, mmdet, mmseg, mmpretrain.evaluation, mmhatnet'
case "$STACK" in
    newest) PINS=requirements/stack.txt; VENV=.venv; PYVER= ;;
    common) PINS=requirements/common.txt; VENV=.venv-common; PYVER=3.9 ;;
    py38) PINS=requirements/py38.txt; VENV=.venv-py38; PYVER=3.8 ;;
    *) echo "[setup] unknown stack '$STACK'; use newest, common or py38" >&2
       exit 2 ;;
esac
find_python() {  # python$1 from PATH or, unactivated, from pyenv
    local c
    for c in "python$1" \
             "$(pyenv root 2>/dev/null)/versions/$1".*/bin/"python$1"; do
        if "$c" -c '' 2>/dev/null; then echo "$c"; return; fi
    done
    echo "[setup] no python$1 found (PATH, pyenv) for the $STACK stack: set" \
         "PYTHON=/path/to/python$1, or test the newest stack only with" \
         "MMHATNET_STACKS=newest bash tools/run.sh test" >&2; exit 1
}
if [ -z "${PYTHON:-}" ]; then
    if [ -n "$PYVER" ]; then PYTHON=$(find_python "$PYVER")
    else PYTHON=python3; fi
fi
# ---------------------------------------------------------------------------

pin() { sed -n "s/^$1==//p" "$PINS"; }
TORCH=${MMHATNET_TORCH:-$(pin torch)}
TORCHVISION=${MMHATNET_TORCHVISION:-$(pin torchvision)}
# --- GPU: the torch build this driver and these GPUs run ------------------
# tools/gpu_env.py reads nvidia-smi; it may add a local tag (+cu128) and an
# index to TORCH / TORCHVISION, or stop with what does not fit and the fix.
gpu=$("$PYTHON" tools/gpu_env.py torch --torch "$TORCH" \
      --torchvision "$TORCHVISION") || exit 1
eval "$gpu"
TORCH_INDEX_ARGS=(${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"})
# ---------------------------------------------------------------------------
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
MMCV=$(pin mmcv)
# the stack without the torch pins, which the environment may override
REQS=$(mktemp); trap 'rm -f "$REQS"' EXIT
grep -v -E '^(torch|torchvision|openmim)==' "$PINS" > "$REQS"
TORCH_REQS=("torch==$TORCH" "torchvision==$TORCHVISION")
STAMP="$VENV/.mmhatnet-stamp"
want=$( (echo "$TORCH $TORCHVISION"; cat "$PINS" setup.py) \
        | sha256sum | cut -d' ' -f1)
want="$want${MMHATNET_GPU_KEY:+-$MMHATNET_GPU_KEY}"  # the GPUs

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
echo "[setup] torch==$TORCH torchvision==$TORCHVISION and build tools"
$PIP install -q "${TORCH_INDEX_ARGS[@]}" "${TORCH_REQS[@]}" \
    -r <(grep -E '^(setuptools|wheel|ninja|psutil|numpy)' "$REQS")

# mmcv $MMCV is published only as source; mmdet needs its compiled ops.
# --- GPU: CUDA ops for the GPUs torch sees, or CPU ops ----------------------
# sets FORCE_CUDA, TORCH_CUDA_ARCH_LIST, CUDA_HOME (installing NVIDIA's nvcc
# wheels when no toolkit fits) and the cache key; or stops, before compiling
mmcv_gpu=$($VENV/bin/python tools/gpu_env.py mmcv) || exit 1
eval "$mmcv_gpu"
# ---------------------------------------------------------------------------
torch_tag=$($VENV/bin/python -c 'import torch, sys; print(torch.__version__.replace("+", "_"), "py%d%d" % sys.version_info[:2], sep="-")')
WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/mmhatnet/mmcv-$MMCV-torch$torch_tag${MMHATNET_MMCV_KEY:+-$MMHATNET_MMCV_KEY}"
if ! ls "$WHEELS"/mmcv-*.whl >/dev/null 2>&1; then
    mkdir -p "$WHEELS"
    log="$WHEELS/build.log"
    src=$(mktemp -d)
    $PIP download -q --no-deps --no-binary :all: "mmcv==$MMCV" -d "$src"
    tar -xzf "$src"/mmcv-*.tar.gz -C "$src"
    # mmcv's setup.py asks for C++17, but torch >= 2.14's headers need C++20:
    # compile with the newest standard torch's own extension builder uses.
    cxx=$(grep -ohE 'c\+\+(17|20|23)' \
          "$($VENV/bin/python -c 'import torch.utils.cpp_extension as c; print(c.__file__)')" \
          | sort -uV | tail -1)
    sed -i "s/-std=c++17/-std=${cxx:-c++17}/" "$src/mmcv-$MMCV/setup.py"
    echo "[setup] compiling mmcv $MMCV with ops (10 to 15 min on 2 idle cores; log: $log)"
    # Python's own CFLAGS (pyenv's: -DNDEBUG -g -fwrapv -O3 -Wall) with -g0:
    # the debug info doubles the compile time of each file (torch's
    # templates) and changes no instruction of the ops. setuptools replaces
    # Python's CFLAGS by the environment's (older ones appended it), so the
    # whole set is given.
    # tools/pch_cxx.sh: c++ with torch's headers precompiled once, not
X
    cflags=$($VENV/bin/python -c 'import sysconfig; print(sysconfig.get_config_var("CFLAGS") or "")')
    CFLAGS="${CFLAGS:-$cflags} -g0" MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        MMHATNET_CXX=${CXX:-c++} CXX=$PWD/tools/pch_cxx.sh \
        $PIP wheel -v --no-deps --no-build-isolation --no-cache-dir \
        "$src/mmcv-$MMCV" -w "$WHEELS.tmp" 2>&1 | tee "$log" \
        | grep --line-buffered -oE '^ *\[[0-9]+/[0-9]+\]' \
        | sed -u 's/^ */[setup] mmcv compile /' || true
    rm -rf "$src"
    ls "$WHEELS.tmp"/mmcv-*.whl >/dev/null 2>&1 \
        || { echo "[setup] mmcv build failed, see $log" >&2; exit 1; }
    mv "$WHEELS.tmp"/mmcv-*.whl "$WHEELS"/ && rm -rf "$WHEELS.tmp"
fi
MMCV_WHEEL=("$WHEELS"/mmcv-*.whl)

echo "[setup] OpenMMLab stack and mmhatnet"
$PIP install -q "${TORCH_INDEX_ARGS[@]}" "${MMCV_WHEEL[@]}" -r "$REQS" \
    "${TORCH_REQS[@]}"
MIM=$(pin openmim)
[ -z "$MIM" ] || $PIP install -q --no-deps "openmim==$MIM"
$PIP install -q --no-deps --no-build-isolation -e .
$VENV/bin/python -c "$CHECK"
echo "$want" > "$STAMP"
echo "[setup] ready: $VENV"
