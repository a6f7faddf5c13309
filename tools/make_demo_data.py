"""Write small, learnable synthetic COCO / ADE20K / ImageNet data sets.

    python tools/make_demo_data.py OUT_DIR [--tasks coco ade imagenet]
        [--num-train N] [--num-val N] [--seed S]

The files land under OUT_DIR/data/... exactly where the configs look for
them when run from OUT_DIR (``python tools/make_demo_data.py .`` for this
checkout); see ``mmhatnet/demo/data.py`` for the layout.
"""
from __future__ import annotations

import argparse

from mmhatnet.demo.data import DEFAULT_SIZES, TASKS, make_demo_data


def _defaults(split: int) -> str:
    """Describe the default image counts of ``split`` (0 train, 1 val)."""
    return ', '.join(f'{task} {sizes[split]}'
                     for task, sizes in DEFAULT_SIZES.items())


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and write the data sets."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='folder the data/ tree goes under')
    parser.add_argument('--tasks', nargs='+', choices=TASKS,
                        default=list(TASKS), help='data sets to write')
    parser.add_argument('--num-train', type=int,
                        help='training images, per class for imagenet '
                        f'(default: {_defaults(0)})')
    parser.add_argument('--num-val', type=int,
                        help='validation images, per class for imagenet '
                        f'(default: {_defaults(1)})')
    parser.add_argument('--seed', type=int, default=0,
                        help='non-negative seed (default 0)')
    args = parser.parse_args(argv)
    try:
        roots = make_demo_data(args.out_dir, args.tasks, args.num_train,
                               args.num_val, args.seed)
    except (ValueError, FileExistsError) as e:
        parser.exit(2, f'error: {e}\n')
    for task, root in roots.items():
        print(f'{task}: {root}')


if __name__ == '__main__':
    main()
