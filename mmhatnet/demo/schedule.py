"""The demo's schedule, in one place: what each task trains, on what, how long.

Each task is a shipped config (``configs/``) from scratch on generated data
(:mod:`mmhatnet.demo.data`), changed only where a 2-core CPU needs it:
image size, batch, schedule length, and for Mask R-CNN the number of
proposals and sampled RoIs (the RoI and mask heads, not the backbone,
dominate its time at this image size; the images hold at most 4 objects).
The learning rate is higher than the paper's (4e-4, not 1e-4) with a short
warm-up and cosine decay, because the schedule is a few hundred iterations
rather than 80k. :func:`options` turns a :class:`Schedule` into the
config overrides and :func:`image_sizes` into its image sizes, which
:func:`mmhatnet.config_tools.image_size_options` gives the pipeline steps
found by type; the demo writes the merged config next to its results.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Schedule:
    """How one task is trained and evaluated.

    Attributes:
        title: What the terminal calls it.
        config: The shipped config, a file in the checkout's ``configs/``.
        data: The :mod:`mmhatnet.demo.data` task that feeds it.
        num_train: Generated training images (per class for ImageNet).
        num_val: Held-out images (per class for ImageNet); the test set.
        length: Training length in the config's loop unit (``unit``).
        val_every: Validate every so many units (the metric curve).
        batch: Training batch size.
        scale: ``(long, short)`` side the images are resized to (for
            ImageNet, the crop side twice).
        crop: Training crop ``(h, w)``, where the task crops.
        lr: Peak AdamW learning rate.
        warmup: Linear warm-up iterations.
        metrics: The evaluator's names of the reported metrics.
        pictures: How many held-out images to draw.
    """

    title: str
    config: str
    data: str
    num_train: int
    num_val: int
    length: int
    val_every: int
    batch: int
    scale: tuple[int, int]
    lr: float
    warmup: int
    metrics: tuple[str, ...]
    unit: str = 'iteration'
    crop: tuple[int, int] | None = None
    pictures: int = 4
    extra: dict = field(default_factory=dict)


SCHEDULES = {
    'semantic_fpn': Schedule(
        title='Semantic FPN-Tiny (ADE20K layout)',
        config='fpn_hatnet_tiny.py', data='ade',
        num_train=120, num_val=24, length=300, val_every=100, batch=8,
        scale=(1024, 256), crop=(128, 128), lr=4e-4, warmup=50,
        metrics=('mIoU', )),
    'mask_rcnn': Schedule(
        title='Mask R-CNN-Tiny (COCO layout)',
        config='mask-rcnn_hatnet_tiny.py', data='coco',
        num_train=120, num_val=24, length=4, val_every=1, batch=4,
        scale=(320, 256), lr=4e-4, warmup=50, unit='epoch',
        metrics=('coco/bbox_mAP', 'coco/segm_mAP'),
        extra=dict(proposals=300, rois=64, detections=20)),
    'imagenet': Schedule(
        title='ImageNet classifier-Tiny (4 classes)',
        config='imagenet_hatnet_tiny.py', data='imagenet',
        num_train=48, num_val=16, length=12, val_every=4, batch=16,
        scale=(64, 64), lr=1e-3, warmup=12, unit='epoch',
        metrics=('accuracy/top1', )),
}
#: What ``tools/demo.py`` runs without ``--task``.
DEFAULT_TASKS = ('semantic_fpn', 'mask_rcnn')


def iterations(s: Schedule) -> int:
    """Training iterations of a schedule (loaders keep the last batch)."""
    if s.unit == 'iteration':
        return s.length
    images = s.num_train * (4 if s.data == 'imagenet' else 1)
    return s.length * -(-images // s.batch)


def _scheduler(s: Schedule) -> list[dict]:
    """Linear warm-up over ``s.warmup`` iterations, then cosine to 1%."""
    return [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
             end=s.warmup),
        dict(type='CosineAnnealingLR', eta_min=s.lr * 0.01, by_epoch=False,
             begin=s.warmup, end=iterations(s)),
    ]


def _loaders(s: Schedule) -> dict:
    # one process: two cores leave nothing for loader workers
    workers = dict(num_workers=0, persistent_workers=False)
    return dict(train_dataloader=dict(batch_size=s.batch, **workers),
                val_dataloader=dict(batch_size=1, **workers),
                test_dataloader=dict(batch_size=1, **workers))


def _fpn(s: Schedule) -> dict:
    return {
        'train_cfg.max_iters': s.length,
        'train_cfg.val_interval': s.val_every,
        'default_hooks.checkpoint.interval': s.length,
    }


def _mask_rcnn(s: Schedule) -> dict:
    proposals, rois = s.extra['proposals'], s.extra['rois']
    return {
        'model.train_cfg.rpn_proposal.nms_pre': proposals * 2,
        'model.train_cfg.rpn_proposal.max_per_img': proposals,
        'model.train_cfg.rcnn.sampler.num': rois,
        'model.test_cfg.rpn.nms_pre': proposals * 2,
        'model.test_cfg.rpn.max_per_img': proposals,
        'model.test_cfg.rcnn.max_per_img': s.extra['detections'],
        'train_cfg.max_epochs': s.length,
        'train_cfg.val_interval': s.val_every,
        'default_hooks.checkpoint.interval': s.length,
    }


def _imagenet(s: Schedule) -> dict:
    crop = s.scale[0]
    return {
        'model.head.num_classes': 4, 'data_preprocessor.num_classes': 4,
        # no Mixup/CutMix: 4 classes and a few minutes of training
        'model.train_cfg': None,
        'train_dataloader.dataset.pipeline': [
            dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=crop,
                 crop_ratio_range=(0.5, 1.0)),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='PackInputs')],
        'val_evaluator.topk': (1, ), 'test_evaluator.topk': (1, ),
        'train_cfg.max_epochs': s.length,
        'train_cfg.val_interval': s.val_every,
        'default_hooks.checkpoint.interval': s.length,
    }


_OPTIONS = {'ade': _fpn, 'coco': _mask_rcnn, 'imagenet': _imagenet}


def image_sizes(s: Schedule) -> dict:
    """The image sizes of a schedule, as ``scale`` and ``crop`` of
    :func:`mmhatnet.config_tools.image_size_options`."""
    if s.data == 'ade':
        return dict(scale=s.scale, crop=s.crop)
    if s.data == 'coco':
        return dict(scale=s.scale)
    # ImageNet's test protocol: resize the short edge to 8/7 of the crop
    return dict(scale=s.scale[0] * 8 // 7, crop=s.scale[0])


def options(s: Schedule) -> dict:
    """The config overrides (``--cfg-options`` keys) of a schedule, but for
    the image sizes (:func:`image_sizes`)."""
    return {
        'model.backbone.init_cfg': None,  # from scratch
        'model.backbone.drop_path_rate': 0.0,  # too short to regularise
        'optim_wrapper.optimizer.lr': s.lr,
        'param_scheduler': _scheduler(s),
        'default_hooks.logger.interval': 5,
        'default_hooks.checkpoint.max_keep_ckpts': 1,
        'randomness.seed': 0,
        **{f'{k}.{key}': v for k, d in _loaders(s).items()
           for key, v in d.items()},
        **_OPTIONS[s.data](s),
    }
