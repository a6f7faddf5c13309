#!/usr/bin/env bash
# Create or update a venv with a pinned OpenMMLab stack and mmhatnet.
#   bash tools/setup_env.sh [newest|common|py38]   (or MMHATNET_STACK=...)
# Idempotent: a second run with nothing changed returns in about a second.
# The compiled mmcv wheel is kept per torch version, Python tag, CUDA
# version and GPU architectures in ${XDG_CACHE_HOME:-~/.cache}/mmhatnet, so
# a new checkout does not compile mmcv again. On NVIDIA GPUs see
# docs/user_guides/gpu.md.
# Switches (docs/user_guides/gpu.md, "Keep the torch you have", "Offline"):
#   MMHATNET_TORCH=existing   keep the torch, torchvision, numpy, CUDA and
#                             nvcc of $PYTHON (default python3): the venv is
#                             made over it (--system-site-packages), the
#                             stack's pins are chosen by its torch version
#   MMHATNET_VENV=DIR         the environment to set up instead of .venv...;
#                 =current    $PYTHON's own environment, no venv (implies
#                             MMHATNET_TORCH=existing)
#   MMHATNET_WHEELHOUSE=DIR   install from DIR alone, with no network: a
#                             folder made by tools/make_wheelhouse.sh
#   MMHATNET_DEVICE=cpu       set up for the CPU on a machine with NVIDIA
#                             GPUs: nvidia-smi is not read, mmcv's ops are
#                             compiled for the CPU only (no nvcc)
# Pre-flight (tools/preflight.sh; docs/get_started.md, "Prerequisites"):
# every prerequisite is checked before the first download, and a missing
# one stops the set-up with one line that names it and the fix.
#   MMHATNET_PREFLIGHT=1      check only and set up nothing; with several
#                             stacks, check each, and the disk for all
#                             (tools/run.sh test, before its first set-up)
#   MMHATNET_DISK_GB=N        the free disk a new venv needs (0: no check)
# What was set up is written to <environment>/.mmhatnet-setup.
cd "$(dirname "$0")/.." || exit 1
. tools/preflight.sh
preflight_system "${BASH_VERSION:-}"  # before any bash 4 syntax runs
set -euo pipefail
# --- pre-flight of several stacks: each one's checks, then their disk ------
# each prints the GB its new venv needs (0: the venv is there)
if [ -n "${MMHATNET_PREFLIGHT:-}" ] && [ $# -gt 1 ]; then
    gb=0
    for stack; do
        n=$(bash tools/setup_env.sh "$stack") || exit
        gb=$((gb + n))
    done
    preflight_disk "$gb" "$PWD" "the venvs of the $* stacks"
    exit 0
fi
# in a pre-flight, stdout is the GB needed alone (fd 3)
[ -z "${MMHATNET_PREFLIGHT:-}" ] || exec 3>&1 1>/dev/null

# --- stack selection ------------------------------------------------------------
# newest: requirements/stack.txt in .venv, the default.
# common: requirements/common.txt in .venv-common, on Python 3.9 (the oldest
# Python numpy 1.26 supports): torch 2.0 with mmcv 2.1.0, the environment
# most OpenMMLab projects have.
# py38: requirements/py38.txt in .venv-py38, on Python 3.8: the bottom of
# the supported range (mmcv 2.0.1, mmdet 3.0). See docs/get_started.md.
# PYNEED: the Python the pins install on (the newest: torch 2.14.1's
# Requires-Python); GB: the free disk its new venv needs (the venv and the
# build's files).
STACK=${1:-${MMHATNET_STACK:-newest}}
CHECK='import mmcv.ops, mmdet, mmseg, mmpretrain.evaluation, mmhatnet'
case "$STACK" in
    newest) PINS=requirements/stack.txt VENV=.venv GB=7
            PYVER= PYNEED='>=3.10' ;;
    common) PINS=requirements/common.txt VENV=.venv-common GB=5
            PYVER=3.9 PYNEED='==3.9' ;;
    py38) PINS=requirements/py38.txt VENV=.venv-py38 GB=5
          PYVER=3.8 PYNEED='==3.8' ;;
    *) echo "[setup] unknown stack '$STACK'; use newest, common or py38" >&2
       exit 2 ;;
esac
# ---------------------------------------------------------------------------
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
[ "${MMHATNET_VENV:-}" != current ] || MMHATNET_TORCH=existing
EXISTING=
if [ "${MMHATNET_TORCH:-}" = existing ]; then
    # the pins follow $PYTHON's torch (below), not $PYTHON the pins
    EXISTING=1 PYNEED= PYTHON=${PYTHON:-python3}
