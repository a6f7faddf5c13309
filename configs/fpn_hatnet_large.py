# Semantic FPN + HAT-Net-Large: fpn_hatnet_small.py with the Large
# backbone and its ImageNet weights.
_base_ = './fpn_hatnet_small.py'

model = dict(
    backbone=dict(
        arch='large',
        init_cfg=dict(checkpoint=_base_.hatnet_weights.large)),
    neck=dict(in_channels=[64, 128, 320, 640]))
