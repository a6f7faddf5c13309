"""mmhatnet.engine.safe_load: untrusted checkpoints are refused, mmengine's
own checkpoints load."""
import io
import os
import pickle

import pytest
import torch
from mmengine.logging import HistoryBuffer

import mmhatnet  # noqa: F401  (allows mmengine's checkpoint classes)
from mmhatnet.engine import CheckpointError, load_untrusted


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


@pytest.mark.parametrize('content, message', [
    (b'hello, not a checkpoint', 'is not a PyTorch checkpoint'),
    (b'', 'is not a'),
])
def test_non_checkpoint_file_is_refused(tmp_path, content, message):
    path = tmp_path / 'x.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_untrusted(str(path))
