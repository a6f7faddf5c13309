"""Loading checkpoints from outside as plain data, on torch 2.0 to 2.14.

Threat model (docs/notes/reliability.md has the long form): a checkpoint
file or URL may come from an attacker who knows this code. Loading it
must give plain data or a :class:`CheckpointError` naming the file and what
was refused; nothing in it may run code, write files, change the state of
the process (a class attribute, a function's defaults), or crash or exhaust
the interpreter.

How: ``torch.load`` is never called on such a file. :func:`load_untrusted`
reads ``torch.save``'s zip container with :mod:`zipfile` and its
``data.pkl`` with :func:`~.unpickler.restricted_load`, a pickle reader
that runs nothing: every object is rebuilt here from data (tensors from
the stored bytes, numpy arrays by value, mmengine's ``HistoryBuffer`` from
its arrays), never by calling what the file names or by letting it set
attributes. torch's own weights-only unpickler is not enough on this
range: before torch 2.6 it cannot be extended to mmengine's objects and
has a published bypass (CVE-2025-32434), and on any torch, extending it to
``HistoryBuffer`` or numpy arrays hands BUILD to their ``__setstate__``
(which writes a class-wide dict, or reads raw memory).

What a checkpoint may hold:
- tensors and parameters (``torch._utils._rebuild_tensor_v2`` and
  ``_rebuild_parameter``) over storages of the plain dtypes, and
  ``OrderedDict`` with its ``_metadata``; str, bytes, numbers, bools,
  None, tuples, lists and dicts;
- numpy arrays and scalars of numeric and bool dtypes, by value; mmengine's
  ``HistoryBuffer`` (``message_hub``); ``collections.Counter`` (schedulers'
  milestones); sets, frozensets, slices and complex numbers.
With ``weights_only=True`` (pretrained weights: ``Pretrained``, the
converter) only the first group is rebuilt; any other object (the
training arguments some releases pickle beside the weights) is left out
as an inert :class:`Unloaded` name, never called or built, and logged.

Refused: the legacy (torch < 1.6), tar and TorchScript formats (torch acts
on their contents itself), raw pickles, compressed zip records, a record
whose size differs from its storage's, a tensor view reaching outside its
storage or holding more elements than it (stride-0 amplification),
``data.pkl`` larger than ``MMHATNET_MAX_PICKLE_MB`` (64 by default: real
checkpoints' are well under 1 MB; raise it for a huge legitimate one), and
zip records that together read more bytes than the file has. Memory is
thus bounded by the file's size.

What the file carries beyond tensors stays data after the load
(:func:`checked_contents`): config texts are read as literal values
(:mod:`.config_text`), never executed; seeds, ``epoch`` and ``iter`` are
ints; the message hub is bounded and typed; ``_metadata`` holds versions
only. Optimizer and scheduler state is checked against the run that loads
it (:mod:`.resume_state`). Work and memory are linear in the file's size
(:mod:`.unpickler`), and messages are one bounded line.

Once ``mmhatnet`` is imported, :func:`use_safe_loading_in_mmengine` makes
every scheme mmengine's ``CheckpointLoader`` knows read through here:
local files, ``http(s)://`` (downloaded to torch hub's cache, keyed by the
whole URL, through a temporary file kept only when whole, within a
deadline and a size cap, its SHA-256 checked where the URL names one;
rank 0 first), ``torchvision://``, ``open-mmlab://``, ``openmmlab://``,
``mmcls://``, ``s3://``/``petrel://``; ``pavi://``, other spellings and
schemes other code registered before are refused.
"""
from __future__ import annotations

import _compat_pickle
import collections
import hashlib
import io
import logging
import math
import os
import re
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from typing import Any, Callable

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner import checkpoint as mme_ckpt

from .config_text import literal_config
from .unpickler import (Global, NotAPickle, Pending, Rebuilder,
                        UnsafePickle, brief, clean, hashable,
                        restricted_load)


class CheckpointError(ValueError):
    """A checkpoint that is unsafe, unreadable or of the wrong layout.

    Its message is one line of bounded length: what the file says in it
    has its control characters (newlines, terminal escapes) escaped."""

    def __init__(self, message: str) -> None:
        super().__init__(clean(str(message)))


def max_pickle_bytes() -> int:
    """The largest ``data.pkl`` read: ``MMHATNET_MAX_PICKLE_MB`` MiB."""
    return int(float(os.environ.get('MMHATNET_MAX_PICKLE_MB', 64)) * 2**20)


_STORAGE_DTYPES = {
    'DoubleStorage': torch.float64, 'FloatStorage': torch.float32,
    'HalfStorage': torch.float16, 'BFloat16Storage': torch.bfloat16,
    'LongStorage': torch.int64, 'IntStorage': torch.int32,
    'ShortStorage': torch.int16, 'CharStorage': torch.int8,
    'ByteStorage': torch.uint8, 'BoolStorage': torch.bool,
    'ComplexFloatStorage': torch.complex64,
    'ComplexDoubleStorage': torch.complex128,
    'UntypedStorage': torch.uint8,
}
_TORCH_DTYPES = {f'torch.{str(d).split(".")[1]}': d
                 for d in _STORAGE_DTYPES.values()}
_NUMPY_CODES = {'b1', 'i1', 'u1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8', 'f2',
                'f4', 'f8', 'c8', 'c16'}
