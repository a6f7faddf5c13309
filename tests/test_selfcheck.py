"""tools/check.py (mmhatnet/selfcheck.py; `bash tools/run.sh check`):
every check passes on this machine's devices, and a GPU that torch cannot
use fails it."""
import json
import os
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = os.path.join(ROOT, 'tools', 'check.py')


def _check(tmp_path, *args, path=None):
    env = dict(os.environ, OMP_NUM_THREADS='2', PYTHONUNBUFFERED='1')
    if path:
        env['PATH'] = path
    proc = subprocess.run(
        [sys.executable, CHECK, '--json', str(tmp_path / 'rows.json'),
         *args], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=900)
    with open(tmp_path / 'rows.json') as f:
        rows = {(r['check'], r['device']): r for r in json.load(f)}
    return proc, rows


def test_self_check_passes_on_every_device(tmp_path):
    proc, rows = _check(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]
    assert proc.stdout.rstrip().endswith('all checks passed')
    devices = ['cpu'] + [f'cuda:{i}'
                         for i in range(torch.cuda.device_count())]
    expected = [(c, d) for d in devices for c in (
        'mmcv nms', 'mmcv roi_align fwd+bwd', 'HATNet fwd+bwd fp32')]
    expected.append(('HATNet fwd+bwd autocast bfloat16', 'cpu'))
    train_on = 'cuda:0' if torch.cuda.is_available() else 'cpu'
    for family in ('fpn', 'retinanet', 'mask-rcnn'):
        expected.append((f'train 1 iter {family} tiny', train_on))
        if torch.cuda.is_available():
            expected.append((f'train 1 iter {family} tiny --amp', train_on))
    if torch.cuda.is_available():
        expected += [('HATNet fwd+bwd autocast float16', f'cuda:{i}')
                     for i in range(torch.cuda.device_count())]
    for key in expected:
        assert rows[key]['status'] == 'ok', rows.get(key)
    assert 'tensors updated' in rows[('train 1 iter fpn tiny',
                                      train_on)]['detail']
    if not torch.cuda.is_available():
        assert rows[('gpu', '')]['detail'] == \
            'NO GPU FOUND: only the CPU was checked'


def test_a_gpu_torch_cannot_use_fails_the_check(tmp_path):
    """nvidia-smi lists more GPUs (fake ones here) than torch sees: the
    silent CPU fallback the check exists to catch."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    smi = bin_dir / 'nvidia-smi'
    # the query of tools/gpu_env.py: name, driver, compute capability
    line = 'echo "NVIDIA H100 80GB HBM3, 580.82.07, 9.0"\n'
    smi.write_text('#!/bin/sh\n' + line * (torch.cuda.device_count() + 1))
    smi.chmod(0o755)
    proc, rows = _check(tmp_path, '--train',
                        path=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    assert proc.returncode == 1, proc.stdout + proc.stderr[-5000:]
    failed = [r for r in rows.values() if r['status'] == 'FAIL']
    assert [r['check'] for r in failed] == ['gpu']
    assert 'cannot use this driver or these GPUs' in failed[0]['detail']
    assert rows[('driver', '')]['detail'] == 'NVIDIA 580.82.07'
    assert proc.stdout.rstrip().endswith('1 check(s) FAILED')
