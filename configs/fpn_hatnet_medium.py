_base_ = './fpn_hatnet_small.py'

# ImageNet weights: tools/convert_official.py HAT-Net_Medium.pth <this path>
pretrained = 'checkpoints/hatnet_medium_in1k.pth'

model = dict(
    backbone=dict(arch='medium', init_cfg=dict(checkpoint=pretrained)),
    neck=dict(in_channels=[64, 128, 320, 512]))
