"""Evaluate a checkpoint with an mmdet / mmseg / mmpretrain config.

    python tools/test.py configs/fpn_hatnet_small.py work_dirs/x/iter_80000.pth
        [--out OUT] [--show-dir DIR] [--tta]
"""
from mmhatnet.apis import test

if __name__ == '__main__':
    test()
