"""Check this machine's stack on every device it has; one table, exit
status 1 on any failure (mmhatnet/selfcheck.py).

    python tools/check.py [--train fpn retinanet mask-rcnn]
    python tools/check.py --report report.md  # + benchmark, dist train/test

It trains the configs of the checkout it sits in and reads the GPUs with
tools/gpu_env.py, the set-up's own nvidia-smi reader.
"""
import os.path as osp
import sys

from mmhatnet.selfcheck import main

TOOLS = osp.dirname(osp.abspath(__file__))

if __name__ == '__main__':
    sys.path.insert(0, TOOLS)  # gpu_env.py is beside this file
    from gpu_env import list_gpus
    sys.exit(main(sys.argv[1:], osp.dirname(TOOLS), list_gpus))
