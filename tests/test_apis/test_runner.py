"""mmhatnet.apis.runner: what ``tools/train.py --resume`` continues from."""
import os

import torch

from mmhatnet.apis.runner import latest_checkpoint, train_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, 'configs', 'retinanet_hatnet_tiny.py')


def _train_config(work, *extra):
    return train_config([CONFIG, '--work-dir', str(work), *extra,
                         '--cfg-options', 'model.backbone.init_cfg=None'])


def test_resume_continues_from_the_newest_complete_checkpoint(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    for age, name in enumerate(['epoch_1.pth', 'epoch_2.pth']):
        torch.save({'meta': {'epoch': age + 1}}, work / name)
        os.utime(work / name, (age, age))
    (work / 'epoch_3.pth.tmp').write_bytes(b'half a save')
    marker = work / 'last_checkpoint'
    marker.write_text(str(work / 'epoch_1.pth'))  # as mmengine writes it
    assert latest_checkpoint(str(work)) == str(work / 'epoch_1.pth')
    # a kill between mmengine's open(..., 'w') and its write, or a marker
    # naming a checkpoint that is gone: the newest complete checkpoint
    for text in ('', str(work / 'epoch_9.pth')):
        marker.write_text(text)
        assert latest_checkpoint(str(work)) == str(work / 'epoch_2.pth')
    marker.unlink()
    cfg = _train_config(work, '--resume')
    assert cfg.resume and cfg.load_from == str(work / 'epoch_2.pth')


def test_resume_in_an_empty_work_dir_starts_from_the_beginning(tmp_path):
    cfg = _train_config(tmp_path / 'new', '--resume')
    assert not cfg.resume and cfg.load_from is None


def test_resume_set_in_the_config_is_left_to_mmengine(tmp_path):
    cfg = train_config([CONFIG, '--work-dir', str(tmp_path / 'work'),
                        '--cfg-options', 'model.backbone.init_cfg=None',
                        'resume=True'])
    assert cfg.resume and cfg.get('load_from') is None
