# Mask R-CNN + HAT-Net-Small, COCO 1x (paper Table 5): data, schedule and
# hooks in _base_/coco_1x_hatnet.py; the backbone and the URLs of its
# ImageNet weights in _base_/hatnet_backbone.py. PVT used lr 2e-4 for
# Mask R-CNN; we keep the paper's 1e-4.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './_base_/coco_1x_hatnet.py',
    './_base_/hatnet_backbone.py',
]
# det_tta: --tta for a detector with masks (mmdet's DetTTAModel refuses them)
custom_imports = dict(
    imports=['mmhatnet', 'mmhatnet.models.det_tta'],
    allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, **_base_.hatnet_small),
    neck=dict(in_channels=[64, 128, 320, 512]))

# instance masks too, for the mask head and the segm metric
train_pipeline = _base_.instance_train_pipeline
test_pipeline = _base_.instance_test_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator

# --tta: the views' boxes and masks merged (tools/test.py and mmdet's own
# flip the test pipeline when a config sets no tta_pipeline)
tta_model = dict(
    type='InstanceSegTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
