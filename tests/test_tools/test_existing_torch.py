"""tools/existing_torch.py: the checks of ``MMHATNET_TORCH=existing``,
fed the versions NGC containers and clusters have; its command line; and
tools/setup_env.sh stopping, before it changes anything, where the
environment or the wheelhouse does not fit."""
import os
import subprocess
import sys
from importlib import metadata

import pytest

from e2e import ROOT

sys.path.insert(0, os.path.join(ROOT, 'tools'))
from existing_torch import (ExistingTorchError, decide,  # noqa: E402
                            satisfies, setup_ranges)

with open(os.path.join(ROOT, 'setup.py'), encoding='utf-8') as _f:
    RANGES = setup_ranges(_f.read())
# an NGC PyTorch container's versions (25.01)
NGC = dict(python='3.12.3', torch='2.6.0a0+ecf3bae40a.nv25.01',
           torchvision='0.21.0a0', numpy='1.26.4')


def test_ranges_are_setup_pys():
    assert RANGES['python'] == '>=3.8'
    assert RANGES['torch'] == '>=2.0.1'
    assert RANGES['numpy'] == '>=1.24.4,<2.4'


@pytest.mark.parametrize('version, spec, inside', [
    ('2.6.0a0+ecf3bae40a.nv25.01', '>=2.0.1', True),  # NGC's local build
    ('2.0.1', '>=2.0.1', True),
    ('2.0.0', '>=2.0.1', False),
    ('2.3.5', '>=1.24.4,<2.4', True),
    ('2.4.6', '>=1.24.4,<2.4', False),
    ('2.4.0rc1', '>=1.24.4,<2.4', False),  # a pre-release counts as 2.4.0
    ('3.8.10', '>=3.8', True),
])
def test_satisfies(version, spec, inside):
    assert satisfies(version, spec) is inside


def test_an_ngc_container_keeps_its_versions_and_takes_the_newest_pins():
    d = decide(NGC, RANGES)
    assert d.variables['TORCH'] == NGC['torch']
    assert d.variables['TORCHVISION'] == '0.21.0a0'
    assert d.variables['NUMPY'] == '1.26.4'
    assert d.variables['PINS'] == 'requirements/stack.txt'
    assert d.variables['KEPT'] == ('torch==2.6.0a0+ecf3bae40a.nv25.01 '
                                   'torchvision==0.21.0a0 numpy==1.26.4')
    assert d.variables['MMHATNET_GPU_KEY'] == ''


@pytest.mark.parametrize('python, torch, torchvision, pins', [
    ('3.9.18', '2.0.1', '0.15.2', 'common'),
    ('3.8.18', '2.0.1', '0.15.2', 'py38'),
    ('3.11.7', '2.14.1', '0.29.1', 'stack'),
])
def test_pins_follow_the_torch_and_python_found(python, torch, torchvision,
                                                 pins):
    found = dict(python=python, torch=torch, torchvision=torchvision,
                 numpy='1.24.4')
    assert decide(found, RANGES).variables['PINS'] == \
        f'requirements/{pins}.txt'


def test_absent_numpy_comes_from_the_pins():
    d = decide(dict(NGC, numpy=None), RANGES)
    assert d.variables['NUMPY'] == ''
    assert 'numpy' not in d.variables['KEPT']


def test_gpus_key_the_stamp():
    smi = ('NVIDIA H100 80GB HBM3, 580.82.07, 9.0\n'
           'NVIDIA A100-SXM4-80GB, 580.82.07, 8.0\n')
    assert decide(NGC, RANGES, smi).variables['MMHATNET_GPU_KEY'] == \
        'sm8.0-9.0'


@pytest.mark.parametrize('change, message', [
    (dict(torch='1.13.1', torchvision='0.14.1'),
     'torch 1.13.1 is outside >=2.0.1'),
    (dict(numpy='2.4.6'), "numpy 2.4.6 is outside >=1.24.4,<2.4 (setup.py)"
     ": install one inside it first (python -m pip install "
     "'numpy>=1.24.4,<2.4')"),
    (dict(python='3.7.17'), 'Python 3.7.17 is outside >=3.8'),
    (dict(torchvision='0.20.1'), 'torchvision 0.20.1 does not pair with '
     'torch 2.6.0a0+ecf3bae40a.nv25.01'),
    (dict(torchvision=None), 'no torchvision is installed'),
    (dict(torch=None), 'no torch is installed'),
    (dict(torch='2.0.1', torchvision='0.15.2', numpy='2.0.2'),
     'needs numpy 1, found 2.0.2'),
    (dict(torch='2.2.2', torchvision='0.17.2', numpy=None),
     'needs numpy 1, found none'),
])
def test_out_of_range_stops_naming_the_version_and_the_range(change,
                                                             message):
    with pytest.raises(ExistingTorchError) as e:
        decide(dict(NGC, **change), RANGES)
    assert message in str(e.value)


def test_every_problem_is_named_at_once():
    with pytest.raises(ExistingTorchError) as e:
        decide(dict(NGC, python='3.7.17', numpy='2.4.6'), RANGES)
    assert 'Python 3.7.17' in str(e.value) and 'numpy 2.4.6' in str(e.value)


def _run(*args, env=None):
    return subprocess.run(list(args), capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ, **(env or {})),
                          timeout=120)


def test_command_line_reads_this_python():
    proc = _run(sys.executable, 'tools/existing_torch.py')
    assert proc.returncode == 0, proc.stderr
    kept = ' '.join(f'{n}=={metadata.version(n)}'
                    for n in ('torch', 'torchvision', 'numpy'))
    assert f"KEPT='{kept}'" in proc.stdout
    assert _run(sys.executable, 'tools/existing_torch.py',
                '--kept').stdout.strip() == kept


def _python_without_packages(tmp_path):
    """A PYTHON that sees no site-packages: no torch."""
    path = tmp_path / 'python'
    path.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    path.chmod(0o755)
    return str(path)


def test_setup_stops_without_a_torch_to_keep(tmp_path):
    venv = tmp_path / 'venv'
    proc = _run('bash', 'tools/setup_env.sh', env=dict(
        MMHATNET_TORCH='existing', MMHATNET_VENV=str(venv),
        PYTHON=_python_without_packages(tmp_path)))
    assert proc.returncode == 1
    assert 'no torch is installed for this Python' in proc.stderr
    assert not venv.exists()


def test_setup_stops_on_a_wheelhouse_for_another_python(tmp_path):
    wheelhouse = tmp_path / 'wheelhouse'
    wheelhouse.mkdir()
    (wheelhouse / 'mmhatnet-wheelhouse.txt').write_text('python=3.6\n')
    venv = tmp_path / 'venv'
    proc = _run('bash', 'tools/setup_env.sh', env=dict(
        MMHATNET_TORCH='existing', MMHATNET_VENV=str(venv),
        MMHATNET_WHEELHOUSE=str(wheelhouse), PYTHON=sys.executable))
    assert proc.returncode == 1
    here = '%d.%d' % sys.version_info[:2]
    assert 'is for Python 3.6' in proc.stderr
    assert f'--python-version {here}' in proc.stderr
    assert not venv.exists()
