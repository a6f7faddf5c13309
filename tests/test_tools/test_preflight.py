"""The pre-flight of ``tools/setup_env.sh`` and ``tools/run.sh``: each
missing prerequisite stops them with one line that names it and the fix,
and this machine passes.

The real scripts run in this checkout with ``MMHATNET_PREFLIGHT=1`` (check
only, set up nothing) and a venv folder under ``tmp_path``; a missing
prerequisite is simulated, never uninstalled: a ``PATH`` of links to the
system's programs without the one that is missing, a fake ``uname``, a
wrapper of this Python whose ``sitecustomize`` hides ``Python.h`` or
``ensurepip``, and the thresholds' environment variables. Nothing is
downloaded (``PIP_NO_INDEX`` besides) or compiled."""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PY = '%d.%d' % sys.version_info[:2]
#: the stack whose Python this is (the newest takes >= 3.10)
STACK = {'3.8': 'py38', '3.9': 'common'}.get(PY, 'newest')
PINS = {'py38': 'py38.txt', 'common': 'common.txt', 'newest': 'stack.txt'}


def _pin(name):
    with open(os.path.join(ROOT, 'requirements', PINS[STACK])) as f:
        return re.search(rf'^{name}==(\S+)$', f.read(), re.M).group(1)


def _env(tmp_path, **changes):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('MMHATNET_') and k not in ('CXX', 'PYTHON')}
    env.update(MMHATNET_PREFLIGHT='1', PYTHON=sys.executable,
               MMHATNET_VENV=str(tmp_path / 'venv'), MMHATNET_DISK_GB='1',
               XDG_CACHE_HOME=str(tmp_path / 'cache'), PIP_NO_INDEX='1')
    env.update(changes)
    return env


def _setup(tmp_path, *stacks, **changes):
    return subprocess.run(
        ['bash', 'tools/setup_env.sh', *(stacks or [STACK])], cwd=ROOT,
        env=_env(tmp_path, **changes), capture_output=True, text=True,
        timeout=60)


