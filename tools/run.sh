#!/usr/bin/env bash
# The two commands of the README:
#   bash tools/run.sh demo   set up .venv, then run the main job
#   bash tools/run.sh test   set up the stacks' venvs, then run the test
#                            suite on each (newest: .venv; common, torch
#                            2.0 with mmcv 2.1.0: .venv-common; py38, the
#                            bottom of the supported range: .venv-py38;
#                            docs/contributing.md, "Tests")
#   bash tools/run.sh check  set up .venv, then check the stack on every
#                            device (tools/check.py; docs/user_guides/gpu.md)
# MMHATNET_STACKS="newest" (or "common", "py38", ...) tests those only;
# MMHATNET_MARKS="not e2e" narrows every stack's marker expression.
# Pre-flight: tools/setup_env.sh checks what each set-up needs before its
# first download (tools/preflight.sh); `test` checks every stack's first.
# Linux and bash >= 4.4 are checked here first, in sh and bash 3 syntax,
# before any bash 4 syntax runs (macOS's bash is 3.2), as tools/preflight.sh
# checks them for tools/setup_env.sh.
case "$(uname -s) ${BASH_VERSION:-}" in
    'Linux 4.'[4-9]*|'Linux '[5-9].*|'Linux '[1-9][0-9]*) ;;
    *) echo "[setup] Linux and bash >= 4.4 are required, this is" \
            "$(uname -s) with ${BASH_VERSION:+bash }${BASH_VERSION:-sh}." \
            "Fix: run it with bash 4.4 or newer on Linux (a Linux machine," \
            "container or WSL 2): bash tools/run.sh" >&2
       exit 1 ;;
esac
set -euo pipefail
cd "$(dirname "$0")/.."
# What each stack runs: a pytest marker expression (markers: pytest.ini).
# None runs the tests that only run when asked for (slow). The newest stack
# runs everything else but the cross-stack checkpoint chain,
# which the common stack drives (it needs the newest venv, set up first)
# in place of its own train + test of those two models; the older stacks
# lack the deploy extra; the Python 3.8 stack shares torch 2.0.1 and
# mmengine 0.8.5 with the common one, which runs what those alone decide.
declare -A MARKS=(
    [newest]='not slow and not cross_stack'
    [common]='not slow and not deploy and not in_checkpoint_chain'
    [py38]='not slow and not deploy and not cross_stack and not torch_mmengine'
)
declare -A VENVS=([newest]=.venv [common]=.venv-common [py38]=.venv-py38)

# Set up the first stack, then test the stacks in turn. The others are set
# up in the background meanwhile, one after the other, at the lowest
# priority (nice 19, best-effort I/O level 7): they take what the first
# set-up's downloads and the suites leave idle (a suite keeps about 1.2 of
# the 2 cores busy), and slow the foreground little. Each stack's suite
# waits for its own set-up; its log is printed then.
run_tests() {
    local stacks=(${MMHATNET_STACKS:-newest common py38}) stack
    for stack in "${stacks[@]}"; do
        [ -n "${VENVS[$stack]:-}" ] || {
            echo "[test] unknown stack '$stack': use newest, common, py38" >&2
            exit 2; }
    done
    MMHATNET_PREFLIGHT=1 bash tools/setup_env.sh "${stacks[@]}" > /dev/null
    local logs low='nice -n 19'
    logs=$(mktemp -d)
    ! command -v ionice > /dev/null || low="$low ionice -c 2 -n 7"
    setsid bash -c '
        logs=$1 low=$2; shift 2
        for stack; do
            start=$SECONDS
            $low bash tools/setup_env.sh "$stack" > "$logs/$stack.log" 2>&1
            echo "$? $((SECONDS - start))" > "$logs/$stack.done"
        done' _ "$logs" "$low" "${stacks[@]:1}" &
    local setup=$!
    trap "kill -- -$setup 2> /dev/null || true; rm -rf '$logs'" EXIT
    local rc=0 failed= times=() summary=()
    SECONDS=0
    bash tools/setup_env.sh "${stacks[0]}" || rc=$?
    echo "$rc $SECONDS" > "$logs/${stacks[0]}.done"
    for stack in "${stacks[@]}"; do
        local venv=${VENVS[$stack]} secs start=$SECONDS line
        if [ "$stack" != "${stacks[0]}" ]; then
            echo "[test] $stack stack: set-up in the background, log:"
            while [ ! -s "$logs/$stack.done" ] && kill -0 "$setup" 2> /dev/null
            do sleep 5; done
            cat "$logs/$stack.log"
            [ -s "$logs/$stack.done" ] || echo "1 0" > "$logs/$stack.done"
        fi
        read -r rc secs < "$logs/$stack.done"
        times+=("[test] $stack stack: set-up ${secs}s (waited for $((
                 SECONDS - start))s)")
        if [ "$rc" != 0 ]; then
            failed="$failed $stack"
            summary+=("[test] $stack stack: set-up failed ($rc)")
            continue
        fi
        local marks=${MARKS[$stack]}
        [ -z "${MMHATNET_MARKS:-}" ] || marks="($marks) and ($MMHATNET_MARKS)"
        echo "[test] $stack stack: $venv/bin/python -m pytest" \
             "-m '$marks' $*"
        start=$SECONDS
        "$venv/bin/python" -m pytest -m "$marks" "$@" \
            | tee "$logs/$stack.out" || failed="$failed $stack"
        times[-1]+=", suite $((SECONDS - start))s"
        # pytest's closing line ('=== N passed ... ==='), for the end
        line=$(grep -E '(passed|failed|error|skipped|deselected|no tests ran)'\
'.* in [0-9.]+s' "$logs/$stack.out" | tail -1) \
            || line="[test] $stack stack: pytest printed no summary"
        summary+=("[test] $stack stack:" "$line")
    done
    printf '%s\n' "${times[@]}" "[test] total ${SECONDS}s" "${summary[@]}"
    [ -z "$failed" ] || { echo "[test] failed on:$failed" >&2; exit 1; }
}

case "${1:-}" in
    demo) shift
          bash tools/setup_env.sh newest
          exec .venv/bin/python tools/demo.py "$@" ;;
    test) shift
          run_tests "$@" ;;
    check) shift
           bash tools/setup_env.sh newest
           exec .venv/bin/python tools/check.py "$@" ;;
    *) echo "usage: bash tools/run.sh demo|test|check [args]" >&2; exit 2 ;;
esac
