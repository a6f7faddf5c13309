"""Training-time safety for mmengine runners.

- ``ATOMIC_BACKEND``: a file backend that writes a checkpoint to a temporary
  file and renames it, so a run killed during a save never leaves a partial
  ``epoch_N.pth``. Configs select it with
  ``default_hooks.checkpoint.backend_args = dict(backend='atomic_local')``.
- ``allow_mmengine_checkpoints``: torch >= 2.6 loads with
  ``weights_only=True``; mmengine 0.10.7's own checkpoints hold a few
  non-tensor classes (its ``HistoryBuffer`` with numpy arrays), so its resume
  fails. This allows exactly those classes and nothing else: a pickle that
  would run code is still refused.
- ``FiniteLossHook``: stops training at the first non-finite loss, before
  any checkpoint of the broken weights is written.
- ``StepSeedHook``: random numbers drawn as a function of (seed, epoch,
  iteration), so a resumed run draws what the uninterrupted run drew.
- ``check_config``: mistakes found before a run starts, with the fix.
"""
import os.path as osp
import pickle
import random

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.registry import HOOKS

from .checkpoint import load_untrusted, write_atomically
from .models import HATNet

ATOMIC_BACKEND = 'atomic_local'


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose ``put`` is atomic: temporary file, fsync,
    rename."""

    def put(self, obj: bytes, filepath) -> None:
        write_atomically(obj, filepath)


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


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise at the first iteration whose loss is NaN or infinite.

    Its priority is above the checkpoint and logger hooks, so training
    stops before the weights that the step broke are saved.
    """
    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: dict | None = None) -> None:
        loss = (outputs or {}).get('loss')
        if loss is not None and not torch.isfinite(loss).all():
            losses = {k: float(v) for k, v in outputs.items()
                      if isinstance(v, torch.Tensor) and v.numel() == 1}
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1} (epoch '
                f'{runner.epoch + 1}): {losses}. Training stopped; no '
                f'checkpoint of these weights was saved. Lower the learning '
                f'rate, enable gradient clipping, or check the data.')


@HOOKS.register_module()
class StepSeedHook(Hook):
    """Seed the random generators from (seed, epoch, iteration), so that
    ``--resume`` continues with the random numbers of an uninterrupted run.

    mmengine seeds once per process and saves no generator state, so after a
    resume dropout, drop path and data augmentation draw other numbers. This
    hook reseeds torch before every training iteration (the model's draws)
    and numpy and ``random`` before every epoch (the data pipeline's draws;
    an iteration-based loop replays the pipeline over the batches it skips on
    resume). The base seed is kept in the checkpoint. Exactness also needs
    the data workers to restart each epoch (``persistent_workers=False``) or
    ``num_workers=0``.
    """
    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self.seed = None

    def before_train(self, runner) -> None:
        if self.seed is None:
            self.seed = runner.seed if runner.seed is not None else 0

    def _derive(self, *steps: int) -> int:
        return hash((self.seed, *steps)) % 2**31

    def before_train_epoch(self, runner) -> None:
        seed = self._derive(runner.epoch)
        np.random.seed(seed)
        random.seed(seed)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        torch.manual_seed(self._derive(runner.epoch, runner.iter))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['step_seed'] = self.seed

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self.seed = checkpoint.get('meta', {}).get('step_seed', self.seed)


def check_config(cfg) -> None:
    """Raise ValueError for mistakes a run would hit late: a missing or
    unsafe pretrained file, a neck or head whose ``in_channels`` do not fit
    the backbone."""
    model = cfg.get('model', {})
    backbone = model.get('backbone') or {}
    if backbone.get('type') != 'HATNet':
        return
    init = backbone.get('init_cfg') or {}
    ckpt = init.get('checkpoint') if isinstance(init, dict) else None
    if ckpt and '://' not in ckpt:
        if not osp.isfile(ckpt):
            raise ValueError(
                f'model.backbone.init_cfg.checkpoint {ckpt!r} does not '
                f'exist. Convert the released weights there with `python '
                f'tools/convert_official.py HAT-Net_<Arch>.pth {ckpt}`, '
                f'point it elsewhere, or train from scratch with '
                f'--cfg-options model.backbone.init_cfg=None')
        load_untrusted(ckpt)  # refuse a pickle that would run code
    kwargs = {k: v for k, v in backbone.items()
              if k not in ('type', 'init_cfg', '_scope_')}
    with torch.device('meta'):
        out_channels = list(HATNet(**kwargs).out_channels)
    neck = model.get('neck')
    necks = neck if isinstance(neck, list) else [neck]
    first = necks[0] if necks and isinstance(necks[0], dict) else {}
    in_channels = first.get('in_channels')
    head = model.get('head') or {}
    given = head.get('in_channels')
    for key, got, want in (('neck', in_channels, out_channels),
                           ('head', given, out_channels[-1])):
        if isinstance(got, (list, tuple)):
            got = list(got)
        if got is not None and not isinstance(got, dict) and got != want:
            raise ValueError(
                f'model.{key}.in_channels is {got} but HATNet arch='
                f'{backbone.get("arch", "small")!r} with out_indices='
                f'{tuple(backbone.get("out_indices", (0, 1, 2, 3)))} gives '
                f'{want}: set model.{key}.in_channels={want}')
