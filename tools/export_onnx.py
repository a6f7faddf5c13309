"""Export a config's model to ONNX and verify it in onnxruntime.

    python tools/export_onnx.py configs/retinanet_hatnet_tiny.py \
        --out work_dirs/retinanet.onnx --shape 800 1344 --dynamic
    python tools/export_onnx.py CONFIG --checkpoint CKPT --out FILE \
        [--shape H W] [--dynamic [--check-shape H W]] [--backbone-only]
        [--exporter torchscript]

Prints the outputs, the maximum error against eager PyTorch at the export
size (and, with --dynamic, at another size, neither divisible by 32) and the
verdict; exits with status 1 if it fails (mmhatnet/deployment/export.py).
See docs/user_guides/deployment.md.
"""
from __future__ import annotations

from mmhatnet.deployment.export import main

if __name__ == '__main__':
    main()
