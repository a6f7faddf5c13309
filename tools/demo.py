"""The README's main job: HAT-Net-Tiny detection and segmentation models
trained from scratch on generated data, evaluated on held-out images, in
pictures.

    python tools/demo.py [--work-dir work_dirs/demo]
        [--task semantic_fpn mask_rcnn imagenet]

The default runs Semantic FPN-Tiny (ADE20K layout) and Mask R-CNN-Tiny
(COCO layout) on the configs of the checkout this file is in;
``--task imagenet`` runs the 4-class classifier. The schedule is
``mmhatnet/demo/schedule.py``; the logic ``mmhatnet/demo/``.
"""
from __future__ import annotations

import argparse
import os.path as osp
import warnings

# mmengine imports pkg_resources (pinned setuptools, docs/get_started.md):
# keep the terminal to the demo's own lines
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

from mmhatnet.demo.job import run_demo  # noqa: E402
from mmhatnet.demo.schedule import DEFAULT_TASKS, SCHEDULES  # noqa: E402

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))  # this checkout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir',
                        default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--task', nargs='+', choices=list(SCHEDULES),
                        default=list(DEFAULT_TASKS), help='what to run')
    args = parser.parse_args(argv)
    run_demo(ROOT, args.work_dir,
             {name: SCHEDULES[name] for name in args.task})


if __name__ == '__main__':
    main()
