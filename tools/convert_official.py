"""Convert a released HAT-Net_*.pth to an OpenMMLab checkpoint.

    python tools/convert_official.py HAT-Net_Small.pth hatnet_small.pth

The result loads as ``load_from`` for configs/imagenet_hatnet_*.py and as
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``
for detection and segmentation. The conversion itself is
``mmhatnet.models.ckpt_convert.convert_official``, a state dict in and out;
this tool reads and writes the files.
"""
from __future__ import annotations

import argparse
import os.path as osp

from mmhatnet import HATNet
from mmhatnet.engine import (CheckpointError, load_untrusted, save_checkpoint,
                             state_dict_of)
from mmhatnet.models.ckpt_convert import RELEASE_ARCHS, convert_official


def convert_file(src: str, dst: str, arch: str | None = None) -> str:
    """Convert the release file ``src`` (read as plain data, weights only,
    by ``load_untrusted``) to the OpenMMLab checkpoint ``dst`` (written
    atomically); returns the arch."""
    state_dict = state_dict_of(load_untrusted(src, weights_only=True),
                               src)
    arch, converted = convert_official(state_dict, HATNet, arch)
    meta = dict(arch=arch, source=osp.basename(src),
                converted_by='mmhatnet tools/convert_official.py')
    save_checkpoint(dict(state_dict=converted, meta=meta), dst)
    return arch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='released checkpoint (untrusted: read '
                        'as plain data, weights only, never run)')
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
