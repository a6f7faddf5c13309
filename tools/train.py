"""Train an mmdet / mmseg / mmpretrain config.

    python tools/train.py configs/retinanet_hatnet_small.py [--resume] [--amp]
"""
from mmhatnet.apis import train

if __name__ == '__main__':
    train()
