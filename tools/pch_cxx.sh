#!/usr/bin/env bash
# The C++ compiler of mmcv's build (tools/setup_env.sh sets CXX to this):
# c++ (or $MMHATNET_CXX), except that the first compile of an mmcv op
# first precompiles mmcv/ops/csrc/common/pytorch_cpp_helper.hpp beside
# itself, with that compile's own flags. 63 of mmcv 2.x's 83 C++ files
# open with that header, which includes torch's: parsing those was most of
# each file's compile time, and gcc now reads them once from the .gch. gcc
# takes the .gch only where it fits (first include, same flags and macros)
# and otherwise parses the header: the object code is the same either way.
set -uo pipefail
args=("$@") src= out= pch=()
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        -c) ;;
        -o) out=${args[i + 1]}; i=$((i + 1)) ;;
        -MF) i=$((i + 1)) ;;
        -MMD) ;;
        */mmcv/ops/csrc/*.cpp) src=${args[i]} ;;
        *) pch+=("${args[i]}") ;;
    esac
done
helper=${src%%/mmcv/ops/csrc/*}/mmcv/ops/csrc/common/pytorch_cpp_helper.hpp
if [ -n "$src" ] && [ -n "$out" ] && [ -f "$helper" ] \
        && command -v flock > /dev/null; then
    gch=$helper.gch
    (   # one build; the other jobs wait for it (its flock)
        flock 9
        if [ ! -e "$gch" ] && [ ! -e "$gch.failed" ]; then
            "${MMHATNET_CXX:-c++}" "${pch[@]}" -x c++-header "$helper" \
                -o "$gch.tmp" && mv "$gch.tmp" "$gch" || touch "$gch.failed"
        fi
    ) 9> "$helper.lock"
fi
exec "${MMHATNET_CXX:-c++}" "$@"
