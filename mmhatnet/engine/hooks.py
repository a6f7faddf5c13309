"""Runner hooks for safe training.

- ``FiniteLossHook``: stops training at the first non-finite loss, before
  any checkpoint of the broken weights is written.
- ``StepSeedHook``: random numbers drawn as a function of (seed, epoch,
  iteration), and the data already trained on skipped, so a resumed run
  draws what the uninterrupted run drew.
"""
from __future__ import annotations

import random

import mmengine
import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop
from mmengine.utils import digit_version

# mmengine < 0.10.3's IterBasedTrainLoop resumes on the first batches of the
# data again instead of skipping the ``iter`` batches already trained on;
# 0.10.3 added the skip to ``IterBasedTrainLoop.run``. It is behaviour, not
# an attribute, so the version tells.
LOOP_SKIPS_TRAINED_BATCHES = (digit_version(mmengine.__version__)
                              >= digit_version('0.10.3'))


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

    On mmengine < 0.10.3, whose ``IterBasedTrainLoop`` does not skip the
    batches already trained on when it resumes, the hook skips them, at the
    point where 0.10.3 does (after the ``before_train_epoch`` seeding).
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
        loop = runner.train_loop
        if (not LOOP_SKIPS_TRAINED_BATCHES
                and isinstance(loop, IterBasedTrainLoop)):
            for _ in range(runner.iter):  # 0 unless resumed
                next(loop.dataloader_iterator)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        torch.manual_seed(self._derive(runner.epoch, runner.iter))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['step_seed'] = self.seed

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        seed = checkpoint.get('meta', {}).get('step_seed', self.seed)
        if not (seed is None or type(seed) is int):  # it is hashed
            raise TypeError(f"the checkpoint's meta['step_seed'] is a "
                            f"{type(seed).__name__}, not an int")
        self.seed = seed
