"""Convert a released HAT-Net_*.pth to an OpenMMLab checkpoint.

    python tools/convert_official.py HAT-Net_Small.pth hatnet_small.pth

The result loads as ``load_from`` for configs/imagenet_hatnet_*.py and as
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``
for detection and segmentation.
"""
from __future__ import annotations

import argparse

from mmhatnet.engine import CheckpointError
from mmhatnet.models.ckpt_convert import RELEASE_ARCHS, convert_file


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='released checkpoint (untrusted: read '
                        'through the allow-list unpickler)')
    parser.add_argument('dst', help='output OpenMMLab checkpoint')
    parser.add_argument('--arch', choices=RELEASE_ARCHS,
                        help='variant; detected from the shapes if omitted')
    args = parser.parse_args(argv)
    try:
        arch = convert_file(args.src, args.dst, args.arch)
    except CheckpointError as e:
        parser.exit(2, f'error: {e}\n')
    print(f'converted {args.src} (HAT-Net {arch}) -> {args.dst}; '
          f'dropped the unused attn.proj_norm; classifier.1 -> head.fc')


if __name__ == '__main__':
    main()
