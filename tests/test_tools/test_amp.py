"""tools/train.py --amp: trains where mmengine's AmpOptimWrapper runs (a
GPU), and elsewhere stops at once with a message instead of failing after
the runner is built."""
import pytest
import torch

from e2e import config, metric, small_options, tool
from mmhatnet.demo.data import make_demo_data


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is present')
def test_amp_without_a_gpu_stops_before_building_anything(tmp_path):
    train = tool('train.py', config('fpn'), '--amp', '--work-dir',
                 str(tmp_path / 'work'), *small_options('fpn'),
                 cwd=tmp_path, check=False)
    assert train.returncode == 2, train.stdout + train.stderr
    assert '--amp needs a GPU' in train.stderr
    assert not (tmp_path / 'work').exists()


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason='no GPU: --amp training was not run')
@pytest.mark.parametrize('family, data, name', [
    ('fpn', 'ade', 'mIoU'), ('retinanet', 'coco', 'coco/bbox_mAP'),
    ('mask-rcnn', 'coco', 'coco/segm_mAP')])
def test_amp_trains_and_evaluates_on_the_gpu(tmp_path, family, data, name):
    make_demo_data(tmp_path, [data], num_train=4, num_val=2)
    train = tool('train.py', config(family), '--amp', '--work-dir',
                 str(tmp_path / 'work'), *small_options(family),
                 cwd=tmp_path)
    out = train.stdout + train.stderr
    assert 0 <= metric(out, name) <= 100
