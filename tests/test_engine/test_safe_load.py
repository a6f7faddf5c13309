"""mmhatnet.engine.safe_load: untrusted checkpoints are refused, mmengine's
own checkpoints load."""
import io
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import mmhatnet  # noqa: F401  (mmengine loads through safe_load)
from mmhatnet.engine import CheckpointError, load_untrusted


def test_mmengine_message_hub_loads_safely(tmp_path):
    buffer = HistoryBuffer()
    for v in (1.0, 2.0, 4.0):
        buffer.update(v)
    path = tmp_path / 'ckpt.pth'
    meta = {'seed': np.int64(3), 'scale': np.float32(0.5),
            'mask': np.arange(4, dtype=np.uint8)}
    torch.save({'message_hub': {'log_scalars': {'loss': buffer}},
                'meta': meta, 'state_dict': {'w': torch.ones(2)}}, path)
    # mmhatnet's loader and mmengine's (load_from, resume) alike
    for loaded in (load_untrusted(str(path)), _load_checkpoint(str(path))):
        assert loaded['message_hub']['log_scalars']['loss'].mean() == \
            pytest.approx(7 / 3)
        assert loaded['meta']['seed'] == 3
        assert loaded['meta']['mask'].tolist() == [0, 1, 2, 3]
        assert torch.equal(loaded['state_dict']['w'], torch.ones(2))


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
    with pytest.raises(CheckpointError, match='refused (getattr|GLOBAL)'):
        load_untrusted(str(path))


class _Exploit:
    def __reduce__(self):
        return (os.system, ('touch pwned',))


def test_code_running_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'state_dict': {'w': _Exploit()}}, f)
    with pytest.raises(CheckpointError, match='refused: its pickle asks for '
                       'code'):
        load_untrusted(str(path))
    assert not (tmp_path / 'pwned').exists()
    # mmengine's own loader (load_from, resume, Pretrained) refuses it too
    with pytest.raises(CheckpointError, match='refused GLOBAL '
                       '(posix|os|nt).system'):
        _load_checkpoint(str(path))
    assert not (tmp_path / 'pwned').exists()


@pytest.mark.parametrize('content, message', [
    (b'hello, not a checkpoint', 'is not a PyTorch checkpoint'),
    (b'', 'is not a'),
])
def test_non_checkpoint_file_is_refused(tmp_path, content, message):
    path = tmp_path / 'x.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_untrusted(str(path))
