# RetinaNet + HAT-Net-Small, COCO 1x (paper Table 5; PVT's recipe):
# batch 16 (8 GPUs x 2), 12 epochs, AdamW lr 1e-4, wd 1e-4, 500-iter linear
# warm-up, lr x0.1 after epochs 8 and 11, 1333x800 keep-ratio, flip 0.5.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmhatnet'], allow_failed_imports=False)

# ImageNet weights: tools/convert_official.py HAT-Net_Small.pth <this path>
pretrained = 'checkpoints/hatnet_small_in1k.pth'
data_root = 'data/coco/'

model = dict(
    backbone=dict(
        _delete_=True,
        type='HATNet',
        arch='small',
        grid_sizes=(8, 8, 8),
        pool_ratios=(16, 8, 4),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 320, 512]))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=False),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='CheckAnnotationSize'),  # mmhatnet.transforms
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=False),
    dict(type='CheckAnnotationSize'),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-4))
auto_scale_lr = dict(base_batch_size=16)

# mmhatnet.engine: atomic checkpoint writes, stop at the first NaN/inf loss,
# random numbers per (seed, epoch, iteration) for exact resume
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')))
custom_hooks = [dict(type='FiniteLossHook'), dict(type='StepSeedHook')]
