"""mmhatnet.engine.fileio: checkpoints are written whole or not at all."""
import os

import pytest
from mmengine.fileio import get_file_backend

import mmhatnet  # noqa: F401  (registers the atomic_local backend)
from mmhatnet.engine import save_checkpoint


def test_atomic_backend_replaces_whole_files(tmp_path):
    backend = get_file_backend(str(tmp_path),
                               backend_args=dict(backend='atomic_local'))
    path = str(tmp_path / 'sub' / 'epoch_1.pth')
    backend.put(b'first', path)
    backend.put(b'second', path)
    assert open(path, 'rb').read() == b'second'
    assert os.listdir(tmp_path / 'sub') == ['epoch_1.pth']


def test_interrupted_save_leaves_no_file(tmp_path):
    class Boom:
        def __reduce__(self):
            raise KeyboardInterrupt

    path = tmp_path / 'c.pth'
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'x': Boom()}, str(path))
    assert list(tmp_path.iterdir()) == []
