"""Loading untrusted checkpoints.

Every checkpoint that mmhatnet reads itself goes through
:func:`load_untrusted`: ``torch.load(weights_only=True)``, so a pickle that
would run code is refused with a message.

torch >= 2.6 also loads with ``weights_only=True`` by default, and mmengine
0.10.7's own checkpoints hold a few non-tensor classes (its
``HistoryBuffer`` with numpy arrays), so its resume fails there.
:func:`allow_mmengine_checkpoints` (called on ``import mmhatnet``) allows
exactly those classes and nothing else.
"""
import os
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


class CheckpointError(ValueError):
    """A checkpoint that is unsafe, unreadable or of the wrong layout."""


def load_untrusted(path: str) -> object:
    """``torch.load`` with ``weights_only=True``: tensors and plain
    containers only, no code runs while unpickling."""
    if not os.path.isfile(path):
        raise CheckpointError(f'{path}: no such file')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # torch raises many types for a foreign file
        text = str(e)
        if 'Weights only load failed' in text:
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            reason = next((ln for ln in lines if 'GLOBAL' in ln or
                           'nsupported' in ln), lines[-1])
            raise CheckpointError(
                f'{path}: refused: its pickle asks for code outside plain '
                f'tensors and containers, so it is not loaded '
                f'(weights_only=True). {reason}') from None
        raise CheckpointError(f'{path} is not a PyTorch checkpoint '
                              f'({type(e).__name__}: {text[:200]})') from None


def state_dict_of(obj: object, path: str = 'checkpoint') -> dict:
    """The state dict in ``obj``: bare, or under 'model' or 'state_dict'."""
    if isinstance(obj, dict):
        for key in ('state_dict', 'model'):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not (isinstance(obj, dict) and obj and all(
            isinstance(v, torch.Tensor) for v in obj.values())):
        raise CheckpointError(
            f'{path} holds no state dict (a dict of tensors, bare or under '
            f"'model' or 'state_dict')")
    return obj


def _numpy_globals() -> list:
    """The numpy callables and classes pickled inside a HistoryBuffer."""
    core = np._core if hasattr(np, '_core') else np.core
    dtypes = [type(np.dtype(t)) for t in
              (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    return [core.multiarray._reconstruct, core.multiarray.scalar,
            np.ndarray, np.dtype, *dtypes]


def _history_buffer_method(obj: object, name: str):
    """``getattr`` as a pickled HistoryBuffer uses it, and only so: its
    statistics methods ('min', 'mean', ...) are pickled as
    ``getattr(HistoryBuffer, name)``."""
    allowed = {'min', 'max', 'current', 'mean',
               *HistoryBuffer._statistics_methods}
    if obj is not HistoryBuffer or name not in allowed:
        raise pickle.UnpicklingError(
            f'refused getattr({obj!r}, {name!r}): only HistoryBuffer '
            f'statistics methods are allowed')
    return getattr(obj, name)


def allow_mmengine_checkpoints() -> None:
    """Allow the classes of mmengine's own checkpoints under
    ``torch.load(weights_only=True)``, and no other."""
    torch.serialization.add_safe_globals([
        HistoryBuffer, *_numpy_globals(),
        (_history_buffer_method, 'builtins.getattr')
    ])
