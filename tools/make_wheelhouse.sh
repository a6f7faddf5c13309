#!/usr/bin/env bash
# Prepare, on a machine with a package index, a folder of wheels from which
# tools/setup_env.sh sets up a machine without one (docs/user_guides/gpu.md,
# "Offline: a wheelhouse"):
#   bash tools/make_wheelhouse.sh DIR [--stack newest|common|py38]
#       [--python-version X.Y] [--platform manylinux_2_28_x86_64]
#       [--have FREEZE] [--torch] [--no-deploy]
#   then, on the offline machine:
#   MMHATNET_WHEELHOUSE=DIR [MMHATNET_TORCH=existing] bash tools/setup_env.sh
# DIR gets the stack's wheels and their dependencies for that Python and
# platform (defaults: the stack's Python, or python3's for newest; this
# machine's glibc and CPU), mmcv's source, openmim, mmhatnet-wheelhouse.txt
# (what it was made for), and in mmcv-compiled/ each mmcv wheel this
# machine's set-up compiled for that Python (~/.cache/mmhatnet): a target
# with the same torch, CUDA and GPUs installs it instead of compiling.
# --have FREEZE: the target's `python -m pip list --format=freeze`, for a
#   target that keeps its torch (MMHATNET_TORCH=existing): the stack is
#   chosen by its torch, as setup_env.sh will, and the wheels of what it
#   already has at a version the stack admits are left out.
# --torch adds torch and torchvision (MMHATNET_TORCH, MMHATNET_TORCHVISION
#   and MMHATNET_TORCH_INDEX choose them as in setup_env.sh): GBs with CUDA.
# --no-deploy leaves out the ONNX deployment extra (onnx, onnxruntime).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '5,7p' "$0" | sed 's/^#/usage:/' >&2; exit 2
}
OUT= STACK=newest PYVER= PLATFORM= HAVE= WITH_TORCH= DEPLOY=1
while [ $# -gt 0 ]; do
    case "$1" in
        --stack) STACK=$2; shift ;;
        --python-version) PYVER=$2; shift ;;
        --platform) PLATFORM=$2; shift ;;
        --have) HAVE=$2; shift ;;
        --torch) WITH_TORCH=1 ;;
        --no-deploy) DEPLOY= ;;
        -h|--help) usage ;;
        -*) echo "[wheelhouse] unknown option $1" >&2; usage ;;
        *) [ -z "$OUT" ] || usage; OUT=$1 ;;
    esac
    shift
done
[ -n "$OUT" ] || usage
case "$STACK" in  # as in setup_env.sh
    newest) PINS=requirements/stack.txt; STACK_PY= ;;
    common) PINS=requirements/common.txt; STACK_PY=3.9 ;;
    py38) PINS=requirements/py38.txt; STACK_PY=3.8 ;;
    *) echo "[wheelhouse] unknown stack '$STACK'; use newest, common or" \
            "py38" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