elif [ -z "${PYTHON:-}" ]; then
    if [ -n "$PYVER" ]; then PYTHON=$(find_python "$PYVER")
    else PYTHON=python3; fi
fi
preflight_python "$PYTHON" "$PYNEED" "${PYVER:-3.11}"
# --- existing torch: keep $PYTHON's torch, choose the pins by it -----------
# tools/existing_torch.py checks Python, torch, torchvision and numpy
# against setup.py's ranges and sets TORCH, TORCHVISION, NUMPY (kept, ''
# if absent), PINS and MMHATNET_GPU_KEY; or stops with what is out of range.
if [ -n "$EXISTING" ]; then
    existing=$("$PYTHON" tools/existing_torch.py) || exit 1
    eval "$existing"
fi
VENV=${MMHATNET_VENV:-$VENV}
# ---------------------------------------------------------------------------

pin() { sed -n "s/^$1==//p" "$PINS"; }
if [ -z "$EXISTING" ]; then
    TORCH=${MMHATNET_TORCH:-$(pin torch)}
    TORCHVISION=${MMHATNET_TORCHVISION:-$(pin torchvision)}
    # --- GPU: the torch build this driver and these GPUs run --------------
    # tools/gpu_env.py reads nvidia-smi; it may add a local tag (+cu128) and
    # an index to TORCH / TORCHVISION, or stop with what does not fit and
    # the fix.
    gpu=$("$PYTHON" tools/gpu_env.py torch --torch "$TORCH" \
          --torchvision "$TORCHVISION") || exit 1
    eval "$gpu"
