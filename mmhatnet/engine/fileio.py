"""Atomic checkpoint writes.

``AtomicLocalBackend`` (``backend='atomic_local'``) is mmengine's
``LocalBackend`` whose ``put`` writes a temporary file, fsyncs and renames
it, so a run killed during a save never leaves a partial ``epoch_N.pth``.
Configs select it with
``default_hooks.checkpoint.backend_args = dict(backend='atomic_local')``.
"""
from __future__ import annotations

import io
import os
import tempfile

import torch
from mmengine.fileio import LocalBackend, register_backend

ATOMIC_BACKEND = 'atomic_local'


def write_atomically(data: bytes, path: str) -> None:
    """Write ``data`` to a temporary file in the same folder, fsync, then
    rename: an interrupted write never leaves a partial file at ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_checkpoint(checkpoint: dict, path: str) -> None:
    """``torch.save`` ``checkpoint`` to ``path`` atomically."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_atomically(buffer.getvalue(), path)


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose ``put`` is atomic: temporary file, fsync,
    rename."""

    def put(self, obj: bytes, filepath) -> None:
        write_atomically(obj, filepath)
