"""tools/dist_launch.sh and tools/slurm_launch.sh run the checkout's .venv
interpreter when there is one, and PYTHON when it is set."""
import os
import shutil
import stat
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _script(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/bin/sh\n' + text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _launch(checkout, launcher, env):
    """Run a copy of tools/``launcher`` in ``checkout``; every interpreter
    there prints its own path, so the output names the one chosen."""
    (checkout / 'tools').mkdir(parents=True, exist_ok=True)
    shutil.copy(os.path.join(ROOT, 'tools', launcher), checkout / 'tools')
    args = (['train.py', '1'] if launcher == 'dist_launch.sh' else
            ['train.py', 'partition', 'job'])
    proc = subprocess.run(['bash', str(checkout / 'tools' / launcher), *args,
                           'cfg.py'], env=env, capture_output=True,
                          text=True, check=True)
    return proc.stdout.split()[0]


@pytest.mark.parametrize('launcher', ['dist_launch.sh', 'slurm_launch.sh'])
def test_launchers_pick_the_venv_then_python(tmp_path, launcher):
    bin_dir = tmp_path / 'bin'  # a `python` on PATH and a pass-through srun
    _script(bin_dir / 'python', 'echo path-python "$@"\n')
    _script(bin_dir / 'srun', 'while [ $# -gt 0 ]; do case "$1" in\n'
            '-p) shift 2 ;; -*) shift ;; *) break ;; esac; done\n'
            'exec "$@"\n')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    env['PATH'] = f'{bin_dir}:{env["PATH"]}'
    checkout = tmp_path / 'checkout'
    assert _launch(checkout, launcher, env) == 'path-python'
    venv_python = checkout / '.venv' / 'bin' / 'python'
    _script(venv_python, 'echo "$0" "$@"\n')
    assert _launch(checkout, launcher, env) == str(venv_python)
    _script(tmp_path / 'mine', 'echo "$0" "$@"\n')
    env['PYTHON'] = str(tmp_path / 'mine')
    assert _launch(checkout, launcher, env) == str(tmp_path / 'mine')
