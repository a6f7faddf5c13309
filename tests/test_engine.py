import io
import os
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.logging import HistoryBuffer

import mmhatnet  # noqa: F401  (allows mmengine's checkpoint classes)
from mmhatnet.engine import FiniteLossHook, check_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mmengine_message_hub_loads_safely(tmp_path):
    buffer = HistoryBuffer()
    for v in (1.0, 2.0, 4.0):
        buffer.update(v)
    path = tmp_path / 'ckpt.pth'
    torch.save({'message_hub': {'log_scalars': {'loss': buffer}}}, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded['message_hub']['log_scalars']['loss'].mean() == \
        pytest.approx(7 / 3)


class _Getattr:
    def __init__(self, target, name):
        self.target, self.name = target, name

    def __reduce__(self):
        return (getattr, (self.target, self.name))


@pytest.mark.parametrize('target, name', [(HistoryBuffer, '__init__'),
                                          (io.BytesIO, 'write')])
def test_getattr_beyond_history_buffer_is_refused(tmp_path, target, name):
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'x': _Getattr(target, name)}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_atomic_backend_replaces_whole_files(tmp_path):
    backend = get_file_backend(str(tmp_path),
                               backend_args=dict(backend='atomic_local'))
    path = str(tmp_path / 'sub' / 'epoch_1.pth')
    backend.put(b'first', path)
    backend.put(b'second', path)
    assert open(path, 'rb').read() == b'second'
    assert os.listdir(tmp_path / 'sub') == ['epoch_1.pth']


class _Runner:
    iter, epoch = 6, 0


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_finite_loss_hook_names_the_iteration(bad):
    hook = FiniteLossHook()
    hook.after_train_iter(_Runner(), 0, outputs={'loss': torch.tensor(1.)})
    with pytest.raises(FloatingPointError, match='non-finite loss at '
                       r'iteration 7 \(epoch 1\)'):
        hook.after_train_iter(_Runner(), 0,
                              outputs={'loss': torch.tensor(bad)})


def _cfg(name, **options):
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', name))
    cfg.merge_from_dict(options)
    return cfg


def test_missing_pretrained_file_says_what_to_do():
    with pytest.raises(ValueError, match='tools/convert_official.py '
                       'HAT-Net_<Arch>.pth checkpoints/hatnet_tiny_in1k.pth'
                       '.*model.backbone.init_cfg=None'):
        check_config(_cfg('retinanet_hatnet_tiny.py'))


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
