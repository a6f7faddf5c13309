"""mmhatnet.apis.check_config: mistakes found before a run starts."""
import os
import socket
import time

import pytest
from mmengine.config import Config

from mmhatnet.apis import check_config
from mmhatnet.engine.safe_load import cache_path

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


def test_cached_release_url_needs_no_network(tmp_path, monkeypatch):
    # the shipped configs name the authors' release; a file in the cache
    # is not fetched again (the download happens when the backbone is
    # initialised)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cfg = _cfg('retinanet_hatnet_tiny.py')
    url = cfg.model.backbone.init_cfg.checkpoint
    assert url.startswith('https://github.com/yun-liu/HAT-Net/')
    os.makedirs(os.path.dirname(cache_path(url)))
    open(cache_path(url), 'wb').close()
    check_config(cfg)


def test_unreachable_weights_stop_the_run_at_once(tmp_path, monkeypatch):
    """Before data sets are built or ranks start: the file, the cache path
    and the offline recipe are named."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.setenv('NO_PROXY', '127.0.0.1')
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    url = f'http://127.0.0.1:{port}/v2.0/HAT-Net_Tiny.pth'
    cfg = _cfg('retinanet_hatnet_tiny.py', **{
        'model.backbone.init_cfg.checkpoint': url})
    start = time.monotonic()
    with pytest.raises(ValueError) as e:
        check_config(cfg)
    assert time.monotonic() - start < 10
    for words in (url, cache_path(url), 'Without internet access'):
        assert words in str(e.value)


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
