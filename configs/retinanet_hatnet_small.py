# RetinaNet + HAT-Net-Small, COCO 1x (paper Table 5): data, schedule and
# hooks in _base_/coco_1x_hatnet.py; the backbone and the URLs of its
# ImageNet weights in _base_/hatnet_backbone.py.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::retinanet/retinanet_tta.py',  # as mmdet's RetinaNet 1x config
    './_base_/coco_1x_hatnet.py',
    './_base_/hatnet_backbone.py',
]

model = dict(
    backbone=dict(_delete_=True, **_base_.hatnet_small),
    neck=dict(in_channels=[64, 128, 320, 512]))
