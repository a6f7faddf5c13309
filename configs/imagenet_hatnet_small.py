# HAT-Net-Small on ImageNet-1k, the DeiT protocol the paper follows:
# 300 epochs, AdamW (wd 0.05), batch 1024 (8 GPUs x 128), lr 1e-3 with
# cosine decay (20 warm-up epochs), random-resized crop 224, flip,
# RandAugment, Mixup/CutMix, label smoothing 0.1; test: resize 256, center
# crop 224. G1/G2 are the paper's ImageNet setting 8,7,7 / 8,4,2.
# Evaluate the released weights with load_from = <converted checkpoint>.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
    './_base_/hatnet_runtime.py',  # custom_hooks
]
# the classifier head is mmpretrain's, so imported on its own
custom_imports = dict(
    imports=['mmhatnet', 'mmhatnet.models.cls_head'],
    allow_failed_imports=False)

data_root = 'data/imagenet'

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='HATNet',
        arch='small',
        grid_sizes=(8, 7, 7),
        pool_ratios=(8, 4, 2),
        out_indices=(3, ),
        drop_path_rate=0.1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='DropoutLinearClsHead',
        num_classes=1000,
        in_channels=512,
        dropout=0.2,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02)),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))

train_dataloader = dict(batch_size=128, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    clip_grad=dict(max_norm=5.0))
auto_scale_lr = dict(base_batch_size=1024)

# mmhatnet.engine: atomic checkpoint writes
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')))
