"""Hooks the demo adds to its configs: a progress bar and the pictures.

Both are registered in mmengine's root ``HOOKS`` registry, so the mmdet,
mmseg and mmpretrain scopes all find them by name.
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import mmcv
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from rich.progress import Progress

_PROGRESS: ContextVar[Progress | None] = ContextVar('_PROGRESS',
                                                    default=None)


@contextmanager
def progress_to(progress: Progress) -> Iterator[None]:
    """Let :class:`DemoProgressHook` draw its bars on ``progress``.

    Without it (a run outside the demo) the hook draws nothing.
    """
    token = _PROGRESS.set(progress)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


@HOOKS.register_module()
class DemoProgressHook(Hook):
    """One bar for training (with the loss) and one per evaluation pass.

    Args:
        label: What the bars are labelled with (the task).
    """

    priority = 'VERY_LOW'

    def __init__(self, label: str = '') -> None:
        self.label = label
        self._bars: dict[str, int] = {}

    def _start(self, phase: str, total: int) -> None:
        progress = _PROGRESS.get()
        if progress is not None:
            self._bars[phase] = progress.add_task(
                f'{self.label} {phase}', total=total)

    def _advance(self, phase: str, description: str | None = None) -> None:
        progress = _PROGRESS.get()
        if progress is not None and phase in self._bars:
            progress.advance(self._bars[phase])
            if description is not None:
                progress.update(self._bars[phase], description=description)

    def _stop(self, phase: str) -> None:
        progress = _PROGRESS.get()
        if progress is not None and phase in self._bars:
            progress.remove_task(self._bars.pop(phase))

    def before_train(self, runner) -> None:
        self._start('train', runner.max_iters - runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: dict | None = None) -> None:
        loss = (outputs or {}).get('loss')
        text = None
        if loss is not None:  # a tensor that still holds its graph
            text = f'{self.label} train (loss {loss.item():.3f})'
        self._advance('train', text)

    def after_train(self, runner) -> None:
        self._stop('train')

    def before_val_epoch(self, runner) -> None:
        self._start('validate', len(runner.val_dataloader))

    def after_val_iter(self, runner, batch_idx: int, data_batch=None,
                       outputs=None) -> None:
        self._advance('validate')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._stop('validate')

    def before_test_epoch(self, runner) -> None:
        self._start('test', len(runner.test_dataloader))

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs=None) -> None:
        self._advance('test')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._stop('test')


@HOOKS.register_module()
class DemoPicturesHook(Hook):
    """Draw the first test images: ground truth left, prediction right.

    The drawing is the config's own visualizer, as the upstream
    visualization hooks use it, on the image at its original size:
    mmdet's ``DetLocalVisualizer`` and mmseg's ``SegLocalVisualizer`` put
    the ground truth and the prediction side by side; mmpretrain's
    ``UniversalVisualizer`` writes both labels on the image.

    Args:
        out_dir: Folder for the PNG files.
        num: How many test images to draw.
        draw_args: Further keyword arguments of the visualizer's
            ``add_datasample`` (mmdet's ``pred_score_thr``).
    """

    def __init__(self, out_dir: str, num: int = 4,
                 draw_args: dict | None = None) -> None:
        if num < 1:
            raise ValueError(f'num must be at least 1, got {num}')
        self.out_dir = out_dir
        self.num = num
        self.draw_args = draw_args or {}
        self.files: list[str] = []

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Sequence | None = None) -> None:
        for sample in outputs or ():
            if len(self.files) == self.num:
                return
            image = mmcv.imread(sample.img_path, channel_order='rgb')
            stem = osp.splitext(osp.basename(sample.img_path))[0]
            out_file = osp.join(self.out_dir, f'{stem}.png')
            visualizer = runner.visualizer
            if hasattr(visualizer, 'visualize_cls'):
                # mmpretrain's UniversalVisualizer: both labels as text
                visualizer.visualize_cls(
                    image, sample, draw_gt=True, draw_pred=True,
                    out_file=out_file, name=stem, **self.draw_args)
            else:
                visualizer.add_datasample(
                    stem, image, data_sample=sample, draw_gt=True,
                    draw_pred=True, out_file=out_file, **self.draw_args)
            self.files.append(out_file)
