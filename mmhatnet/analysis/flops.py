"""Parameters and FLOPs of a whole mmdet / mmseg / mmpretrain model.

FLOPs are multiply-accumulates (MACs, the OpenMMLab convention), counted on
the aten ops of one eval-mode, batch-1 forward on CPU:

* convolution (transposed too) and linear layers (``mm`` / ``addmm``): their
  MACs, plus one per output element for a bias;
* normalisation (batch / group / layer / instance norm): one per element,
  two with an affine transform;
* pooling (average, max, adaptive, ``mean`` reductions): one per input
  element;
* attention matrix products ``q @ k^T`` and ``attn @ v``: the fused
  ``_scaled_dot_product_*`` kernels and the batched products of two
  activations (``bmm`` / ``baddbmm``) of the explicit path;
* in backward (for :func:`count_flops`): a convolution's input and weight
  gradients at the forward's MACs each, matrix products as they run, and a
  fused attention's backward at 5/2 of its forward (it recomputes the
  scores: five products where the forward has two).

Activations, softmax, elementwise arithmetic (residual sums, scaling,
masking), resampling, padding, data movement and mmcv's compiled ops
(RoIAlign, NMS) are not counted. Ops on the padding of maps that G1 does
not divide count as they run; HATNet's CPU row banding of its ConvFFN,
which recomputes halo rows to save memory, is switched off, so the count
is that of the network on any device.

This is the project's one counter: ``tools/get_flops.py`` reports its
MACs, and the benchmark its FLOPs (:func:`count_flops`, 2 x MACs of layers
and attention, forward and backward).

``flops_g`` counts all four groups. ``flops_paper_g`` leaves out the
attention matrix products: the convention of the HAT-Net paper's ImageNet
FLOPs (a module-hook counter, which sees layers but not functional matrix
products).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from mmengine.registry import DefaultScope
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..config_tools import DEFAULT_SHAPES, build_model, load_config
from ..models.convffn import row_bands

_aten = torch.ops.aten
# norm op -> position of its affine weight argument (the ops this torch has:
# _native_batch_norm_legit_no_training is newer than torch 2.0)
_NORM_WEIGHT_ARG = {
    getattr(_aten, name): arg
    for name, arg in (('native_batch_norm', 1),
                      ('_native_batch_norm_legit', 1),
                      ('_native_batch_norm_legit_no_training', 1),
                      ('native_group_norm', 1), ('native_layer_norm', 2))
    if hasattr(_aten, name)
}
_POOLS = {
    _aten.avg_pool2d, _aten.avg_pool3d,
    _aten.max_pool2d_with_indices, _aten.max_pool3d_with_indices,
    _aten._adaptive_avg_pool2d, _aten._adaptive_avg_pool3d,
    _aten.adaptive_max_pool2d, _aten.adaptive_max_pool3d, _aten.mean,
}


class MacCounter(TorchDispatchMode):
    """Counts MACs per group (``layers``, ``norms``, ``pooling``,
    ``attention``) of the aten ops run while it is active."""

    def __init__(self):
        super().__init__()
        self.macs = dict.fromkeys(
            ('layers', 'norms', 'pooling', 'attention'), 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        group, macs = _op_macs(func.overloadpacket, args, out)
        if group is not None:
            self.macs[group] += macs
        return out


def _op_macs(op, args, out) -> tuple[str | None, int]:
    """The group and MACs of one aten op, or (None, 0)."""
    if op is _aten.convolution:
        x, weight, bias, transposed = args[0], args[1], args[2], args[6]
        # weight: (Cout, Cin/g, *k), or (Cin, Cout/g, *k) when transposed
        macs = (x if transposed else out).numel() * weight[0].numel()
        return 'layers', macs + (out.numel() if bias is not None else 0)
    if op is _aten.convolution_backward:
        grad, x, weight, transposed, mask = (args[0], args[1], args[2],
                                             args[7], args[10])
        macs = (x if transposed else grad).numel() * weight[0].numel()
        return 'layers', macs * (bool(mask[0]) + bool(mask[1]))
    if op is _aten.mm:
        a, b = args
        return 'layers', a.numel() * b.shape[-1]
    if op is _aten.addmm:
        _, a, b = args[:3]
        return 'layers', a.numel() * b.shape[-1] + out.numel()
    if op in (_aten.bmm, _aten.baddbmm):
        a, b = args[:2] if op is _aten.bmm else args[1:3]
        return 'attention', a.numel() * b.shape[-1]
    name = op.__name__
    if name.startswith('_scaled_dot_product_'):
        backward = name.endswith('_backward')
        q, k, v = args[1:4] if backward else args[:3]
        macs = q.numel() // q.shape[-1] * k.shape[-2] * (q.shape[-1] +
                                                        v.shape[-1])
        return 'attention', macs * 5 // 2 if backward else macs
    if op in _NORM_WEIGHT_ARG:
        affine = args[_NORM_WEIGHT_ARG[op]] is not None
        return 'norms', args[0].numel() * (2 if affine else 1)
    if op in _POOLS:
        return 'pooling', args[0].numel()
    return None, 0


def count_macs(fn: Callable[[], object]) -> dict[str, int]:
    """MACs per group (see ``MacCounter``) of the ops that ``fn()`` runs
    without grad, with HATNet's row banding off."""
    counter = MacCounter()
    with torch.no_grad(), counter, row_bands(None):
        fn()
    return counter.macs


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (2 x MACs) of the layers and attention products that ``fn()``
    runs as it runs them (backward included, HATNet's row bands as set)."""
    counter = MacCounter()
    with counter:
        fn()
    return 2 * (counter.macs['layers'] + counter.macs['attention'])


def _dummy_forward(model: nn.Module, scope: str,
                   shape: tuple[int, int], in_channels: int) -> None:
    """Run ``model`` in 'tensor' mode on a seeded (1, C, H, W) input."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(1, in_channels, *shape, generator=generator)
    data_samples = None
    if scope == 'mmdet':
        # two-stage detectors read image shapes from their data samples
        from mmdet.structures import DetDataSample
        meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                    batch_input_shape=shape, scale_factor=(1.0, 1.0))
        data_samples = [DetDataSample(metainfo=meta)]
    model(inputs, data_samples, mode='tensor')


def get_complexity(config: str,
                   shape: Sequence[int] | None = None,
                   cfg_options: dict | None = None) -> dict:
    """Parameters and FLOPs of the model of ``config``.

    Args:
        config: path of an mmdet, mmseg or mmpretrain config.
        shape: input (H, W); default ``DEFAULT_SHAPES[default_scope]``.
        cfg_options: overrides merged into the config.

    Returns:
        ``params_m`` (millions), ``flops_g`` and ``flops_paper_g`` (GMACs,
        with and without the attention matrix products), ``shape`` [H, W]
        and ``config``.
    """
    cfg = load_config(config, cfg_options)
    model = build_model(cfg)
    scope = cfg.default_scope
    shape = tuple(shape or DEFAULT_SHAPES[scope])
    in_channels = cfg.model.backbone.get('in_channels', 3)
    with DefaultScope.overwrite_default_scope(scope):
        macs = count_macs(
            lambda: _dummy_forward(model, scope, shape, in_channels))
    total = sum(macs.values())
    return dict(
        config=config,
        shape=list(shape),
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        flops_g=total / 1e9,
        flops_paper_g=(total - macs['attention']) / 1e9)
