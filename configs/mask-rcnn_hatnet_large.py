# Mask R-CNN + HAT-Net-Large: mask-rcnn_hatnet_small.py with the Large
# backbone and its ImageNet weights.
_base_ = './mask-rcnn_hatnet_small.py'

model = dict(
    backbone=dict(
        arch='large',
        init_cfg=dict(checkpoint=_base_.hatnet_weights.large)),
    neck=dict(in_channels=[64, 128, 320, 640]))