PYVER=${PYVER:-${STACK_PY:-$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')}}
if [ -z "$PLATFORM" ]; then
    glibc=$(ldd --version 2>/dev/null | sed -n '1s/.* \([0-9]*\)\.\([0-9]*\)$/\1_\2/p')
    PLATFORM=manylinux_${glibc:-2_17}_$(uname -m)
fi
# manylinux_2_28_x86_64 runs every manylinux wheel of an older glibc: pip
# takes only the tags it is given, so give them all
if [[ "$PLATFORM" =~ ^manylinux_2_([0-9]+)_(.+)$ ]]; then
    arch=${BASH_REMATCH[2]}
    PLATFORMS=()
    for ((m = BASH_REMATCH[1]; m >= 5; m--)); do
        PLATFORMS+=(--platform "manylinux_2_${m}_$arch")
    done
    PLATFORMS+=(--platform "manylinux2014_$arch" --platform
                "manylinux2010_$arch" --platform "manylinux1_$arch")
else
    arch=${PLATFORM##*_}
    PLATFORMS=(--platform "$PLATFORM")
fi
tag=cp${PYVER/./}
TARGET=(--python-version "$PYVER" --implementation cp --abi "$tag"
        --abi abi3 --abi none "${PLATFORMS[@]}")
PIP=("$PYTHON" -m pip --disable-pip-version-check)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
: > "$tmp/keep.txt"
# --- a target that keeps its torch: its stack, and what it has ------------
HAVE_ARGS=()
if [ -n "$HAVE" ]; then
    [ -z "$WITH_TORCH" ] || { echo "[wheelhouse] --have keeps the target's" \
                                   "torch: no --torch" >&2; exit 2; }
    existing=$("$PYTHON" tools/existing_torch.py --freeze "$HAVE" \
               --python-version "$PYVER") || exit 1
    eval "$(grep -v '^echo' <<< "$existing")"  # PINS, NUMPY, KEPT
    printf '%s\n' $KEPT > "$tmp/keep.txt"
    HAVE_ARGS=(--have "$HAVE")
    STACK="the stack of the target's torch $TORCH"
fi
# ---------------------------------------------------------------------------
pin() { sed -n "s/^$1==//p" "$PINS"; }
MMCV=$(pin mmcv)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "[wheelhouse] $STACK ($PINS) for Python $PYVER, $PLATFORM, in $OUT"

# mmcv's source, whose setup.py needs setuptools < 81 (pkg_resources) to
# read its metadata; its runtime requirements
echo 'setuptools<81' > "$tmp/build-constraints.txt"
PIP_CONSTRAINT=$tmp/build-constraints.txt "${PIP[@]}" download -q \
    --no-deps --no-binary :all: "mmcv==$MMCV" -d "$OUT"
tar -xzOf "$OUT/mmcv-$MMCV.tar.gz" "mmcv-$MMCV/requirements/runtime.txt" \
    > "$tmp/mmcv.txt"
# what setup_env.sh installs from the index: the pins but torch,
# torchvision and openmim (--no-deps), and mmcv's requirements; the
# target's numpy where it keeps one
grep -v -E '^(torch|torchvision|openmim|mmcv)==' "$PINS" > "$tmp/reqs.txt"
[ -z "${NUMPY:-}" ] || sed -i '/^numpy\b/d' "$tmp/reqs.txt"
[ -n "$DEPLOY" ] || sed -i -E '/^(onnx|onnxruntime|onnxscript)\b/d' \
    "$tmp/reqs.txt"
if [ -n "$WITH_TORCH" ]; then
    printf '%s\n' "torch==${MMHATNET_TORCH:-$(pin torch)}" \
        "torchvision==${MMHATNET_TORCHVISION:-$(pin torchvision)}" \
        >> "$tmp/reqs.txt"
fi
INDEX=(${MMHATNET_TORCH_INDEX:+--extra-index-url "$MMHATNET_TORCH_INDEX"})
# resolve for the target, keep what it lacks, download that
"${PIP[@]}" install -q --dry-run --ignore-installed --target "$tmp/none" \
    --report "$tmp/report.json" --only-binary :all: "${TARGET[@]}" \
    "${INDEX[@]}" -r "$tmp/reqs.txt" -r "$tmp/mmcv.txt" -c "$tmp/keep.txt"
"$PYTHON" tools/wheelhouse.py needed "$tmp/report.json" "$tmp/reqs.txt" \
    "$tmp/mmcv.txt" --python-version "$PYVER" --machine "$arch" \
    "${HAVE_ARGS[@]}" > "$tmp/needed.txt"
"${PIP[@]}" download -q --no-deps --only-binary :all: "${TARGET[@]}" \
    "${INDEX[@]}" -d "$OUT" -r "$tmp/needed.txt"
MIM=$(pin openmim)
[ -z "$MIM" ] || "${PIP[@]}" download -q --no-deps "${TARGET[@]}" -d "$OUT" \
    "openmim==$MIM"
# mmcv wheels compiled here for this Python, under their cache keys (torch
# version, CUDA, GPU architectures): setup_env.sh takes the one whose key
# is the target's
compiled=()
for dir in "${XDG_CACHE_HOME:-$HOME/.cache}/mmhatnet/mmcv-$MMCV-torch"*"-py${PYVER/./}"{,-*}; do
    if ls "$dir"/mmcv-*.whl >/dev/null 2>&1; then
        mkdir -p "$OUT/mmcv-compiled/${dir##*/}"
        cp "$dir"/mmcv-*.whl "$OUT/mmcv-compiled/${dir##*/}/"
        compiled+=("${dir##*/}")
    fi
done
cat > "$OUT/mmhatnet-wheelhouse.txt" <<EOF
python=$PYVER
platform=$PLATFORM
pins=$PINS $(sha256sum "$PINS" | cut -d' ' -f1)
have=${HAVE:+$KEPT}
torch=${WITH_TORCH:+$(pin torch)}
deploy=${DEPLOY:+yes}
mmcv_compiled=${compiled[*]}
EOF
echo "[wheelhouse] $(du -sh "$OUT" | cut -f1) in $OUT" \
     "(compiled mmcv: ${compiled[*]:-none}); offline: copy it over, then" \
     "MMHATNET_WHEELHOUSE=$OUT bash tools/setup_env.sh"
