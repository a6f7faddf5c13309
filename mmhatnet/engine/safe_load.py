"""Loading untrusted checkpoints, the same way on torch 2.0 to 2.14.

Every checkpoint that mmhatnet reads, and, once ``mmhatnet`` is imported,
every local file mmengine reads (``load_from``, resume, ``Pretrained``, the
inferencers' weights), is unpickled by :class:`SafeUnpickler`: a
``pickle.Unpickler`` whose ``find_class`` resolves only an allow-list of
globals, so a pickle that would run code (``os.system``, ``eval``, any other
callable) is refused before anything runs. It is handed to ``torch.load``
as its ``pickle_module``, which every torch release accepts; torch still
reads the zip container and the tensor storages itself.

Why not ``torch.load(weights_only=True)`` alone: mmengine's own checkpoints
hold a ``HistoryBuffer`` with numpy arrays in ``message_hub``. torch >= 2.4
can allow those with ``torch.serialization.add_safe_globals``, but torch
2.0-2.3 have no such hook and their weights-only unpickler cannot rebuild
any object but tensors and ``OrderedDict``; and torch < 2.6 loads with
``weights_only=False`` by default, so mmengine's resume would run any
pickle there. One allow-list in one unpickler covers every supported torch:
torch's own weights-only globals (tensor, parameter and storage rebuilds,
dtypes, ``OrderedDict``, ...), ``collections.Counter`` (schedulers'
milestones), ``codecs.encode`` (protocol-2 bytes), numpy arrays, scalars
and dtypes (under numpy 1 and numpy 2 module paths), mmengine's
``HistoryBuffer`` and its pickled statistics methods, and nothing else.
"""
from __future__ import annotations

import _compat_pickle
import codecs
import collections
import functools
import os
import pickle
import types
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class CheckpointError(ValueError):
    """A checkpoint that is unsafe, unreadable or of the wrong layout."""


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list."""


def _history_buffer_method(obj: object, name: str) -> Any:
    """``getattr`` as a pickled HistoryBuffer uses it, and only so: its
    statistics methods ('min', 'mean', ...) are pickled as
    ``getattr(HistoryBuffer, name)``."""
    allowed = {'min', 'max', 'current', 'mean',
               *HistoryBuffer._statistics_methods}
    if obj is not HistoryBuffer or name not in allowed:
        raise RefusedGlobal(
            f'refused getattr({obj!r}, {name!r}): only HistoryBuffer '
            f'statistics methods are allowed')
    return getattr(obj, name)


def _torch_weights_only_globals() -> dict:
    """'module.name' -> object: what torch's weights-only unpickler allows
    (tensor, parameter and storage rebuilds, dtypes, OrderedDict, ...)."""
    from torch import _weights_only_unpickler as wo
    return dict(wo._get_allowed_globals())


def _numpy_globals() -> dict:
    """Numpy arrays, scalars and dtypes, under the module paths numpy 1
    ('numpy.core') and numpy 2 ('numpy._core') pickle them with."""
    multiarray = (np._core.multiarray if hasattr(
        getattr(np, '_core', None), 'multiarray') else np.core.multiarray)
    dtype_classes = {type(np.dtype(t)) for t in
                     (np.float64, np.float32, np.float16, np.int64,
                      np.int32, np.int16, np.int8, np.uint8, np.bool_)}
    allowed = {'numpy.ndarray': np.ndarray, 'numpy.dtype': np.dtype}
    for cls in dtype_classes:
        allowed[f'{cls.__module__}.{cls.__name__}'] = cls
        allowed[f'numpy.dtypes.{cls.__name__}'] = cls
    for core in ('numpy.core', 'numpy._core'):
        allowed[f'{core}.multiarray._reconstruct'] = multiarray._reconstruct
        allowed[f'{core}.multiarray.scalar'] = multiarray.scalar
    return allowed


@functools.lru_cache(maxsize=None)
def _allowed_globals() -> dict:
    return {
        **_torch_weights_only_globals(),
        **_numpy_globals(),
        'mmengine.logging.history_buffer.HistoryBuffer': HistoryBuffer,
        'builtins.getattr': _history_buffer_method,
        # protocol 2 pickles bytes (numpy array data) as a latin-1 str
        '_codecs.encode': codecs.encode,
        # MultiStepLR's milestones (torch 2.0's allow-list lacks it)
        'collections.Counter': collections.Counter,
        'builtins.set': set,
        'builtins.frozenset': frozenset,
        'builtins.slice': slice,
        'builtins.complex': complex,
    }


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allow-listed globals."""

    def find_class(self, module: str, name: str) -> Any:
        # protocol 2 pickles (torch.save's) name Python 2 modules
        # ('__builtin__'); map them as pickle.Unpickler.find_class does
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = _allowed_globals().get(f'{module}.{name}')
        if found is None:
            raise RefusedGlobal(
                f'refused GLOBAL {module}.{name}: only tensors, plain '
                f'containers, numpy arrays and mmengine HistoryBuffers are '
                f'allowed')
        return found


def _safe_pickle_load(file, **kwargs) -> Any:
    return SafeUnpickler(file, **kwargs).load()


# what torch.load reads from its ``pickle_module``
safe_pickle = types.ModuleType('mmhatnet_safe_pickle')
safe_pickle.Unpickler = SafeUnpickler
safe_pickle.load = _safe_pickle_load
safe_pickle.UnpicklingError = pickle.UnpicklingError


def load_untrusted(path: str, map_location: Any = 'cpu') -> object:
    """``torch.load`` through :class:`SafeUnpickler`: tensors, plain
    containers, numpy arrays and mmengine's checkpoint classes only; no
    code runs while unpickling."""
    if not os.path.isfile(path):
        raise CheckpointError(f'{path}: no such file')
    try:
        return torch.load(path, map_location=map_location,
                          pickle_module=safe_pickle, weights_only=False)
    except RefusedGlobal as e:
        raise CheckpointError(
            f'{path}: refused: its pickle asks for code outside plain '
            f'tensors and containers, so it is not loaded ({e})') from None
    except Exception as e:  # torch raises many types for a foreign file
        raise CheckpointError(
            f'{path} is not a PyTorch checkpoint '
            f'({type(e).__name__}: {str(e)[:200]})') from None


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


def _load_local(filename: str, map_location: Any = None) -> object:
    """mmengine's loader of local files, through :func:`load_untrusted`."""
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_untrusted(filename, map_location)


def use_safe_loading_in_mmengine() -> None:
    """Make mmengine read local checkpoints (``load_from``, resume,
    ``Pretrained``, the inferencers' weights) with :func:`load_untrusted`.
    """
    CheckpointLoader.register_scheme(prefixes='', loader=_load_local,
                                     force=True)
