"""Check this machine's stack on every device it has; one table, exit
status 1 on any failure (mmhatnet/selfcheck.py).

    python tools/check.py [--train fpn retinanet mask-rcnn]

It trains the configs of the checkout it sits in and reads the GPUs with
tools/gpu_env.py, the set-up's own nvidia-smi reader.
"""
import os.path as osp
import sys

from gpu_env import list_gpus  # tools/, beside this file

from mmhatnet.selfcheck import main

if __name__ == '__main__':
    root = osp.abspath(osp.join(osp.dirname(__file__), '..'))
    sys.exit(main(sys.argv[1:], root, list_gpus))
