"""The command-line entry points on checkpoints whose contents attack what
reads them after the load (tests/test_engine/test_after_load.py has the
whole corpus in-process): config text that runs code when mmengine's
``Runner.resume`` executes it, through ``tools/train.py --resume FILE``,
``tools/train.py --resume`` finding it in the work dir, and ``mim train
--resume``; a state dict whose ``_metadata`` carries load options, through
``tools/test.py``. Each run in a subprocess with memory and wall-clock
caps. The config text is mmengine's, so the Python 3.8 stack (same torch
and mmengine as the common one) does not repeat them."""
import collections
import os
import resource
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from mmengine.utils import import_modules_from_strings

from e2e import ROOT, config, run, small_options, tool
from mmhatnet.demo.data import make_demo_data

pytestmark = [pytest.mark.e2e, pytest.mark.torch_mmengine]


def _capped():
    resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp('after_load_cli')
    make_demo_data(root, ['ade'], num_train=1, num_val=1)
    marker = root / 'pwned'
    touch = f"__import__('os').system('touch {marker}')"
    text = f"model = dict(type='X')\nwork_dir = {touch} or 'w'\n"
    # resumes at the run's last iteration: nothing left to train
    torch.save({'meta': {'epoch': 0, 'iter': 4, 'seed': 0, 'config': text,
                         'cfg': text},
                'state_dict': {},
                'message_hub': {'log_scalars': {}, 'resumed_keys': {},
                                'runtime_info': {'cfg': text}}},
               root / 'config_code.pth')
    cfg = Config.fromfile(config('fpn'))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        import_modules_from_strings(cfg.custom_imports['imports'])
        model = MODELS.build(cfg.model)
    state = model.state_dict()
    state._metadata = collections.OrderedDict(
        (k, dict(v, assign_to_params_buffers=True))
        for k, v in state._metadata.items())
    torch.save({'state_dict': state, 'meta': {}}, root / 'metadata.pth')
    return root, marker


def _train(root, work_dir, *args, mim=False):
    if mim:
        cmd = [os.path.join(os.path.dirname(sys.executable), 'mim'), 'train',
               'mmseg', config('fpn'), '--work-dir', str(work_dir), *args]
    else:
        cmd = [sys.executable, os.path.join(ROOT, 'tools', 'train.py'),
               config('fpn'), '--work-dir', str(work_dir), *args]
    proc = run(cmd + small_options('fpn'), cwd=root, timeout=300,
               check=False, preexec_fn=_capped)
    return proc.returncode, proc.stdout + proc.stderr


def _plant(root, work_dir):
    work_dir.mkdir()
    planted = work_dir / 'iter_9.pth'
    planted.write_bytes((root / 'config_code.pth').read_bytes())
    (work_dir / 'last_checkpoint').write_text(str(planted))


@pytest.mark.parametrize('door', ['train.py --resume FILE',
                                  'train.py --resume (search)',
                                  'mim train --resume'])
def test_config_text_in_a_resumed_checkpoint_never_runs(work, door):
    root, marker = work
    work_dir = root / door.replace(' ', '_').replace('(', '').replace(')', '')
    if door == 'train.py --resume FILE':
        rc, out = _train(root, work_dir, '--resume',
                         str(root / 'config_code.pth'))
    else:
        _plant(root, work_dir)
        rc, out = _train(root, work_dir, '--resume', mim=door.startswith(
            'mim'))
    assert not marker.exists(), out[-3000:]
    assert rc == 0, out[-3000:]
    assert 'dropped the config text in meta' in out
    assert 'resumed' in out.lower()


def test_test_py_keeps_module_versions_only(work):
    root, marker = work
    proc = tool('test.py', config('fpn'), str(root / 'metadata.pth'),
                '--work-dir', str(root / 'test'), *small_options('fpn'),
                cwd=root, timeout=300, preexec_fn=_capped)
    out = proc.stdout + proc.stderr
    assert "dropped what a state dict's _metadata may not carry" in out
    assert 'mIoU' in out
