"""The offline set-up end to end: tools/make_wheelhouse.sh, then
tools/setup_env.sh with ``MMHATNET_WHEELHOUSE`` and ``MMHATNET_VENV=current``
into an environment that holds only this Python's torch (torch,
torchvision, numpy and what they need), with no network: inside
``unshare -n`` where the test runs as root, and pip without an index in any
case. mmcv is not compiled: the wheelhouse carries the wheel this machine's
set-up compiled for this torch.

Slow (minutes) and it needs the package index to make the wheelhouse
(``MMHATNET_TEST_WHEELHOUSE=DIR`` reuses one made for this Python): it runs
only when asked for, ``pytest -m slow``."""
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from e2e import ROOT

pytestmark = pytest.mark.slow


def _torch_closure() -> dict:
    """torch, torchvision and every distribution they require, installed
    here: {name: Distribution}."""
    found, todo = {}, ['torch', 'torchvision']
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[name] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({'extra': ''}):
                todo.append(req.name)
    return found


def _torch_only_python(tmp_path) -> str:
    """A venv that sees, of this environment, only the torch closure: a
    folder of links to their files, named in a .pth."""
    site = sysconfig.get_paths()['purelib']
    shown = tmp_path / 'torch-only'
    shown.mkdir()
    for dist in _torch_closure().values():
        for file in dist.files or []:
            top = file.parts[0]
            if top != '..' and not (shown / top).exists():
                (shown / top).symlink_to(os.path.join(site, top))
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    python = str(venv / 'bin' / 'python')
    purelib = subprocess.run(
        [python, '-c', 'import sysconfig; '
         'print(sysconfig.get_paths()["purelib"])'],
        capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(purelib, 'torch-only.pth'), 'w') as f:
        f.write(f'{shown}\n')
    return python


def _offline(cmd: list) -> list:
    if os.geteuid() == 0 and shutil.which('unshare'):
        return ['unshare', '-n'] + cmd
    return cmd


def test_offline_setup_from_a_wheelhouse_then_the_self_check(tmp_path,
                                                             request):
    expr = request.config.getoption('markexpr') or ''
    if 'slow' not in expr or 'not slow' in expr:
        pytest.skip('minutes and the package index: run with -m slow')
    wheelhouse = os.environ.get('MMHATNET_TEST_WHEELHOUSE')
    if not wheelhouse:
        wheelhouse = str(tmp_path / 'wheelhouse')
        subprocess.run(['bash', 'tools/make_wheelhouse.sh', wheelhouse,
                        '--python-version', '%d.%d' % sys.version_info[:2]],
                       cwd=ROOT, check=True, timeout=1200)
    if not os.listdir(os.path.join(wheelhouse, 'mmcv-compiled')):
        pytest.skip('no compiled mmcv for this Python in ~/.cache/mmhatnet:'
                    ' run tools/setup_env.sh first')
    python = _torch_only_python(tmp_path)
    env = dict(os.environ, PYTHON=python, MMHATNET_VENV='current',
               MMHATNET_WHEELHOUSE=wheelhouse,
               XDG_CACHE_HOME=str(tmp_path / 'cache'))
    proc = subprocess.run(_offline(['bash', 'tools/setup_env.sh']), cwd=ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '[setup] ready' in proc.stdout
    assert 'compiling mmcv' not in proc.stdout  # the wheelhouse's wheel
    proc = subprocess.run(_offline([python, 'tools/check.py', '--train',
                                    'fpn']), cwd=ROOT, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'all checks passed' in proc.stdout
