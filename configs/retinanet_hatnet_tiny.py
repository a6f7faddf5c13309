_base_ = './retinanet_hatnet_small.py'

# ImageNet weights: tools/convert_official.py HAT-Net_Tiny.pth <this path>
pretrained = 'checkpoints/hatnet_tiny_in1k.pth'

model = dict(
    backbone=dict(arch='tiny', init_cfg=dict(checkpoint=pretrained)),
    neck=dict(in_channels=[48, 96, 240, 384]))
