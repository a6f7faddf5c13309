"""mmhatnet.engine.check_config: mistakes found before a run starts."""
import os

import pytest
from mmengine.config import Config

from mmhatnet.engine import check_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _cfg(name, **options):
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', name))
    cfg.merge_from_dict(options)
    return cfg


def test_missing_pretrained_file_says_what_to_do():
    cfg = _cfg('retinanet_hatnet_tiny.py', **{
        'model.backbone.init_cfg.checkpoint':
        'checkpoints/hatnet_tiny_in1k.pth'})
    with pytest.raises(ValueError, match='tools/convert_official.py '
                       'HAT-Net_<Arch>.pth checkpoints/hatnet_tiny_in1k.pth'
                       '.*model.backbone.init_cfg=None'):
        check_config(cfg)


def test_release_url_is_left_to_the_loader():
    # the shipped configs name the authors' release: nothing is fetched
    # here, the download happens when the backbone is initialised
    cfg = _cfg('retinanet_hatnet_tiny.py')
    assert cfg.model.backbone.init_cfg.checkpoint.startswith('https://')
    check_config(cfg)


def test_wrong_neck_channels_say_the_right_ones():
    cfg = _cfg('fpn_hatnet_tiny.py', **{
        'model.backbone.init_cfg': None,
        'model.neck.in_channels': [64, 128, 320, 512]})
    with pytest.raises(ValueError, match=r'set model.neck.in_channels=\[48, '
                       r'96, 240, 384\]'):
        check_config(cfg)


def test_every_shipped_config_passes_its_own_check():
    for name in sorted(os.listdir(os.path.join(ROOT, 'configs'))):
        if name.endswith('.py'):
            check_config(_cfg(name, **{'model.backbone.init_cfg': None}))
