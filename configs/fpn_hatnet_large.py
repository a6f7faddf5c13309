_base_ = './fpn_hatnet_small.py'

# ImageNet weights: tools/convert_official.py HAT-Net_Large.pth <this path>
pretrained = 'checkpoints/hatnet_large_in1k.pth'

model = dict(
    backbone=dict(arch='large', init_cfg=dict(checkpoint=pretrained)),
    neck=dict(in_channels=[64, 128, 320, 640]))
