"""mmhatnet.apis.runner: ``tools/train.py --resume`` with and without a
path."""
import os

import torch

from mmhatnet.apis.runner import train_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, 'configs', 'retinanet_hatnet_tiny.py')


def _train_config(work, *extra):
    return train_config([CONFIG, '--work-dir', str(work), *extra,
                         '--cfg-options', 'model.backbone.init_cfg=None'])


def test_resume_without_a_path_is_left_to_mmengine(tmp_path):
    """mmengine then asks engine.resume.find_latest_checkpoint, as under
    mim and the toolboxes' train scripts (tests/test_engine/
    test_resume.py)."""
    cfg = _train_config(tmp_path / 'new', '--resume')
    assert cfg.resume and cfg.load_from is None


def test_resume_from_a_path(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1}}, path)
    cfg = _train_config(tmp_path / 'work', '--resume', str(path))
    assert cfg.resume and cfg.load_from == str(path)


def test_resume_set_in_the_config_is_left_to_mmengine(tmp_path):
    cfg = train_config([CONFIG, '--work-dir', str(tmp_path / 'work'),
                        '--cfg-options', 'model.backbone.init_cfg=None',
                        'resume=True'])
    assert cfg.resume and cfg.get('load_from') is None
