# RetinaNet + HAT-Net-Small, COCO 1x (paper Table 5): data, schedule and
# hooks in _base_/coco_1x_hatnet.py.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::retinanet/retinanet_tta.py',  # as mmdet's RetinaNet 1x config
    './_base_/coco_1x_hatnet.py',
]

# ImageNet weights: tools/convert_official.py HAT-Net_Small.pth <this path>
pretrained = 'checkpoints/hatnet_small_in1k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='HATNet',
        arch='small',
        grid_sizes=(8, 8, 8),
        pool_ratios=(16, 8, 4),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 320, 512]))
