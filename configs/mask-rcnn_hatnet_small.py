# Mask R-CNN + HAT-Net-Small, COCO 1x (paper Table 5): data, schedule and
# hooks in _base_/coco_1x_hatnet.py. PVT used lr 2e-4 for Mask R-CNN; we
# keep the paper's 1e-4.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './_base_/coco_1x_hatnet.py',
]

# ImageNet weights: tools/convert_official.py HAT-Net_Small.pth <this path>
pretrained = 'checkpoints/hatnet_small_in1k.pth'

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

# instance masks too, for the mask head and the segm metric
train_pipeline = _base_.instance_train_pipeline
test_pipeline = _base_.instance_test_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
