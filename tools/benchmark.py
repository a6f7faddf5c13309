"""Time and memory of HAT-Net against the release's computation, PVTv2-B2
and Swin-T, at one input size.

    python tools/benchmark.py --arch small --shape 512 512
    python tools/benchmark.py --shape 512 512 --release-code HAT_Net.py
    python tools/benchmark.py --config configs/retinanet_hatnet_small.py \
        --shape 800 1344 --device cuda --json bench.json
    python tools/benchmark.py --convffn 64 8 --shape 128 128  # its bands
    python tools/benchmark.py --arch small --shape 512 512 --onnx
    python tools/benchmark.py --shape 800 1344 --device cuda --amp  # fp16

What each number means: the docstring of mmhatnet/analysis/benchmark.py.
"""
from __future__ import annotations

import argparse
import json

import torch

from mmhatnet.analysis.benchmark import (build_hatnet, build_models,
                                         convffn_bands, format_bands,
                                         format_onnx, format_table,
                                         onnx_latency, run_benchmark)
from mmhatnet.analysis.release import release_code_size_error


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--arch', default='small',
                        help='HATNet arch (default: small)')
    source.add_argument('--config', help='mmdet/mmseg config whose '
                        'model.backbone is a HATNet')
    source.add_argument('--convffn', type=int, nargs=2,
                        metavar=('DIM', 'EXPANSION'),
                        help='instead: one ConvFFN on a DIM-channel map of '
                        '--shape, with and without its CPU row bands')
    parser.add_argument('--onnx', nargs='?', const='torchscript',
                        choices=('torchscript', 'dynamo'),
                        help='instead: the no-grad forward in eager '
                        'PyTorch and as an ONNX graph (from this exporter, '
                        'default torchscript) in onnxruntime, on CPU')
    parser.add_argument('--shape', type=int, nargs=2, required=True,
                        metavar=('H', 'W'), help='input height and width')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--amp', nargs='?', const='auto',
                        choices=('auto', 'float16', 'bfloat16'),
                        help='mixed precision: the forward passes under '
                        'autocast in this dtype (default: float16 on cuda, '
                        'bfloat16 on cpu); fp32 without the flag')
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed rounds, each call after an untimed one '
                        '(default: 3)')
    parser.add_argument('--hatnet-only', action='store_true',
                        help='skip PVTv2-B2 and Swin-T')
    parser.add_argument('--release-code', metavar='HAT_Net.py',
                        help="also time the authors' own HAT_Net.py (from "
                        'their release; timm is stood in for if absent) '
                        'with the same weights; it runs only where G1 '
                        "divides every stage's map")
    parser.add_argument('--json', metavar='PATH',
                        help='write one record per model to PATH')
    args = parser.parse_args(argv)
    for name in ('batch', 'repeats'):
        if getattr(args, name) < 1:
            parser.exit(2, f'error: --{name} must be at least 1, got '
                        f'{getattr(args, name)}\n')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.exit(2, 'error: --device cuda, but CUDA is not available\n')

    amp = None
    if args.amp:
        if args.convffn or args.onnx:
            parser.exit(2, 'error: --amp times the whole models; it does not '
                        'go with --convffn or --onnx\n')
        if args.amp == 'auto':
            args.amp = 'float16' if args.device == 'cuda' else 'bfloat16'
        amp = getattr(torch, args.amp)
    if args.convffn:
        if args.device != 'cpu':
            parser.exit(2, 'error: --convffn measures the CPU row bands; '
                        f'--device {args.device} is not allowed\n')
        records = convffn_bands(*args.convffn, args.shape,
                                repeats=args.repeats, log=print)
        print(format_bands(records))
        _write_json(args.json, records)
        return

    net = build_hatnet(args.arch, args.config)
    if args.onnx:
        if args.device != 'cpu':
            parser.exit(2, 'error: --onnx measures onnxruntime on CPU; '
                        f'--device {args.device} is not allowed\n')
        records = onnx_latency(net, args.shape, args.batch, args.repeats,
                               args.onnx, log=print)
        print(format_onnx(records))
        _write_json(args.json, records)
        return
    if args.release_code:
        error = release_code_size_error(net, args.shape)
        if error:
            parser.exit(2, f'error: --release-code: {error}\n')
    try:
        models = build_models(net, not args.hatnet_only, args.release_code)
    except (OSError, ValueError) as e:
        parser.exit(2, f'error: --release-code: {e}\n')
    print(f'input {args.batch}x3x{args.shape[0]}x{args.shape[1]} on '
          f'{args.device} ({torch.get_num_threads()} threads), '
          f'{args.amp or "fp32"}, {args.repeats} timed rounds')
    records = run_benchmark(models, args.shape, args.batch, args.device,
                            args.repeats, log=print, amp=amp)
    print(format_table(records))
    _write_json(args.json, records)


def _write_json(path: str | None, records: list[dict]) -> None:
    if path:
        with open(path, 'w') as f:
            json.dump(records, f, indent=2)
        print(f'wrote {path}')


if __name__ == '__main__':
    main()