def _refused(proc, *words):
    """One line on stderr, with the words and a fix; nothing set up."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('[setup] ') and 'Fix: ' in lines[0]
    for word in words:
        assert word in lines[0]
    return lines[0]


def _path(tmp_path, hide=(), **fakes):
    """A PATH of links to the system's programs but those in ``hide``,
    after scripts named ``fakes`` (``name=script body``)."""
    farm = tmp_path / 'system'
    farm.mkdir()
    for d in ('/usr/local/bin', '/usr/bin', '/bin'):
        for name in os.listdir(d) if os.path.isdir(d) else ():
            if name not in hide and not (farm / name).exists():
                (farm / name).symlink_to(os.path.join(d, name))
    first = tmp_path / 'fakes'
    first.mkdir()
    for name, body in fakes.items():
        (first / name).write_text('#!/bin/sh\n' + body + '\n')
        (first / name).chmod(0o755)
    return f'{first}:{farm}'


def _python(tmp_path, sitecustomize):
    """A wrapper of this Python that runs ``sitecustomize`` first."""
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'sitecustomize.py').write_text(sitecustomize)
    wrapper = tmp_path / 'python'
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={site} exec '
                       f'{sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


# --- this machine passes -------------------------------------------------

def test_a_new_venv_passes_here_and_reports_its_disk(tmp_path):
    proc = _setup(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '1\n'  # the GB it needs, MMHATNET_DISK_GB
    assert not (tmp_path / 'venv').exists()


def test_an_existing_venv_is_not_refused_for_disk(tmp_path):
    """A re-run of a set-up needs no new disk (this interpreter's venv)."""
    proc = _setup(tmp_path, MMHATNET_VENV=sys.prefix,
                  MMHATNET_DISK_GB=str(10 ** 6))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '0\n'


# --- each refusal ----------------------------------------------------------

def test_not_linux(tmp_path):
    proc = _setup(tmp_path, PATH=_path(tmp_path, uname='echo Darwin'))
    _refused(proc, 'Linux is required (uname -s says Darwin)', 'WSL 2')


def test_run_sh_checks_linux_before_anything(tmp_path):
    env = _env(tmp_path, PATH=_path(tmp_path, uname='echo Darwin'))
    proc = subprocess.run(['bash', 'tools/run.sh', 'demo'], cwd=ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=60)
    _refused(proc, 'Linux and bash >= 4.4 are required, this is Darwin')


@pytest.mark.parametrize('version', ['3.2.57(1)-release', '4.3.48(1)-release'])
def test_bash_older_than_4_4(version):
    """The check itself, with the version macOS and CentOS 7 bring."""
    proc = subprocess.run(
        ['bash', '-c', f'. tools/preflight.sh; preflight_system "{version}"'],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    _refused(proc, f'bash >= 4.4 is required, this is bash {version}')


@pytest.mark.skipif(subprocess.run(['sh', '-c', 'echo ${BASH_VERSION:-}'],
                                   capture_output=True, text=True).stdout
                    .strip() != '', reason='sh is bash here')
@pytest.mark.parametrize('script', [['tools/setup_env.sh'],
                                    ['tools/run.sh', 'test']])
def test_not_bash(tmp_path, script):
    """Run by sh (dash), both scripts stop before their bash syntax."""
    proc = subprocess.run(['sh', *script], cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    _refused(proc, 'bash')


def test_gnu_tools(tmp_path):
    path = _path(tmp_path, hide=('sha256sum', 'nproc'), sed='exit 1')
    _refused(_setup(tmp_path, PATH=path),
             'GNU tools are missing: sha256sum nproc GNU-sed',
             'apt-get install coreutils sed')


def test_no_cxx_compiler(tmp_path):
    path = _path(tmp_path, hide=('c++', 'g++', 'clang++'))
    _refused(_setup(tmp_path, PATH=path), 'no C++ compiler: c++ is not',
             'apt-get install g++')
    _refused(_setup(tmp_path, CXX='/no/such/clang++'),
             'CXX=/no/such/clang++ is not found')


def test_no_compiler_needed_with_a_compiled_wheel_at_hand(tmp_path):
    """A wheel in the cache for this mmcv, torch and Python (an offline
    machine's, from a wheelhouse) needs no compiler."""
    key = (f'mmcv-{_pin("mmcv")}-torch{_pin("torch")}_cu130-'
           f'py{PY.replace(".", "")}')
    wheels = tmp_path / 'cache' / 'mmhatnet' / key
    wheels.mkdir(parents=True)
    (wheels / f'mmcv-{_pin("mmcv")}-cp3-cp3-linux_x86_64.whl').touch()
    path = _path(tmp_path, hide=('c++', 'g++', 'clang++'))
    proc = _setup(tmp_path, PATH=path)
    assert proc.returncode == 0, proc.stderr


def test_no_python_headers(tmp_path):
    python = _python(tmp_path, (
        'import sysconfig\n'
        'get_paths = sysconfig.get_paths\n'
        'sysconfig.get_paths = lambda *a, **k: dict(get_paths(*a, **k), '
        'include="/no/such/include")\n'))
    _refused(_setup(tmp_path, PYTHON=python),
             f'Python.h is missing for Python {PY}', '/no/such/include',
             f'apt-get install python{PY}-dev')


def test_no_venv_module(tmp_path):
    """Debian's Python without python3.X-venv has no ensurepip."""
    python = _python(tmp_path, 'import sys\nsys.modules["ensurepip"] = None\n')
    _refused(_setup(tmp_path, PYTHON=python),
             'cannot make a venv with pip (no ensurepip module)',
             f'apt-get install python{PY}-venv')


def test_a_python_that_does_not_run(tmp_path):
    _refused(_setup(tmp_path, PYTHON='/no/such/python3'),
             'no Python: /no/such/python3 does not run',
             'PYTHON=/path/to/python')


def test_a_python_outside_setup_py_range(tmp_path):
    """Ubuntu 18.04's and CentOS 7's python3 is 3.6; any Python answers
    the check, so the line comes before the set-up's own Python tools."""
    python = tmp_path / 'python3.6'
    python.write_text('#!/bin/sh\necho 3.6\n')
    python.chmod(0o755)
    _refused(_setup(tmp_path, PYTHON=str(python)),
             "Python 3.6 (", "outside setup.py's python_requires >=3.8",
             'PYTHON=/path/to/python'
             + ('3.11' if STACK == 'newest' else PY))


def test_a_python_that_is_not_the_stack_s(tmp_path):
    other = 'common' if STACK == 'py38' else 'py38'
    want = '3.9' if other == 'common' else '3.8'
    _refused(_setup(tmp_path, other),
             f"Python {PY} (", f"this stack's =={want}",
             f'PYTHON=/path/to/python{want}')


def test_disk_for_a_new_venv(tmp_path):
    _refused(_setup(tmp_path, MMHATNET_DISK_GB=str(10 ** 6)),
             f'{10 ** 6} GB of free disk are needed for {tmp_path}/venv',
             'MMHATNET_VENV')


def test_disk_for_several_venvs_is_their_sum(tmp_path):
    """Each new venv fits the free disk, two together do not."""
    free = shutil.disk_usage(tmp_path).free // 2 ** 30
    if free < 2:
        pytest.skip('under 2 GB free here')
    gb = free // 2 + 1
    proc = _setup(tmp_path, STACK, STACK, MMHATNET_DISK_GB=str(gb))
    _refused(proc, f'{2 * gb} GB of free disk are needed for the venvs of '
                   f'the {STACK} {STACK} stacks')
    assert proc.stdout == ''
    assert _setup(tmp_path, STACK, STACK, MMHATNET_DISK_GB='1'
                  ).returncode == 0


def test_run_sh_test_checks_every_stack_before_setting_one_up(tmp_path):
    env = _env(tmp_path, PYTHON='/no/such/python3', MMHATNET_STACKS=STACK)
    del env['MMHATNET_PREFLIGHT']
    proc = subprocess.run(['bash', 'tools/run.sh', 'test'], cwd=ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=60)
    _refused(proc, 'no Python: /no/such/python3 does not run')
    assert proc.stdout == ''
