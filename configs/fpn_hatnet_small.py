# Semantic FPN + HAT-Net-Small, ADE20K 512x512 (paper Table 4; PVT's recipe):
# batch 16 (8 GPUs x 2), 80k iterations, AdamW lr 1e-4, wd 1e-4, poly 0.9
# down to 0; test at shorter side 512 resized to a multiple of 32, single
# scale, no flip. The backbone and the URLs of its ImageNet weights are in
# _base_/hatnet_backbone.py.
_base_ = [
    'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
    './_base_/hatnet_runtime.py',  # custom_imports, custom_hooks
    './_base_/hatnet_backbone.py',
]

data_root = 'data/ade/ADEChallengeData2016'

model = dict(
    pretrained=None,
    backbone=dict(_delete_=True, **_base_.hatnet_small),
    neck=dict(in_channels=[64, 128, 320, 512]))

crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='CheckAnnotationSize'),  # mmhatnet.datasets
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='CheckAnnotationSize'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=80000,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000,
                 val_interval=8000)
# mmhatnet.engine: atomic checkpoint writes
default_hooks = dict(
    checkpoint=dict(
        by_epoch=False,
        interval=8000,
        backend_args=dict(backend='atomic_local')))
auto_scale_lr = dict(enable=False, base_batch_size=16)