fi
TORCH_INDEX_ARGS=(${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"})
# ---------------------------------------------------------------------------
# the environment's Python: the venv's, or $PYTHON itself (current)
CURRENT=
if [ "$VENV" = current ]; then
    CURRENT=1
    PY=$(command -v "$PYTHON")
    VENV=$("$PY" -c 'import sys; print(sys.prefix)')
else
    PY=$VENV/bin/python
fi
PIP="$PY -m pip --disable-pip-version-check"
MMCV=$(pin mmcv)
# the stack without the torch pins, which the environment may override
REQS=$(mktemp); CONSTRAINTS=$(mktemp)
trap 'rm -f "$REQS" "$CONSTRAINTS"' EXIT
grep -v -E '^(torch|torchvision|openmim)==' "$PINS" > "$REQS"
TORCH_REQS=("torch==$TORCH" "torchvision==$TORCHVISION")
# --- existing torch: pip may not replace torch, torchvision or numpy ------
KEEP_ARGS=()
if [ -n "$EXISTING" ]; then
    TORCH_REQS=()
    printf '%s\n' "torch==$TORCH" "torchvision==$TORCHVISION" \
        ${NUMPY:+"numpy==$NUMPY"} > "$CONSTRAINTS"
    KEEP_ARGS=(-c "$CONSTRAINTS")
    [ -z "$NUMPY" ] || sed -i '/^numpy\b/d' "$REQS"
fi
# --- offline: every package from a wheelhouse, no index -------------------
# tools/make_wheelhouse.sh wrote it for one Python version and platform
WH=
if [ -n "${MMHATNET_WHEELHOUSE:-}" ]; then
    WH=$(cd "$MMHATNET_WHEELHOUSE" 2>/dev/null && pwd) \
        || { echo "[setup] MMHATNET_WHEELHOUSE=$MMHATNET_WHEELHOUSE is not" \
                  "a folder" >&2; exit 1; }
    made_for=$(sed -n 's/^python=//p' "$WH/mmhatnet-wheelhouse.txt" \
               2>/dev/null || true)
    here=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if [ "$made_for" != "$here" ]; then
        echo "[setup] the wheelhouse $WH is for Python ${made_for:-?} (its" \
             "mmhatnet-wheelhouse.txt), this is Python $here ($PYTHON):" \
             "make one with tools/make_wheelhouse.sh --python-version" \
             "$here" >&2
        exit 1
    fi
    if [ -z "$EXISTING" ] && ! ls "$WH/torch-${TORCH%%+*}"[-+]*.whl \
            >/dev/null 2>&1; then
        echo "[setup] the wheelhouse $WH has no torch $TORCH: make it with" \
             "tools/make_wheelhouse.sh --torch, or keep an installed torch" \
             "with MMHATNET_TORCH=existing" >&2
        exit 1
    fi
    export PIP_NO_INDEX=1 PIP_FIND_LINKS=$WH
    TORCH_INDEX_ARGS=()
fi
# ---------------------------------------------------------------------------
STAMP="$VENV/.mmhatnet-stamp"
want=$( (echo "$TORCH $TORCHVISION"; cat "$PINS" setup.py) \
        | sha256sum | cut -d' ' -f1)
want="$want${MMHATNET_GPU_KEY:+-$MMHATNET_GPU_KEY}"  # the GPUs
want="$want${EXISTING:+-existing-numpy$NUMPY}"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    [ -z "${MMHATNET_PREFLIGHT:-}" ] || echo 0 >&3
    exit 0
fi

# --- pre-flight: what this set-up needs, before its first download ---------
# mmcv is compiled unless a wheel compiled for this mmcv, torch and Python
# is at hand (the cache, the wheelhouse): a forecast, as the cache's full
# key is known once torch is installed
compile=1
for dir in "${XDG_CACHE_HOME:-$HOME/.cache}/mmhatnet" \
           ${WH:+"$WH/mmcv-compiled"}; do
    key=mmcv-$MMCV-torch${TORCH%%+*}[-_]*py${PREFLIGHT_PY/./}*
    ! compgen -G "$dir/$key/mmcv-*.whl" > /dev/null || compile=0
done
venv=0 gb=0  # a venv to make, and the free disk it needs
if [ -z "$CURRENT" ] && [ ! -x "$PY" ]; then
    venv=1 gb=${MMHATNET_DISK_GB:-$GB}
fi
preflight_build "$PYTHON" "$compile" "$venv"
preflight_disk "$gb" "$VENV" "$VENV"
[ -z "${MMHATNET_PREFLIGHT:-}" ] || { echo "$gb" >&3; exit 0; }

# --- existing torch: a venv that sees $PYTHON's packages -------------------
torch_at() {  # where a Python imports torch from, without importing it
    "$1" -c 'import importlib.util as u; s = u.find_spec("torch"); print(s.origin if s else "")'
}
[ -z "$EXISTING" ] || TORCH_AT=$(torch_at "$PYTHON")
if [ -n "$EXISTING" ] && [ -z "$CURRENT" ]; then
    if [ ! -x "$PY" ]; then
        "$PYTHON" -m venv --system-site-packages "$VENV" || {
            echo "[setup] $PYTHON cannot make a venv (Debian, Ubuntu:" \
                 "apt-get install python3-venv); or set up its own" \
                 "environment: MMHATNET_VENV=current" >&2; exit 1; }
        # a venv made from a venv's Python sees the base Python's packages,
        # not that venv's: add its site-packages
        "$PYTHON" -c 'import site, sys; sys.prefix != sys.base_prefix and print("\n".join(site.getsitepackages()))' \
            > "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/mmhatnet-base-env.pth"
    fi
    if [ "$(torch_at "$PY")" != "$TORCH_AT" ]; then
        echo "[setup] $VENV imports torch from '$(torch_at "$PY")', not" \
             "from $PYTHON's $TORCH_AT: remove $VENV (made" \
             "without MMHATNET_TORCH=existing), or set MMHATNET_VENV to" \
             "another folder" >&2
        exit 1
    fi
fi
# ---------------------------------------------------------------------------
[ -x "$PY" ] || "$PYTHON" -m venv "$VENV"
if [ -n "$EXISTING" ]; then
    echo "[setup] keeping torch $TORCH, torchvision $TORCHVISION ($PYTHON);" \
         "build tools"
else
    echo "[setup] torch==$TORCH torchvision==$TORCHVISION and build tools"
fi
$PIP install -q "${TORCH_INDEX_ARGS[@]}" "${KEEP_ARGS[@]}" "${TORCH_REQS[@]}" \
    -r <(grep -E '^(setuptools|wheel|ninja|psutil|numpy)' "$REQS")

# mmcv $MMCV is published only as source; mmdet needs its compiled ops.
# --- GPU: CUDA ops for the GPUs torch sees, or CPU ops ----------------------
# sets FORCE_CUDA, TORCH_CUDA_ARCH_LIST, CUDA_HOME (installing NVIDIA's nvcc
# wheels when no toolkit fits) and the cache key; or stops, before compiling
mmcv_gpu=$("$PY" tools/gpu_env.py mmcv) || exit 1
eval "$mmcv_gpu"
# ---------------------------------------------------------------------------
torch_tag=$("$PY" -c 'import torch, sys; print(torch.__version__.replace("+", "_"), "py%d%d" % sys.version_info[:2], sep="-")')
WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/mmhatnet/mmcv-$MMCV-torch$torch_tag${MMHATNET_MMCV_KEY:+-$MMHATNET_MMCV_KEY}"
# --- offline: a wheel compiled for the same key, carried in the wheelhouse -
if [ -n "$WH" ] && ! ls "$WHEELS"/mmcv-*.whl >/dev/null 2>&1 \
        && ls "$WH/mmcv-compiled/${WHEELS##*/}"/mmcv-*.whl >/dev/null 2>&1
then
    WHEELS=$WH/mmcv-compiled/${WHEELS##*/}
fi
# ---------------------------------------------------------------------------
if ! ls "$WHEELS"/mmcv-*.whl >/dev/null 2>&1; then
    mkdir -p "$WHEELS"
    log="$WHEELS/build.log"
    src=$(mktemp -d)
    if [ -n "$WH" ]; then  # offline: mmcv's source from the wheelhouse
        cp "$WH/mmcv-$MMCV.tar.gz" "$src"/ || {
            echo "[setup] the wheelhouse has no mmcv-$MMCV.tar.gz" >&2
            exit 1; }
    else
        $PIP download -q --no-deps --no-binary :all: "mmcv==$MMCV" -d "$src"
    fi
    tar -xzf "$src"/mmcv-*.tar.gz -C "$src"
    # mmcv's setup.py asks for C++17, but torch >= 2.14's headers need C++20:
    # compile with the newest standard torch's own extension builder uses.
    cxx=$(grep -ohE 'c\+\+(17|20|23)' \
          "$("$PY" -c 'import torch.utils.cpp_extension as c; print(c.__file__)')" \
          | sort -uV | tail -1)
    sed -i "s/-std=c++17/-std=${cxx:-c++17}/" "$src/mmcv-$MMCV/setup.py"
    echo "[setup] compiling mmcv $MMCV with ops (minutes; times: docs/contributing.md#measured-times; log: $log)"
    # Python's own CFLAGS (pyenv's: -DNDEBUG -g -fwrapv -O3 -Wall) with -g0:
    # the debug info doubles the compile time of each file (torch's
    # templates) and changes no instruction of the ops. setuptools replaces
    # Python's CFLAGS by the environment's (older ones appended it), so the
    # whole set is given.
    # tools/pch_cxx.sh: c++ with torch's headers precompiled once, not
    # parsed again for each of the ops' files: half the CPU time, the same
    # instructions.
    cflags=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("CFLAGS") or "")')
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
$PIP install -q "${TORCH_INDEX_ARGS[@]}" "${KEEP_ARGS[@]}" "${MMCV_WHEEL[@]}" \
    -r "$REQS" "${TORCH_REQS[@]}"
# pip keeps an installed mmcv of the same version as the wheel: one compiled
# for other GPUs, or CUDA ops after a switch to MMHATNET_DEVICE=cpu
$PIP install -q --no-deps --force-reinstall "${MMCV_WHEEL[@]}"
MIM=$(pin openmim)
[ -z "$MIM" ] || $PIP install -q --no-deps "openmim==$MIM"
$PIP install -q --no-deps --no-build-isolation -e .
"$PY" -c "$CHECK"
# --- existing torch: still the one found ----------------------------------
if [ -n "$EXISTING" ]; then
    now=$("$PY" tools/existing_torch.py --kept)
    [ -n "$NUMPY" ] || now=${now% numpy==*}  # the pins installed numpy
    now="$now $(torch_at "$PY")"
    if [ "$now" != "$KEPT $TORCH_AT" ]; then
        echo "[setup] the set-up changed what it keeps: $now, was $KEPT" \
             "$TORCH_AT" >&2
        exit 1
    fi
fi
# ---------------------------------------------------------------------------
# --- what was set up, for a report (tools/run.sh check) -------------------
cat > "$VENV/.mmhatnet-setup" <<EOF
python=$PY
torch=${EXISTING:+existing }torch==$TORCH torchvision==$TORCHVISION
pins=$PINS
wheelhouse=$WH
mmcv=${MMCV_WHEEL[*]}
EOF
# ---------------------------------------------------------------------------
echo "$want" > "$STAMP"
echo "[setup] ready: $VENV"
