"""Parameters and FLOPs (GMACs) of the whole model of a config.

    python tools/get_flops.py configs/retinanet_hatnet_small.py
    python tools/get_flops.py CONFIG --shape 512 512 --json out.json

"full" counts every matrix product, the attention's q @ k^T and attn @ v
included; "paper" leaves those out, as the HAT-Net paper does
(mmhatnet/analysis/flops.py lists the ops counted). Default input sizes
(mmhatnet/config_tools.py): 224x224 (mmpretrain), 512x512 (mmseg),
800x1280 (mmdet).
"""
from __future__ import annotations

import argparse
import json

from mmengine.config import DictAction

from mmhatnet.analysis.flops import get_complexity


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='mmdet, mmseg or mmpretrain config')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width')
    parser.add_argument('--json', metavar='PATH',
                        help='also write the numbers to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides, key=value')
    args = parser.parse_args(argv)
    result = get_complexity(args.config, args.shape, args.cfg_options)
    height, width = result['shape']
    print(f'{"config":<14}{result["config"]}\n'
          f'{"input":<14}{height}x{width}\n'
          f'{"params":<14}{result["params_m"]:.2f} M\n'
          f'{"FLOPs full":<14}{result["flops_g"]:.2f} G\n'
          f'{"FLOPs paper":<14}{result["flops_paper_g"]:.2f} G '
          f'(no attention matrix products)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
