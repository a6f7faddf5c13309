_base_ = './imagenet_hatnet_small.py'

model = dict(
    backbone=dict(arch='medium', drop_path_rate=0.2),
    head=dict(in_channels=512))
