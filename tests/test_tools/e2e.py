"""Run tools/train.py and tools/test.py in a subprocess on generated data,
at a small scale set through --cfg-options."""
from __future__ import annotations

import functools
import os
import re
import subprocess
import sys

from mmengine.config import Config

from mmhatnet.config_tools import as_cfg_options, image_size_options

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
WORKERS = ['{loader}.num_workers=0', '{loader}.persistent_workers=False']


def _loaders(*names):
    return [w.format(loader=n) for n in names for w in WORKERS]


#: The image sizes of a short run (image_size_options' scale and crop).
SIZES = {
    'fpn': dict(scale=(256, 64), crop=(64, 64)),
    'retinanet': dict(scale=(192, 128)),
    'mask-rcnn': dict(scale=(192, 128)),
    'imagenet': dict(scale=73, crop=64),
}
#: What else makes a run short.
SMALL = {
    'fpn': [
        'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
        'default_hooks.checkpoint.interval=2',
    ],
    'retinanet': [
        'train_cfg.max_epochs=2',
        # an untrained detector scores below 0.05: keep its boxes so that
        # the COCO evaluator has results to score
        'model.test_cfg.score_thr=0.0',
    ],
    'imagenet': [
        'model.head.num_classes=4', 'data_preprocessor.num_classes=4',
        'val_evaluator.topk=(1,)', 'test_evaluator.topk=(1,)',
        'train_cfg.max_epochs=2',
        # 20 warm-up epochs, then cosine: shortened to 1 + 1
        'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
    ],
}
SMALL['mask-rcnn'] = SMALL['retinanet'][:-1] + [
    'model.test_cfg.rcnn.score_thr=0.0']
COMMON = ['model.backbone.init_cfg=None', 'train_dataloader.batch_size=2',
          'default_hooks.logger.interval=1', 'randomness.seed=0',
          *_loaders('train_dataloader', 'val_dataloader', 'test_dataloader')]


@functools.lru_cache(maxsize=None)
def _sizes(family: str) -> tuple[str, ...]:
    """The options that give the family's pipelines :data:`SIZES`, the
    steps found by type in its config."""
    cfg = Config.fromfile(config(family))
    return tuple(as_cfg_options(image_size_options(cfg, **SIZES[family])))


def small(family: str) -> list[str]:
    """Every option of a short run of ``family`` but :data:`COMMON`."""
    return [*SMALL[family], *_sizes(family)]


def small_options(family: str, *extra: str) -> list[str]:
    return ['--cfg-options', *COMMON, *small(family), *extra]


def config(family: str, arch: str = 'tiny') -> str:
    return os.path.join(ROOT, 'configs', f'{family}_hatnet_{arch}.py')


def environment(threads: int = 2) -> dict:
    return dict(os.environ, PYTHONUNBUFFERED='1',
                OMP_NUM_THREADS=str(threads))


def run(args: list[str], cwd, timeout: int = 600, check: bool = True,
        threads: int = 2, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=environment(threads),
                          capture_output=True,
                          text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


def tool(name: str, *args: str, cwd, **kwargs):
    return run([sys.executable, os.path.join(ROOT, 'tools', name), *args],
               cwd=cwd, **kwargs)


def metric(output: str, name: str) -> float:
    """The last value logged for ``name`` (e.g. 'mIoU', 'coco/bbox_mAP')."""
    values = re.findall(rf'{re.escape(name)}: (-?[0-9.]+)', output)
    assert values, f'{name} not logged:\n{output[-3000:]}'
    return float(values[-1])
