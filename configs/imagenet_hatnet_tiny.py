_base_ = './imagenet_hatnet_small.py'

model = dict(
    backbone=dict(arch='tiny', drop_path_rate=0.1),
    head=dict(in_channels=384))