_LOCATION_CHARS = set('abcdefghijklmnopqrstuvwxyz0123456789:_')
_HB = 'mmengine.logging.history_buffer.HistoryBuffer'
_HB_STATISTICS = ('min', 'max', 'current', 'mean')
_TENSOR_NAMES = {
    'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter',
    'torch._utils._rebuild_parameter_with_state', 'collections.OrderedDict',
    '_codecs.encode', *(f'torch.{s}' for s in _STORAGE_DTYPES),
    *_TORCH_DTYPES
}
_OBJECT_NAMES = {
    'numpy.ndarray', 'numpy.dtype', 'numpy.core.multiarray._reconstruct',
    'numpy._core.multiarray._reconstruct', 'numpy.core.multiarray.scalar',
    'numpy._core.multiarray.scalar', _HB, 'builtins.getattr',
    'collections.Counter', 'builtins.set', 'builtins.frozenset',
    'builtins.slice', 'builtins.complex',
    *(f'{_HB}.{m}' for m in _HB_STATISTICS)
}


class _StatisticsMethod:
    """A pickled ``HistoryBuffer.<name>``, kept as its name only: the
    buffer rebuilt here uses mmengine's own statistics methods."""

    def __init__(self, name: str) -> None:
        self.name = name


class Unloaded:
    """What a weights-only load leaves in place of an object that is not
    weights (an ``argparse.Namespace`` of training arguments, say): its
    name only. Nothing of it was called or built."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f'Unloaded({self.name!r})'


class _UnloadedGlobal(Global):
    """A global a weights-only load does not rebuild."""


class _Storage:
    """A tensor storage read from its zip record, on its device."""

    def __init__(self, base: torch.Tensor) -> None:
        self.base = base  # 1-D, the storage's dtype
        self.numel = base.numel()


def _ints(x: Any, what: str) -> tuple:
    if not (isinstance(x, tuple) and len(x) <= 64 and all(
            type(i) is int and i >= 0 for i in x)):
        raise UnsafePickle(f'refused a tensor {what} {brief(x)}: not a '
                           f'tuple of non-negative ints')
    return x


def _empty_hooks(x: Any) -> None:
    if x not in (None, {}, ()):
        raise UnsafePickle('refused a tensor with backward hooks or state')


class CheckpointRebuilder(Rebuilder):
    """Rebuilds, from data, what :func:`load_untrusted` allows."""

    def __init__(self, storage: Callable[[str, torch.dtype, int, str],
                                         _Storage] | None,
                 weights_only: bool) -> None:
        self.storage = storage
        self.weights_only = weights_only
        self.names = _TENSOR_NAMES if weights_only else (_TENSOR_NAMES
                                                         | _OBJECT_NAMES)
        self.unloaded: set = set()
        self.dropped: set = set()  # _metadata entries other than versions

    def allowed(self, g: Global) -> bool:
        key = (g.module, g.name)
        if key in _compat_pickle.NAME_MAPPING:  # protocol 2's Python 2 names
            g.module, g.name = _compat_pickle.NAME_MAPPING[key]
        g.module = _compat_pickle.IMPORT_MAPPING.get(g.module, g.module)
        return g.qualname in self.names or self.weights_only

    def resolve(self, g: Global) -> Any:
        if g.qualname not in self.names:  # weights only: not rebuilt
            self.unloaded.add(g.qualname)
            return _UnloadedGlobal(g.module, g.name)
        if g.qualname in _TORCH_DTYPES:
            return _TORCH_DTYPES[g.qualname]
        if g.qualname.startswith(_HB + '.'):
            return _StatisticsMethod(g.name.split('.')[-1])
        return g

    # --- REDUCE --------------------------------------------------------------
    def reduce(self, g: Global, args: tuple) -> Any:
        if isinstance(g, _UnloadedGlobal):
            return Unloaded(g.qualname)
        name = g.qualname.rsplit('.', 1)[-1]
        if g.module == 'torch._utils':
            return self._tensor(name, args)
        rebuild = {
            'collections.OrderedDict': self._ordered_dict,
            '_codecs.encode': self._encode,
            'collections.Counter': self._counter,
            'builtins.set': lambda a: set(self._items(a)),
            'builtins.frozenset': lambda a: frozenset(self._items(a)),
            'builtins.slice': self._slice,
            'builtins.complex': self._complex,
            'numpy.dtype': self._dtype,
            'builtins.getattr': self._getattr,
        }.get(g.qualname)
        if rebuild is not None:
            return rebuild(args)
        if name == '_reconstruct':
            if not (len(args) == 3 and isinstance(args[0], Global) and
                    args[0].qualname == 'numpy.ndarray' and
                    args[1] == (0,) and args[2] == b'b'):
                raise UnsafePickle(f'refused {g}{brief(args)}: only '
                                   f'_reconstruct(ndarray, (0,), b"b")')
            return Pending('numpy array')
        if name == 'scalar':
            return self._scalar(args)
        raise UnsafePickle(f'refused REDUCE of {g}')

    def _tensor(self, name: str, args: tuple) -> torch.Tensor:
        if name == '_rebuild_tensor_v2' and len(args) in (6, 7):
            storage, offset, size, stride, requires_grad, hooks = args[:6]
            if len(args) == 7 and args[6] not in (None, {}):
                raise UnsafePickle('refused a tensor with metadata '
                                   f'{brief(args[6])}')
            _empty_hooks(hooks)
            if not isinstance(storage, _Storage) or type(offset) is not int \
                    or offset < 0 or not isinstance(requires_grad, bool):
                raise UnsafePickle('refused _rebuild_tensor_v2 arguments')
            size, stride = _ints(size, 'size'), _ints(stride, 'stride')
            if len(size) != len(stride):
                raise UnsafePickle(f'refused a tensor of size {size} and '
                                   f'stride {stride}')
            numel = math.prod(size)
            if numel:
                end = offset + sum((n - 1) * s for n, s in zip(size, stride))
                if end >= storage.numel or numel > storage.numel:
                    raise UnsafePickle(
                        f'refused a tensor view of size {size}, stride '
                        f'{stride} and offset {offset} over a storage of '
                        f'{storage.numel} elements')
            t = torch.empty((0,), dtype=storage.base.dtype,
                            device=storage.base.device)
            t.set_(storage.base.untyped_storage(), offset, size, stride)
            if requires_grad:
                t.requires_grad_(True)
            return t
        if name in ('_rebuild_parameter', '_rebuild_parameter_with_state') \
                and len(args) == (3 if name == '_rebuild_parameter' else 4):
            data, requires_grad = args[0], args[1]
            for extra in args[2:]:
                _empty_hooks(extra)
            if not isinstance(data, torch.Tensor) or \
                    not isinstance(requires_grad, bool):
                raise UnsafePickle(f'refused {name} arguments')
            return torch.nn.Parameter(data, requires_grad)
        raise UnsafePickle(f'refused torch._utils.{name}')

    @staticmethod
    def _items(args: tuple) -> list:
        if not (len(args) == 1 and isinstance(args[0], (list, tuple))):
            raise UnsafePickle('refused set() of anything but a list')
        return [hashable(i) for i in args[0]]

    @staticmethod
    def _ordered_dict(args: tuple) -> collections.OrderedDict:
        if args == ():
            return collections.OrderedDict()
        if len(args) == 1 and isinstance(args[0], list) and all(
                isinstance(p, tuple) and len(p) == 2 for p in args[0]):
            return collections.OrderedDict(
                (hashable(k), v) for k, v in args[0])
        raise UnsafePickle('refused OrderedDict arguments')

    @staticmethod
    def _encode(args: tuple) -> bytes:
        if len(args) == 2 and isinstance(args[0], str) and \
                args[1] in ('latin1', 'latin-1'):
            return args[0].encode('latin-1')
        raise UnsafePickle('refused _codecs.encode arguments')

    @staticmethod
    def _counter(args: tuple) -> collections.Counter:
        if args == ():
            return collections.Counter()
        if len(args) == 1 and isinstance(args[0], dict) and all(
                type(v) in (int, float) for v in args[0].values()):
            return collections.Counter(
                {hashable(k): v for k, v in args[0].items()})
        raise UnsafePickle('refused Counter arguments: a dict of numbers '
                           'only')

    @staticmethod
    def _slice(args: tuple) -> slice:
        if len(args) == 3 and all(a is None or type(a) is int for a in args):
            return slice(*args)
        raise UnsafePickle('refused slice arguments')

    @staticmethod
    def _complex(args: tuple) -> complex:
        if 1 <= len(args) <= 2 and all(type(a) in (int, float)
                                       for a in args):
            return complex(*args)
        raise UnsafePickle('refused complex arguments')

    @staticmethod
    def _dtype(args: tuple) -> Pending:
        if len(args) == 3 and type(args[0]) is str and \
                args[0] in _NUMPY_CODES and \
                args[1] in (0, False) and args[2] in (1, True):
            return Pending('numpy dtype', args[0])
        raise UnsafePickle(f'refused numpy.dtype{brief(args)}: only the '
                           f'numeric and bool dtypes {sorted(_NUMPY_CODES)}')

    @staticmethod
    def _getattr(args: tuple) -> _StatisticsMethod:
        if len(args) == 2 and isinstance(args[0], Global) and \
                args[0].qualname == _HB and args[1] in _HB_STATISTICS:
            return _StatisticsMethod(args[1])
        raise UnsafePickle(f'refused getattr{brief(args)}: only '
                           f'HistoryBuffer\'s statistics methods '
                           f'{_HB_STATISTICS}')

    @staticmethod
    def _scalar(args: tuple) -> Any:
        if len(args) == 2 and isinstance(args[0], np.dtype) and \
                isinstance(args[1], bytes) and \
                len(args[1]) == args[0].itemsize:
            return np.frombuffer(args[1], dtype=args[0])[0]
        raise UnsafePickle('refused numpy scalar arguments')

    # --- NEWOBJ and BUILD ----------------------------------------------------
    def newobj(self, g: Global, args: tuple) -> Any:
        if isinstance(g, _UnloadedGlobal):
            return Unloaded(g.qualname)
        if g.qualname == _HB and args == ():
            return Pending('HistoryBuffer')
        raise UnsafePickle(f'refused NEWOBJ of {g}')

    def build(self, obj: Any, state: Any) -> Any:
        if isinstance(obj, Unloaded):
            return obj
        if isinstance(obj, Pending) and not obj.built:
            obj.value = {'numpy dtype': self._build_dtype,
                         'numpy array': self._build_array,
                         'HistoryBuffer': self._build_history}[obj.kind](
                             obj.value, state)
            obj.built = True
            return obj
        if isinstance(obj, collections.OrderedDict) and isinstance(
                state, dict) and set(state) <= {'_metadata'}:
            if '_metadata' in state:  # an instance attribute
                obj._metadata = self._versions(state['_metadata'])
            return obj
        raise UnsafePickle(f'refused BUILD on a {type(obj).__name__}')

    def _versions(self, metadata: Any) -> collections.OrderedDict:
        """A state dict's ``_metadata`` with its modules' versions only:
        torch passes the rest to ``_load_from_state_dict`` as options
        (``assign_to_params_buffers`` makes the file's tensors the model's
        parameters)."""
        if not (isinstance(metadata, dict) and all(
                isinstance(m, dict) for m in metadata.values())):
            raise UnsafePickle('refused a state dict _metadata that is not '
                               'a dict of dicts')
        kept = collections.OrderedDict()
        for prefix, local in metadata.items():
            version = local.get('version')
            kept[prefix] = {'version': version} if type(version) is int \
                else {}
            if set(local) != set(kept[prefix]):
                self.dropped.add(f'_metadata[{brief(prefix)}]: '
                                 f'{brief(sorted(map(str, local)))}')
        return kept

    @staticmethod
    def _build_dtype(code: str, state: Any) -> np.dtype:
        dtype = np.dtype(code)
        if isinstance(state, tuple) and len(state) > 1 and \
                state[1] in ('<', '>') and dtype.byteorder != '|':
            dtype = dtype.newbyteorder(state[1])
        if state != dtype.__reduce__()[2]:  # fields, flags: a plain dtype's
            raise UnsafePickle(f'refused numpy dtype state {brief(state)} '
                               f'for {code!r}')
        return dtype

    @staticmethod
    def _build_array(_: None, state: Any) -> np.ndarray:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise UnsafePickle('refused numpy array state')
        _, shape, dtype, fortran, data = state
        shape = _ints(shape, 'shape')
        if not (isinstance(dtype, np.dtype) and isinstance(fortran, bool)
                and isinstance(data, bytes)
                and len(data) == math.prod(shape) * dtype.itemsize):
            raise UnsafePickle(f'refused numpy array data for shape '
                               f'{shape}')
        return np.frombuffer(data, dtype=dtype).reshape(
            shape, order='F' if fortran else 'C').copy(order='K')

    @staticmethod
    def _build_history(_: None, state: Any) -> HistoryBuffer:
        if not (isinstance(state, dict) and set(state) <= {
                'max_length', '_log_history', '_count_history',
                'statistics_methods'}):
            raise UnsafePickle('refused HistoryBuffer state keys '
                               f'{brief(state)}')
        log, count = state.get('_log_history'), state.get('_count_history')
        max_length = state.get('max_length', 1000000)
        if not (type(max_length) is int and max_length > 0 and all(
                isinstance(a, np.ndarray) and a.ndim == 1 for a in
                (log, count)) and len(log) == len(count)):
            raise UnsafePickle('refused HistoryBuffer state values')
        buffer = HistoryBuffer(max_length=max_length)
        buffer._log_history, buffer._count_history = log, count
        return buffer

    # --- storages ------------------------------------------------------------
    def persistent_load(self, pid: Any) -> _Storage:
        if self.storage is None:
            return super().persistent_load(pid)
        if not (isinstance(pid, tuple) and len(pid) == 5 and
                pid[0] == 'storage'):
            raise UnsafePickle(f'refused persistent id {brief(pid)}')
        _, kind, key, location, numel = pid
        name = getattr(kind, 'qualname', '')[len('torch.'):]
        if name not in _STORAGE_DTYPES or not isinstance(key, str) or \
                not key.isdigit() or not isinstance(location, str) or \
                not set(location) <= _LOCATION_CHARS or \
                type(numel) is not int or numel < 0:
            raise UnsafePickle(f'refused persistent id {brief(pid)}')
        return self.storage(key, _STORAGE_DTYPES[name], numel, location)


# --- containers -----------------------------------------------------------
LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
RESAVE = ('load it where you trust it and save it again with '
          '`torch.save(torch.load(f), f2)` (torch >= 1.6 writes the zip '
          'format)')


# the storage locations a file may choose by itself (map_location None)
_FILE_LOCATION = re.compile(r'cpu|cuda(:\d{1,3})?|mps')


def _device(location: str, map_location: Any, name: str) -> torch.device:
    """Where a storage saved at ``location`` goes: ``map_location`` (a
    device, a dict of them by location, or None for the file's own
    location: cpu, cuda[:N] or mps only, never meta)."""
    if isinstance(map_location, dict):
        map_location = map_location.get(location)
    if map_location is None:
        if not _FILE_LOCATION.fullmatch(location):
            raise CheckpointError(
                f'{name}: its tensors were saved on {location!r}, which a '
                f'file may not choose; load it with map_location="cpu"')
        map_location = location
    if isinstance(map_location, (str, torch.device)):
        try:
            return torch.device(map_location)
        except (RuntimeError, ValueError) as e:
            raise CheckpointError(f'{name}: map_location {map_location!r} '
                                  f'is not a device ({e})') from None
    raise CheckpointError(f'{name}: map_location {brief(map_location)}: '
                          f'give a device (str or torch.device), a dict of '
                          f'them, or None')


def zip_records(archive: zipfile.ZipFile, name: str,
                size: int) -> dict:
    """The records of ``archive`` by name, checked before any is read:
    stored (a compressed record can expand without bound, and torch.save
    stores them), not encrypted, listed once, and adding up to no more
    bytes than the file has (records that overlap, or a central directory
    that lists one record many times)."""
    records: dict = {}
    total = 0
    for info in archive.infolist():
        if info.filename in records:
            raise CheckpointError(f'{name}: refused: the zip directory '
                                  f'lists {brief(info.filename)} twice')
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(
                f'{name}: refused: record {brief(info.filename)} is '
                f'compressed (torch.save stores records; a compressed one '
                f'can expand without bound)')
        if info.flag_bits & 0x1:
            raise CheckpointError(f'{name}: refused: record '
                                  f'{brief(info.filename)} is encrypted')
        total += info.file_size
        if total > size:
            raise CheckpointError(
                f'{name}: refused: its records overlap (they add up to '
                f'more bytes than the file has)')
        records[info.filename] = info
    return records


def _load_zip(f, name: str, size: int, map_location: Any,
              weights_only: bool) -> Any:
    with zipfile.ZipFile(f) as archive:
        if any(n.endswith('/constants.pkl') or '/code/' in n
               for n in archive.namelist()):
            raise CheckpointError(
                f'{name} is a TorchScript archive (torch.jit.save), which '
                f'torch acts on while loading: refused. Save the model\'s '
                f'state_dict with torch.save instead')
        records = zip_records(archive, name, size)
        pickles = [n for n in records
                   if n == 'data.pkl' or n.endswith('/data.pkl')]
        if len(pickles) != 1:
            raise CheckpointError(f'{name} is a zip file but not a '
                                  f'torch.save checkpoint (no data.pkl)')
        prefix = pickles[0][:-len('data.pkl')]

        def record(key: str, expected: int | None = None):
            info = records.get(key)
            if info is None:
                raise UnsafePickle(f'refused: no record {brief(key)}')
            if expected is not None and info.file_size != expected:
                raise UnsafePickle(
                    f'refused: record {brief(key)} holds {info.file_size} '
                    f'bytes, its storage declares {expected}')
            return info

        order = records.get(prefix + 'byteorder')
        if order is not None:
            saved = archive.read(order)[:16].decode('ascii', 'replace')
            if saved != sys.byteorder:
                raise CheckpointError(f'{name} was saved on a '
                                      f'{brief(saved)}-endian machine')
        if records[pickles[0]].file_size > max_pickle_bytes():
            raise CheckpointError(
                f'{name}: refused: data.pkl has '
                f'{records[pickles[0]].file_size} bytes, more than '
                f'MMHATNET_MAX_PICKLE_MB={max_pickle_bytes() / 2**20:g} MiB; '
                f'raise it for a file you expect to be that large')
        storages: dict = {}

        def storage(key: str, dtype: torch.dtype, numel: int,
                    location: str) -> _Storage:
            if key not in storages:
                itemsize = torch.empty((), dtype=dtype).element_size()
                info = record(f'{prefix}data/{key}', numel * itemsize)
                device = _device(location, map_location, name)
                if device.type == 'meta':  # a check: sizes, no bytes read
                    storages[key] = _Storage(
                        torch.empty((numel,), dtype=dtype, device=device))
                    return storages[key]
                data = bytearray(archive.read(info))  # checks the CRC
                base = torch.frombuffer(data, dtype=dtype) if data else \
                    torch.empty((0,), dtype=dtype)
                try:
                    storages[key] = _Storage(base.to(device))
                except (RuntimeError, AssertionError, NotImplementedError,
                        TypeError) as e:
                    raise CheckpointError(
                        f'{name}: its tensors go to {device} (saved on '
                        f'{location!r}, map_location='
                        f'{brief(map_location)}), which this torch cannot '
                        f'use ({type(e).__name__}: {str(e)[:100]}); load '
                        f'it with map_location="cpu"') from None
            elif storages[key].base.dtype != dtype:
                raise UnsafePickle(f'refused: storage {brief(key)} read as '
                                   f'two dtypes')
            return storages[key]

        rebuilder = CheckpointRebuilder(storage, weights_only)
        loaded = restricted_load(archive.read(record(pickles[0])),
                                 rebuilder)
        if rebuilder.unloaded:
            print_log(f'{name}: loaded the weights only; left out what '
                      f'they are not: {brief(sorted(rebuilder.unloaded))}',
                      logger='current')
        if rebuilder.dropped:
            print_log(f'{name}: dropped what a state dict\'s _metadata may '
                      f'not carry (module versions only): '
                      f'{brief(sorted(rebuilder.dropped))}',
                      logger='current', level=logging.WARNING)
        return loaded if weights_only else checked_contents(loaded, name)


# --- what a checkpoint carries beyond tensors ------------------------------
MAX_HUB_KEYS = 4096  # per message hub section; real ones hold under 100
_HUB_SECTIONS = ('log_scalars', 'runtime_info', 'resumed_keys')


def _refuse(name: str, what: str) -> CheckpointError:
    return CheckpointError(f'{name}: refused: {what}')


def _config_text(holder: dict, key: str, name: str, where: str) -> None:
    """Replace the config text ``holder[key]`` with its literal values
    written again (:func:`.config_text.literal_config`), or drop it."""
    safe, note = literal_config(holder[key])
    if safe is None:
        del holder[key]
        print_log(f'{name}: dropped the config text in {where}, which is '
                  f'not a config of literal values ({note}); it is never '
                  f'executed. Where it was needed (an inferencer built '
                  f'from weights alone), give the config file',
                  logger='current', level=logging.WARNING)
        return
    holder[key] = safe
    if note:
        print_log(f'{name}: {where}: {note}', logger='current',
                  level=logging.WARNING)


def checked_contents(checkpoint: Any, name: str) -> Any:
    """``checkpoint`` with what mmengine reads of its ``meta`` and
    ``message_hub`` checked as data: ``epoch`` and ``iter`` ints >= 0,
    seeds ints in [0, 2**32) (a tuple seed is hashed by ``random.seed``
    and by ``StepSeedHook``), config texts as literal values only
    (``Runner.resume`` and the inferencers execute them), and the message
    hub bounded and typed (mmengine loads it in quadratic time in its
    number of keys). Optimizer and scheduler states are checked against
    the run that loads them (:mod:`.resume_state`)."""
    if not isinstance(checkpoint, dict):
        return checkpoint
    meta = checkpoint.get('meta')
    if meta is not None and not isinstance(meta, dict):
        raise _refuse(name, f"its 'meta' is a {type(meta).__name__}, "
                            f"not a dict")
    for key, end, what in (('epoch', 2**62, 'a count'),
                           ('iter', 2**62, 'a count'),
                           ('seed', 2**32, 'a seed'),
                           ('step_seed', 2**32, 'a seed')):
        value = meta.get(key) if meta else None
        if value is None:
            continue
        if isinstance(value, np.integer):  # mmengine's seeds are numpy's
            value = meta[key] = int(value)
        if not (type(value) is int and 0 <= value < end):
            raise _refuse(name, f"meta['{key}'] is {brief(value)}: "
                                f"{what} is an int from 0 to {end - 1}")
    for key in ('config', 'cfg') if meta else ():
        if key in meta:
            _config_text(meta, key, name, f"meta['{key}']")
    hub = checkpoint.get('message_hub')
    if hub is None:
        return checkpoint
    if not (isinstance(hub, dict) and set(hub) <= set(_HUB_SECTIONS)):
        raise _refuse(name, f'its message hub is {brief(hub)}, not a dict '
                            f'of {_HUB_SECTIONS}')
    for section, items in hub.items():
        if not (isinstance(items, dict) and len(items) <= MAX_HUB_KEYS and
                all(type(k) is str for k in items)):
            raise _refuse(name, f'message_hub[{section!r}] is not a dict of '
                                f'at most {MAX_HUB_KEYS} string keys')
    if not all(type(v) is bool
               for v in hub.get('resumed_keys', {}).values()):
        raise _refuse(name, "message_hub['resumed_keys'] holds other "
                            "than bools")
    if not all(isinstance(v, HistoryBuffer)
               for v in hub.get('log_scalars', {}).values()):
        raise _refuse(name, "message_hub['log_scalars'] holds other than "
                            "HistoryBuffers")
    info = hub.get('runtime_info', {})
    if 'cfg' in info:
        _config_text(info, 'cfg', name, "message_hub['runtime_info']['cfg']")
    return checkpoint


def _refuse_other_format(f, name: str) -> None:
    """Raise the CheckpointError for a file that is not a zip archive."""
    f.seek(257)
    if f.read(5) == b'ustar':  # a tar header's magic
        raise CheckpointError(f'{name} is in the tar format of torch < '
                              f'0.4, which is refused: {RESAVE}')
    f.seek(0)
    head = f.read(max_pickle_bytes())
    try:
        first = restricted_load(head, CheckpointRebuilder(None, False))
    except NotAPickle as e:
        raise CheckpointError(
            f'{name} is not a PyTorch checkpoint (neither torch.save\'s zip '
            f'format nor a pickle: {e})') from None
    if type(first) is int and first == LEGACY_MAGIC:
        raise CheckpointError(f'{name} is in the legacy format of torch < '
                              f'1.6 (or _use_new_zipfile_serialization='
                              f'False), which is refused: {RESAVE}')
    raise CheckpointError(f'{name} is a raw pickle, not a torch.save '
                          f'checkpoint; refused')


def _load_bytes(f, name: str, size: int, map_location: Any,
                weights_only: bool) -> Any:
    try:
        if zipfile.is_zipfile(f):
            f.seek(0)
            return _load_zip(f, name, size, map_location, weights_only)
        _refuse_other_format(f, name)
    except UnsafePickle as e:
        raise CheckpointError(
            f'{name}: refused: its pickle asks for code or objects outside '
            f'plain data, so it is not loaded ({e})') from None
    except NotAPickle as e:
        raise CheckpointError(f'{name} is not a PyTorch checkpoint '
                              f'({e})') from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError,
            OSError) as e:
        raise CheckpointError(f'{name} is not a PyTorch checkpoint (a '
                              f'broken zip archive: {e})') from None


def load_untrusted(source: str | bytes, map_location: Any = 'cpu',
                   weights_only: bool = False) -> Any:
    """The checkpoint at ``source`` (a path, a URL of a scheme mmengine
    reads, or the file's bytes) as plain data, or :class:`CheckpointError`.

    ``weights_only=True`` allows tensors and containers only (pretrained
    weights); the default also mmengine's checkpoint objects (resume).
    ``map_location='meta'`` checks a file without reading its tensors'
    bytes: every check but the records' CRCs, meta tensors back.
    """
    if isinstance(source, (bytes, bytearray)):
        return _load_bytes(io.BytesIO(source), 'checkpoint bytes',
                           len(source), map_location, weights_only)
    source = str(source)
    if '://' in source:
        return _load_scheme(source, map_location, weights_only)
    path = os.path.expanduser(source)
    if not os.path.isfile(path):
        raise CheckpointError(f'{source}: no such file')
    with open(path, 'rb') as f:
        return _load_bytes(f, source, os.path.getsize(path), map_location,
                           weights_only)


def state_dict_of(obj: object, path: str = 'checkpoint') -> dict:
    """The state dict in ``obj``: bare, or under 'model' or 'state_dict'."""
    if isinstance(obj, dict):
        for key in ('state_dict', 'model'):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    unloaded = sorted({v.name for v in obj.values() if isinstance(
        v, Unloaded)}) if isinstance(obj, dict) else []
    if unloaded:
        raise CheckpointError(
            f'{path}: refused: its state dict holds objects that are not '
            f'tensors ({", ".join(unloaded)}); nothing of them was run or '
            f'built')
    if not (isinstance(obj, dict) and obj and all(
            isinstance(v, torch.Tensor) for v in obj.values())):
        raise CheckpointError(
            f'{path} holds no state dict (a dict of tensors, bare or under '
            f"'model' or 'state_dict')")
    return obj


# --- URLs -----------------------------------------------------------------
def _mib_env(name: str, default: float) -> float:
    value = os.environ.get(name, '')
    try:
        return float(value) if value else default
    except ValueError:
        raise CheckpointError(f'{name}={brief(value)}: give a number') \
            from None


def download_limits() -> tuple[float, int]:
    """(seconds, bytes): a download's overall deadline,
    ``MMHATNET_DOWNLOAD_TIMEOUT`` (3600 s by default), and its size cap,
    ``MMHATNET_MAX_DOWNLOAD_MB`` (4096 MiB)."""
    return (_mib_env('MMHATNET_DOWNLOAD_TIMEOUT', 3600),
            int(_mib_env('MMHATNET_MAX_DOWNLOAD_MB', 4096) * 2**20))


_SEGMENT = re.compile(r'[A-Za-z0-9._~+-]+')
_HOST = re.compile(r'[A-Za-z0-9.-]+(:[0-9]+)?')
# OpenMMLab's and torch hub's file names end in -<sha256 prefix>.<ext>
_NAME_HASH = re.compile(r'-([a-f0-9]{8,64})\.[^.]*$')
_FULL_HASH = re.compile(r'sha256=([a-f0-9]{64})')


def cache_path(url: str) -> str:
    """Where :func:`download` keeps ``url``: under torch hub's cache,
    keyed by the whole URL, ``$TORCH_HOME/hub/checkpoints/by_url/<scheme>/
    <host>/<path>`` (``_`` for the port's colon), or ``by_url/sha256/
    <hash of the URL>/<file name>`` for a URL with a query, user info or
    other characters. Two URLs never share a file, whatever their file
    names (``torchvision://resnet50`` and ``http://anyone/resnet50-...
    .pth`` are two entries)."""
    parts = urllib.parse.urlsplit(url.split('#', 1)[0])
    segments = parts.path.split('/')[1:]
    filename = os.path.basename(parts.path)
    if not filename:
        raise CheckpointError(f'{url}: no file name in the URL')
    root = os.path.join(torch.hub.get_dir(), 'checkpoints', 'by_url')
    readable = (parts.scheme in ('http', 'https') and not parts.query
                and _HOST.fullmatch(parts.netloc) and all(
                    _SEGMENT.fullmatch(p) and p not in ('.', '..')
                    for p in segments))
    if readable:
        return os.path.join(root, parts.scheme,
                            parts.netloc.replace(':', '_'), *segments)
    key = hashlib.sha256(url.split('#', 1)[0].encode()).hexdigest()[:32]
    return os.path.join(root, 'sha256', key,
                        re.sub(r'[^A-Za-z0-9._+-]', '_', filename)[-100:])


def expected_sha256(url: str) -> str:
    """The SHA-256 (or its prefix) the file at ``url`` must have: a full
    one given as ``#sha256=<hex>`` after the URL (pip's convention), else
    the prefix in an OpenMMLab / torch hub file name (``name-<8 or more
    hex digits>.pth``), else ''."""
    full = _FULL_HASH.fullmatch(url.split('#', 1)[1]) if '#' in url \
        else None
    if '#' in url and not full:
        raise CheckpointError(f'{url}: the part after # must be '
                              f'sha256=<64 hex digits>')
    if full:
        return full.group(1)
    named = _NAME_HASH.search(os.path.basename(
        urllib.parse.urlsplit(url).path))
    return named.group(1) if named else ''


def check_reachable(url: str, where: str, timeout: float = 10) -> None:
    """Raise :class:`CheckpointError` unless ``url`` is in the cache or its
    server answers within ``timeout`` seconds: a run that needs a file it
    cannot get stops before it builds data sets and starts ranks, with the
    way to run offline."""
    cached = cache_path(url)
    if os.path.isfile(cached):
        return
    try:
        urllib.request.urlopen(url.split('#', 1)[0], timeout=timeout).close()
    except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts
        raise CheckpointError(
            f'{where} {url} is not in the cache ({cached}) and cannot be '
            f'downloaded ({type(e).__name__}: {e}). Without internet '
            f'access, copy the file to that path, or give a local path '
            f'(docs/user_guides/weights.md, "Without internet access")') \
            from None


def _check_sha256(url: str, digest: str, where: str) -> None:
    want = expected_sha256(url)
    if want and not digest.startswith(want):
        how = ('#sha256=' if len(want) == 64 else
               'the -<hash> in its file name')
        raise CheckpointError(
            f'{url}: {where} has SHA-256 {digest}, not the {want} that '
            f'{how} names; nothing was cached')


def _sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def download(url: str) -> str:
    """The file at ``url`` in torch hub's cache, at :func:`cache_path`:
    downloaded to a temporary file beside it and renamed only when whole
    (its Content-Length reached, its SHA-256 what the URL names, if it
    names one, and its zip records stored, listed once and within the
    file: nothing is inflated), within ``download_limits()``. A cached
    file whose URL names a hash is checked against it again."""
    cached = cache_path(url)
    if os.path.isfile(cached):
        if expected_sha256(url):
            _check_sha256(url, _sha256_of(cached), f'the cached {cached}')
        return cached
    deadline, cap = download_limits()
    folder, filename = os.path.split(cached)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=filename + '.',
                               suffix='.part')
    start = time.monotonic()
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, 'wb') as f, urllib.request.urlopen(
                url.split('#', 1)[0], timeout=min(60, deadline)) as response:
            total = int(response.headers.get('Content-Length') or 0)
            if total > cap:
                raise CheckpointError(
                    f'{url}: {total} bytes, more than '
                    f'MMHATNET_MAX_DOWNLOAD_MB={cap / 2**20:g}; raise it '
                    f'for a file you expect to be that large')
            print_log(f'Downloading {url} to {cached} '
                      f'({total / 2**20:.1f} MiB)', logger='current')
            done, shown = 0, 0
            while True:
                # read1: what arrived, so a slow sender cannot hold one
                # read past the deadline
                chunk = response.read1(1 << 20)
                if not chunk:
                    break
                f.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if done > cap:
                    raise CheckpointError(
                        f'{url}: more than MMHATNET_MAX_DOWNLOAD_MB='
                        f'{cap / 2**20:g} MiB arrived; nothing was cached. '
                        f'Raise it for a file you expect to be that large')
                if time.monotonic() - start > deadline:
                    raise CheckpointError(
                        f'{url}: not downloaded within '
                        f'MMHATNET_DOWNLOAD_TIMEOUT={deadline:g} s ({done} '
                        f'bytes arrived); nothing was cached. Raise it for '
                        f'a slow connection')
                if total and sys.stderr.isatty() and \
                        done * 10 // total > shown:
                    shown = done * 10 // total
                    print(f'\r{filename}: {100 * done // total}% of '
                          f'{total / 2**20:.1f} MiB', end='',
                          file=sys.stderr, flush=True)
        if total and done != total:
            raise CheckpointError(f'{url}: download cut off at {done} of '
                                  f'{total} bytes; nothing was cached')
        _check_sha256(url, h.hexdigest(), 'the download')
        try:
            with zipfile.ZipFile(tmp) as archive:
                zip_records(archive, url, done)
        except (zipfile.BadZipFile, OSError, EOFError):
            raise CheckpointError(f'{url}: the download is not a whole '
                                  f'torch.save checkpoint; nothing was '
                                  f'cached') from None
        os.replace(tmp, cached)
    except (OSError, ValueError) as e:  # urllib's errors are OSErrors
        if not isinstance(e, CheckpointError):
            raise CheckpointError(f'{url}: download failed '
                                  f'({type(e).__name__}: {e})') from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return cached


def _download_once(url: str) -> str:
    """:func:`download` on rank 0 first, then on the others (they find
    it cached where the file system is shared), as mmengine does."""
    from mmengine.dist import barrier, get_dist_info
    rank, world_size = get_dist_info()
    path = download(url) if rank == 0 else None
    if world_size > 1:
        barrier()
        if rank > 0:
            path = download(url)
    return path


def _model_url(source: str) -> str:
    """The URL or mmengine-home path a ``torchvision://``, ``modelzoo://``,
    ``open-mmlab://``, ``openmmlab://`` or ``mmcls://`` name stands for."""
    scheme, name = source.split('://', 1)
    if scheme in ('torchvision', 'modelzoo'):
        urls = mme_ckpt.get_torchvision_models()
    elif scheme == 'mmcls':
        urls = mme_ckpt.get_mmcls_models()
    else:
        urls = mme_ckpt.get_external_models()
        name = mme_ckpt.get_deprecated_model_names().get(name, name)
    if name not in urls:
        raise CheckpointError(f'{source}: no model {name!r} under '
                              f'{scheme}://')
    url = urls[name]
    if url.startswith(('http://', 'https://')):
        return url
    return os.path.join(mme_ckpt._get_mmengine_home(), url)


def _load_scheme(source: str, map_location: Any, weights_only: bool) -> Any:
    scheme = source.split('://', 1)[0]
    if scheme in ('http', 'https'):
        return load_untrusted(_download_once(source), map_location,
                              weights_only)
    if scheme in ('torchvision', 'modelzoo', 'open-mmlab', 'openmmlab',
                  'mmcls'):
        checkpoint = load_untrusted(_model_url(source), map_location,
                                    weights_only)
        if scheme == 'mmcls':
            checkpoint = mme_ckpt._process_mmcls_checkpoint(checkpoint)
        return checkpoint
    if scheme in ('s3', 'petrel'):
        from mmengine.fileio import get_file_backend
        data = get_file_backend(source, backend_args={
            'backend': 'petrel'}).get(source)
        return _load_bytes(io.BytesIO(data), source, len(data),
                           map_location, weights_only)
    raise CheckpointError(f'{source}: the {scheme}:// scheme is not read by '
                          f"mmhatnet's safe loading; download the file and "
                          f'give its path')


# --- mmengine --------------------------------------------------------------
def _mmengine_loader(source: str, map_location: Any = None) -> Any:
    """mmengine's loader of every scheme, through :func:`load_untrusted`."""
    if '://' not in source:
        path = os.path.expanduser(source)
        if not os.path.isfile(path):  # the error mmengine's callers expect
            raise FileNotFoundError(f'{source} can not be found.')
    return load_untrusted(source, map_location)


_mmengine_loader.__name__ = 'load_from_mmhatnet_safe_loading'


def use_safe_loading_in_mmengine() -> None:
    """Make every scheme of mmengine's ``CheckpointLoader`` (``load_from``,
    resume, ``Pretrained``, the inferencers' weights) load through
    :func:`load_untrusted`."""
    prefixes = set(mme_ckpt.CheckpointLoader._schemes) | {
        '', 'http://', 'https://', 'modelzoo://', 'torchvision://',
        'open-mmlab://', 'openmmlab://', 'mmcls://', 'pavi://'}
    mme_ckpt.CheckpointLoader.register_scheme(
        prefixes=sorted(prefixes), loader=_mmengine_loader, force=True)


__all__ = ['CheckpointError', 'download', 'load_untrusted',
           'max_pickle_bytes', 'state_dict_of',
           'use_safe_loading_in_mmengine']
