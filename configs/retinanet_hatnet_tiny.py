# RetinaNet + HAT-Net-Tiny: retinanet_hatnet_small.py with the Tiny
# backbone and its ImageNet weights.
_base_ = './retinanet_hatnet_small.py'

model = dict(
    backbone=dict(
        arch='tiny',
        init_cfg=dict(checkpoint=_base_.hatnet_weights.tiny)),
    neck=dict(in_channels=[48, 96, 240, 384]))
