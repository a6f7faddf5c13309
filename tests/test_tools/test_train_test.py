"""tools/train.py then tools/test.py for a Tiny model of each family, with
the real datasets, evaluators and hooks, on generated data (CPU)."""
import os
import sys

import pytest

from e2e import config, metric, run, small_options, tool
from mmhatnet.demo.data import make_demo_data
from mmhatnet.engine import load_untrusted

pytestmark = pytest.mark.e2e
# the common stack trains and tests these in the chain of
# tests/test_tools/test_checkpoints.py (pytest.ini)
in_chain = pytest.mark.in_checkpoint_chain

CASES = [
    # family, data, checkpoint written, metrics the evaluator logs
    pytest.param('fpn', 'ade', 'iter_4.pth', ['mIoU', 'aAcc'],
                 marks=in_chain, id='fpn'),
    pytest.param('retinanet', 'coco', 'epoch_2.pth', ['coco/bbox_mAP'],
                 id='retinanet'),
    pytest.param('mask-rcnn', 'coco', 'epoch_2.pth',
                 ['coco/bbox_mAP', 'coco/segm_mAP'], marks=in_chain,
                 id='mask-rcnn'),
    pytest.param('imagenet', 'imagenet', 'epoch_2.pth', ['accuracy/top1'],
                 id='imagenet'),
]


@pytest.mark.parametrize('family, data, ckpt, metrics', CASES)
def test_train_then_test(tmp_path, family, data, ckpt, metrics):
    make_demo_data(tmp_path, [data], num_train=4, num_val=2)
    work = tmp_path / 'work'
    train = tool('train.py', config(family), '--work-dir', str(work),
                 *small_options(family), cwd=tmp_path)
    out = train.stdout + train.stderr
    for name in metrics:
        assert 0 <= metric(out, name) <= 100
    checkpoint = work / ckpt
    saved = load_untrusted(str(checkpoint))  # safe-loadable
    assert any(k.startswith('backbone.blocks.3.') for k in saved['state_dict'])
    assert not [p for p in os.listdir(work) if p.endswith('.tmp')]

    test = tool('test.py', config(family), str(checkpoint), '--work-dir',
                str(tmp_path / 'test'), *small_options(family),
                cwd=tmp_path)
    out = test.stdout + test.stderr
    for name in metrics:
        assert 0 <= metric(out, name) <= 100


def test_mim_train_then_mim_test(tmp_path):
    """`mim train mmseg` / `mim test mmseg` run the toolbox's own tools with
    our config, as for any OpenMMLab model."""
    mim = os.path.join(os.path.dirname(sys.executable), 'mim')
    make_demo_data(tmp_path, ['ade'], num_train=4, num_val=2)
    options = small_options('fpn', 'train_cfg.max_iters=2',
                            'train_cfg.val_interval=2')
    run([mim, 'train', 'mmseg', config('fpn'), '--work-dir',
         str(tmp_path / 'w'), *options], cwd=tmp_path)
    test = run([mim, 'test', 'mmseg', config('fpn'), '--checkpoint',
                str(tmp_path / 'w' / 'iter_2.pth'), '--work-dir',
                str(tmp_path / 't'), *options], cwd=tmp_path)
    assert 0 <= metric(test.stdout + test.stderr, 'mIoU') <= 100
