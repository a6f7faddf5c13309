# The pre-flight checks of tools/setup_env.sh (which sources this file):
# each prerequisite of a set-up is checked before anything is downloaded
# or compiled, and a missing one stops it with one line that names what is
# missing and the fix (docs/get_started.md, "Prerequisites").
# sh and bash 3 syntax only: preflight_system runs before any bash 4 syntax
# does (macOS's bash is 3.2, and `sh tools/setup_env.sh` is dash on Debian).

refuse() {  # the one line, then stop
    echo "[setup] $*" >&2
    exit 1
}

# Linux, bash >= 4.4 and the GNU tools the scripts use. bash 4.4, not 4.0:
# the scripts expand empty arrays under `set -u` (an error before 4.4) and
# use negative array indices (4.3). $1: the bash version to check.
preflight_system() {
    local os missing=
    os=$(uname -s 2>/dev/null || echo unknown)
    [ "$os" = Linux ] || refuse "Linux is required (uname -s says $os):" \
        "the set-up compiles mmcv's ops for Linux. Fix: run it on a Linux" \
        "machine, in a Linux container or in WSL 2"
    case ${1:-} in
        4.[4-9]*|[5-9].*|[1-9][0-9]*) ;;
        '') refuse "this is not bash, and the set-up scripts are bash" \
                   "scripts. Fix: run them with bash:" \
                   "bash tools/setup_env.sh, bash tools/run.sh" ;;
        *) refuse "bash >= 4.4 is required, this is bash $1. Fix: install" \
                  "bash 4.4 or newer (apt-get install bash) and run the" \
                  "command with it" ;;
    esac
    command -v sha256sum > /dev/null 2>&1 || missing="$missing sha256sum"
    command -v nproc > /dev/null 2>&1 || missing="$missing nproc"
    # BSD sed has no --version, and its -i takes an argument
    sed --version > /dev/null 2>&1 || missing="$missing GNU-sed"
    [ -z "$missing" ] || refuse "GNU tools are missing:$missing (the" \
        "scripts use sha256sum, nproc and GNU sed -i). Fix: apt-get" \
        "install coreutils sed"
}

# X.Y as a number that orders like the version: 3.9 -> 309, 3.11 -> 311
_py_number() {
    local major=${1%%.*} minor=0
    case $1 in *.*) minor=${1#*.}; minor=${minor%%.*} ;; esac
    echo $((major * 100 + minor))
}

# Whether Python X.Y ($1) is in a requirement ($2, e.g. '>=3.8,<3.14',
# compared on X.Y; '' admits all).
py_fits() {
    local v clause w rest
    v=$(_py_number "$1")
    rest=$(echo "$2" | tr -d ' '),
    while [ -n "$rest" ]; do
        clause=${rest%%,*}
        rest=${rest#*,}
        case $clause in
            '') continue ;;
            '>='*) w=${clause#>=} ;; '<='*) w=${clause#<=} ;;
            '=='*) w=${clause#==} ;; '!='*) w=${clause#!=} ;;
            '>'*) w=${clause#>} ;; '<'*) w=${clause#<} ;;
            *) continue ;;
        esac
        w=$(_py_number "${w%.\*}")
        case $clause in
            '>='*) [ "$v" -ge "$w" ] ;; '<='*) [ "$v" -le "$w" ] ;;
            '=='*) [ "$v" -eq "$w" ] ;; '!='*) [ "$v" -ne "$w" ] ;;
            '>'*) [ "$v" -gt "$w" ] ;; '<'*) [ "$v" -lt "$w" ] ;;
        esac || return 1
    done
}

# The Python that builds the environment ($1) runs and is in setup.py's
# python_requires and in what the stack needs ($2, '' for nothing more).
# $3: the Python to suggest in the fix (3.11). Sets PREFLIGHT_PY to X.Y.
# Any Python answers this (2.7 and 3.6 too), so the line names the fix
# where the set-up's own Python tools could not start.
preflight_python() {
    local setup_py want stack=
    PREFLIGHT_PY=$("$1" -c \
        'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
        || refuse "no Python: $1 does not run. Fix: apt-get install" \
                  "python$3 (Debian, Ubuntu), or set PYTHON=/path/to/python$3"
    setup_py=$(sed -n "s/.*python_requires=['\"]\([^'\"]*\)['\"].*/\1/p" \
               setup.py)
    want=$setup_py${2:+,$2}
    [ -z "$2" ] || stack=" or this stack's $2"
    py_fits "$PREFLIGHT_PY" "$want" || refuse "Python $PREFLIGHT_PY ($1)" \
        "is outside setup.py's python_requires $setup_py$stack. Fix: set" \
        "PYTHON=/path/to/python$3 (apt-get install python$3, or pyenv" \
        "install $3)"
}

# What creating or updating an environment needs, checked after the
# set-up found that it has work to do.
#   $1  the Python that builds it
#   $2  1: mmcv is compiled here (a C++ compiler and Python.h), else 0
#   $3  1: a venv is made (the venv module with ensurepip), else 0
preflight_build() {
    local cxx=${CXX:-c++} include
    if [ "$2" = 1 ]; then
        command -v "${cxx%% *}" > /dev/null 2>&1 || refuse "no C++ compiler:" \
            "${CXX:+CXX=}$cxx is not found, and mmcv's ops are compiled from" \
            "source. Fix: apt-get install g++ (Debian, Ubuntu; or" \
            "build-essential), dnf install gcc-c++, or set CXX to a compiler"
        include=$("$1" -c \
            'import sysconfig; print(sysconfig.get_paths()["include"])')
        [ -f "$include/Python.h" ] || refuse "Python.h is missing for" \
            "Python $PREFLIGHT_PY ($1; not in $include), and mmcv's ops are" \
            "compiled against it. Fix: apt-get install" \
            "python$PREFLIGHT_PY-dev (Debian, Ubuntu; dnf install" \
            "python$PREFLIGHT_PY-devel)"
    fi
    if [ "$3" = 1 ]; then
        "$1" -c 'import ensurepip, venv' > /dev/null 2>&1 || refuse "$1" \
            "cannot make a venv with pip (no ensurepip module). Fix:" \
            "apt-get install python$PREFLIGHT_PY-venv (Debian, Ubuntu), or" \
            "set up $1's own environment: MMHATNET_VENV=current"
    fi
}

# $1 GB of free disk for $3 (words) in $2 (a folder, or one still to be
# made inside an existing one); 0 checks nothing
preflight_disk() {
    local dir=$2 free
    [ "$1" -gt 0 ] || return 0
    while [ ! -d "$dir" ]; do dir=$(dirname "$dir"); done
    free=$(df -Pk "$dir" 2>/dev/null | awk 'NR == 2 {print $4}')
    [ -z "$free" ] || [ $((free / 1048576)) -ge "$1" ] || refuse "$1 GB of" \
        "free disk are needed for $3, $dir has $((free / 1048576)) GB. Fix:" \
        "free some space, or set MMHATNET_VENV to a folder on a larger disk"
}
