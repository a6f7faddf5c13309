"""The README's main job: train HAT-Net-Tiny on generated data, evaluate.

Writes a small ImageNet-format data set (4 classes of coloured shapes on
textured backgrounds; mmhatnet.demo.data) under the work dir, trains
configs/imagenet_hatnet_tiny.py on it through tools/train.py's code path
(real mmpretrain dataset, pipeline, Accuracy evaluator, runner and hooks),
shortened for a CPU (see DEMO_CONFIG), evaluates the final checkpoint on the
held-out images through tools/test.py's code path and prints top-1 accuracy
next to chance (25%).

    python tools/demo.py [--work-dir work_dirs/demo] [--epochs 12]
"""
from __future__ import annotations

import argparse
import os
import os.path as osp

from mmhatnet.apis import test, train
from mmhatnet.demo.data import make_demo_data

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NUM_CLASSES = 4

# Differs from the full recipe only where a 2-core CPU and 4 classes need
# it: 64 px crops, no Mixup/CutMix, RandAugment or random erasing, a short
# warm-up and cosine schedule, batch 16.
DEMO_CONFIG = """\
_base_ = {base!r}
num_classes = {num_classes}
data_preprocessor = dict(num_classes=num_classes)
model = dict(
    backbone=dict(init_cfg=None, drop_path_rate=0.0),
    head=dict(num_classes=num_classes),
    train_cfg=dict(_delete_=True, augments=None))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=73, edge='short'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline),
                        **loader)
val_dataloader = dict(batch_size=16, dataset=dict(pipeline=test_pipeline),
                      **loader)
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1),
]
train_cfg = dict(max_epochs={epochs}, val_interval={epochs})
default_hooks = dict(logger=dict(interval=4),
                     checkpoint=dict(interval={epochs}, max_keep_ckpts=1))
randomness = dict(seed=0)
"""


def run_demo(work_dir: str, epochs: int, num_train: int,
             num_val: int) -> float:
    """Generate data, train, test; returns the top-1 accuracy (%)."""
    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    os.chdir(work_dir)  # the configs read data/ relative to the cwd
    make_demo_data(work_dir, ['imagenet'], num_train=num_train,
                   num_val=num_val)
    config = osp.join(work_dir, 'imagenet_hatnet_tiny_demo.py')
    with open(config, 'w') as f:
        f.write(DEMO_CONFIG.format(
            base=osp.join(ROOT, 'configs', 'imagenet_hatnet_tiny.py'),
            num_classes=NUM_CLASSES, epochs=epochs))
    runs = osp.join(work_dir, 'runs')
    train([config, '--work-dir', runs])
    metrics = test([config, osp.join(runs, f'epoch_{epochs}.pth'),
                    '--work-dir', osp.join(work_dir, 'test')])
    return metrics['accuracy/top1']


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                       'demo'))
    parser.add_argument('--epochs', type=int, default=12)
    parser.add_argument('--num-train', type=int, default=48,
                        help='training images per class')
    parser.add_argument('--num-val', type=int, default=16,
                        help='held-out images per class')
    args = parser.parse_args(argv)
    top1 = run_demo(args.work_dir, args.epochs, args.num_train,
                    args.num_val)
    print(f'\nHAT-Net-Tiny, {args.epochs} epochs on {args.num_train} '
          f'images per class: top-1 on {args.num_val * NUM_CLASSES} '
          f'held-out images = {top1:.1f}% (chance: '
          f'{100 / NUM_CLASSES:.0f}%)')


if __name__ == '__main__':
    main()
