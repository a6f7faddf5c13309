# G1/G2 ablation (paper Table 8): Mask R-CNN + HAT-Net-Small with
# G1 = (8, 8, 8) and G2 = (16, 8, 4).
_base_ = './mask-rcnn_hatnet_small.py'

model = dict(backbone=dict(grid_sizes=(8, 8, 8), pool_ratios=(16, 8, 4)))
