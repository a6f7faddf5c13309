"""A pretrained backbone file, as users point ``init_cfg`` at it, under our
tools/train.py and under `mim train mmdet` (mmdet's own train script, which
never calls mmhatnet.apis.check_config): the release's raw weights load,
every tensor; a wrong file stops the run with the fix, before training."""
import os
import sys

import pytest
import torch

from e2e import COMMON, config, run, small, tool
from mmhatnet import HATNet
from mmhatnet.analysis.release import random_release_state_dict
from mmhatnet.demo.data import make_demo_data
from mmhatnet.engine import load_untrusted
from mmhatnet.models.ckpt_convert import convert_official, release_layout

pytestmark = pytest.mark.e2e


def _options(checkpoint, *extra):
    # COMMON trains from scratch (init_cfg=None): point the config's
    # Pretrained init at ``checkpoint`` instead
    return ['--cfg-options',
            *[o for o in COMMON if not o.startswith('model.backbone.init')],
            *small('retinanet'), f'model.backbone.init_cfg.checkpoint='
            f'{checkpoint}', *extra]


def _train(how, tmp_path, checkpoint, *extra, check=True):
    work = str(tmp_path / 'work')
    if how == 'mim':
        mim = os.path.join(os.path.dirname(sys.executable), 'mim')
        return run([mim, 'train', 'mmdet', config('retinanet'), '--work-dir',
                    work, *_options(checkpoint, *extra)], cwd=tmp_path,
                   check=check)
    return tool('train.py', config('retinanet'), '--work-dir', work,
                *_options(checkpoint, *extra), cwd=tmp_path, check=check)


@pytest.fixture
def coco(tmp_path):
    make_demo_data(tmp_path, ['coco'], num_train=2, num_val=1)
    return tmp_path


def _release(arch):
    return random_release_state_dict(release_layout(HATNet, arch), seed=3)


@pytest.mark.parametrize('how', ['mim'])
def test_raw_release_weights_load_exactly(coco, how):
    sd = _release('tiny')
    src = coco / 'HAT-Net_Tiny.pth'
    torch.save({'model': sd}, src)
    # a frozen backbone keeps what it loaded through training: the saved
    # checkpoint shows the loaded tensors
    proc = _train(how, coco, src, 'train_cfg.max_epochs=1',
                  'model.backbone.frozen_stages=3')
    assert 'release layout, converted' in proc.stdout + proc.stderr
    saved = load_untrusted(str(coco / 'work' / 'epoch_1.pth'))['state_dict']
    _, converted = convert_official(sd, HATNet)
    backbone = {k: v for k, v in converted.items()
                if k.startswith('backbone.')}
    assert backbone.keys() == {k for k in saved if k.startswith('backbone.')}
    for k, v in backbone.items():
        assert torch.equal(saved[k], v), k


# tools/train.py goes through the same HATNet.init_weights (its check_config
# refuses a missing file earlier: tests/test_tools/test_reliability.py)
@pytest.mark.parametrize('how, case, message', [
    ('mim', 'tiny for small', "its shapes fit arch='tiny': set "
     "model.backbone.arch='tiny'"),
    ('mim', 'half the keys', 'missing'),
    ('tools', 'half the keys', 'missing'),
    ('mim', 'no file', 'does not exist. Convert the released weights there '
     'with `python tools/convert_official.py'),
])
def test_wrong_pretrained_file_stops_with_the_fix(coco, how, case, message):
    src = coco / 'weights.pth'
    extra = []
    if case == 'tiny for small':
        torch.save({'model': _release('tiny')}, src)
        extra = ['model.backbone.arch=small',
                 'model.neck.in_channels=[64,128,320,512]']
    elif case == 'half the keys':
        _, converted = convert_official(_release('tiny'), HATNet)
        torch.save({'state_dict': {k: converted[k]
                                   for k in sorted(converted)[::2]}}, src)
    proc = _train(how, coco, src, *extra, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-3000:]
    assert not (coco / 'work' / 'epoch_1.pth').exists()
