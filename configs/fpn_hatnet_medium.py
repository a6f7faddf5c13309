# Semantic FPN + HAT-Net-Medium: fpn_hatnet_small.py with the Medium
# backbone and its ImageNet weights.
_base_ = './fpn_hatnet_small.py'

model = dict(
    backbone=dict(
        arch='medium',
        init_cfg=dict(checkpoint=_base_.hatnet_weights.medium)),
    neck=dict(in_channels=[64, 128, 320, 512]))
