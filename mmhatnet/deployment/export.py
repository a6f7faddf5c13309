"""The logic behind ``tools/export_onnx.py`` (not runtime): a config's model
to ONNX, then checked in onnxruntime against eager PyTorch.

What is exported is the model's tensor outputs, as mmdet's and mmseg's
``mode='tensor'`` gives them, from the preprocessed input (normalised, RGB,
padded as the data preprocessor does; mmdeploy's graphs take the same):

* mmseg (Semantic FPN): the decode head's logits at stride 4;
* mmdet single-stage (RetinaNet): the head's ``cls_score`` and ``bbox_pred``
  maps per level;
* mmdet two-stage (Mask R-CNN): the neck's maps and the RPN head's
  ``cls_score`` and ``bbox_pred`` maps. Its ``mode='tensor'`` runs the RPN's
  ``predict`` (score top-k, box decoding and NMS, with a data-dependent
  number of proposals) and RoIAlign in the middle of the graph, which
  neither exporter takes from mmdet as it is (mmdeploy rewrites those
  functions); proposals and the RoI heads stay outside the graph;
* ``backbone_only``: HATNet's maps at strides 4-32.

One upstream module does not trace for any size: mmseg's ``Upsample`` (in
the Semantic FPN head) computes its output size with ``int()``, which both
exporters bake into the graph. While exporting, :func:`exportable` puts
``F.interpolate`` with the same integer scale factor in its place (the same
sizes and the same sampling); the check runs the original modules.

Each output is compared with eager PyTorch on fresh seeded inputs; the error
of an output is ``max |onnx - eager| / max |eager|`` (:func:`output_errors`,
which the benchmark's ONNX timing reports too).
"""
from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from torch import nn

from ..config_tools import DEFAULT_SHAPES, build_model, load_config
from ..engine import CheckpointError, load_untrusted, state_dict_of

EXPORTERS = ('dynamo', 'torchscript')
#: the largest relative error (see the module docstring) that passes
TOLERANCE = 1e-4


class TensorOutputs(nn.Module):
    """A model's tensor outputs from a preprocessed (N, C, H, W) batch, as
    a flat tuple named by :attr:`output_names` (see the module docstring).

    Args:
        model: an mmdet or mmseg model (or any model with a ``backbone``
            when ``backbone_only``).
        scope: 'mmdet' or 'mmseg'.
        backbone_only: export the backbone alone.
    """

    def __init__(self, model: nn.Module, scope: str,
                 backbone_only: bool = False):
        super().__init__()
        # eval here, not only on ``model``: exporters restore the wrapper's
        # own mode afterwards, and a new module is in training mode
        self.eval()
        if scope not in ('mmdet', 'mmseg') and not backbone_only:
            raise ValueError(f'whole-model export covers mmdet and mmseg '
                             f'configs, got scope {scope!r}; use '
                             f'backbone_only for others')
        self.model = model.eval()
        self.scope = scope
        if backbone_only:
            self.part = 'backbone'
        elif scope == 'mmseg':
            self.part = 'segmentor'
        elif getattr(model, 'with_rpn', False):
            self.part = 'rpn'
        else:
            self.part = 'detector'

    @property
    def output_names(self) -> list[str]:
        """One name per output; the number of levels is read from the
        model, so the names match :meth:`forward`."""
        if self.part == 'backbone':
            return [f'feat{i}' for i in self.model.backbone.out_indices]
        if self.part == 'segmentor':
            return ['seg_logits']
        head = self.model.rpn_head if self.part == 'rpn' else \
            self.model.bbox_head
        levels = range(len(head.prior_generator.strides))
        names = [f'{kind}{i}' for kind in ('cls_score', 'bbox_pred')
                 for i in levels]
        if self.part == 'rpn':
            names = [f'neck{i}' for i in levels] + names
        return names

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.part == 'backbone':
            return tuple(self.model.backbone(x))
        if self.part == 'segmentor':
            return self.model(x, None, mode='tensor'),
        if self.part == 'rpn':
            feats = self.model.extract_feat(x)
            return (*feats, *_flatten(self.model.rpn_head(feats)))
        return tuple(_flatten(self.model(x, None, mode='tensor')))


def _flatten(outputs) -> list[torch.Tensor]:
    """Nested tuples and lists of tensors, depth first."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for item in outputs for t in _flatten(item)]


class ScaleUpsample(nn.Module):
    """``F.interpolate`` by an integer ``scale_factor``: mmseg's
    ``Upsample(scale_factor=s)`` for a traced graph. mmseg's asks for the
    size ``int(s * H)``; the output size is the same, and for an integer
    factor so is the sampling (source coordinates scale by 1 / s either
    way)."""

    def __init__(self, scale_factor: float, mode: str,
                 align_corners: bool | None):
        super().__init__()
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale_factor,
                             mode=self.mode, align_corners=self.align_corners)


@contextlib.contextmanager
def exportable(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``model``'s mmseg ``Upsample`` modules with an
    integer scale factor are :class:`ScaleUpsample`; restored on exit."""
    try:
        from mmseg.models.utils import Upsample
    except ImportError:  # mmseg not installed: nothing to replace
        Upsample = ()
    swapped = []
    for parent in model.modules():
        for name, child in parent.named_children():
            factor = getattr(child, 'scale_factor', None)
            if isinstance(child, Upsample) and not child.size and \
                    isinstance(factor, float) and factor.is_integer():
                setattr(parent, name, ScaleUpsample(
                    factor, child.mode, child.align_corners))
                swapped.append((parent, name, child))
    try:
        yield model
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def load_checkpoint(model: nn.Module, path: str) -> None:
    """Load a checkpoint of the whole model (as tools/train.py writes
    them) as plain data (``load_untrusted``); every key must match."""
    state = state_dict_of(load_untrusted(path), path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f'{path} does not fit the model of the config: '
            f'{len(missing)} missing keys {missing[:5]}, '
            f'{len(unexpected)} unexpected keys {unexpected[:5]}')


def export_module(module: TensorOutputs, path: str,
                  shape: Sequence[int], in_channels: int = 3,
                  dynamic: bool = False, exporter: str = 'dynamo') -> None:
    """Write ``module`` to the ONNX file ``path``, traced on a batch of one
    (C, H, W) image; ``dynamic`` makes batch, height and width free."""
    if exporter not in EXPORTERS:
        raise ValueError(f'exporter must be one of {EXPORTERS}, '
                         f'got {exporter!r}')
    example = torch.zeros(1, in_channels, *shape)
    names = module.output_names
    kwargs = {}
    if exporter == 'dynamo':
        if dynamic:
            dim = torch.export.Dim.DYNAMIC
            kwargs['dynamic_shapes'] = {'x': {0: dim, 2: dim, 3: dim}}
    else:
        kwargs['opset_version'] = 17
        if dynamic:
            kwargs['dynamic_axes'] = {'input': {0: 'batch', 2: 'height',
                                                3: 'width'}}
    with torch.no_grad(), exportable(module):
        torch.onnx.export(module, (example, ), path, input_names=['input'],
                          output_names=names,
                          dynamo=exporter == 'dynamo', **kwargs)


def output_errors(got: Sequence[np.ndarray],
                  expected: Sequence[np.ndarray]) -> tuple[float, float]:
    """The worst output's ``max |got - expected|`` and ``max |got -
    expected| / max |expected|``, the latter over at least 1e-12 (an
    all-zero output is measured absolutely); both infinite when the
    outputs' shapes differ."""
    if [g.shape for g in got] != [e.shape for e in expected]:
        return float('inf'), float('inf')
    errors = [float(np.abs(g - e).max()) for g, e in zip(got, expected)]
    return max(errors), max(err / max(float(np.abs(e).max()), 1e-12)
                            for err, e in zip(errors, expected))


def verify(module: TensorOutputs, path: str,
           shapes: Sequence[Sequence[int]], in_channels: int = 3,
           batch: int = 1, seed: int = 0) -> list[dict]:
    """Run the ONNX file in onnxruntime (CPU) and ``module`` in eager mode
    on the same seeded inputs, one per (H, W) in ``shapes``.

    Returns, per shape: ``shape``, ``max_abs`` and ``max_rel``
    (:func:`output_errors`) and ``ok`` (max_rel <= :data:`TOLERANCE`, so
    the outputs' shapes agree).
    """
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    input_name = session.get_inputs()[0].name
    generator = torch.Generator().manual_seed(seed)
    results = []
    for shape in shapes:
        x = torch.randn(batch, in_channels, *shape, generator=generator)
        with torch.no_grad():
            expected = [t.numpy() for t in module(x)]
        got = session.run(None, {input_name: x.numpy()})
        max_abs, max_rel = output_errors(got, expected)
        results.append(dict(shape=list(shape), max_abs=max_abs,
                            max_rel=max_rel, ok=max_rel <= TOLERANCE))
    return results


def other_shape(shape: Sequence[int]) -> tuple[int, int]:
    """A size to check a dynamic graph at: about 3/4 of ``shape``, and odd,
    so that neither 32 nor G1 divides it."""
    return tuple(s - s // 4 + 1 - (s - s // 4) % 2 for s in shape)


def export_config(config: str, out: str, checkpoint: str | None = None,
                  shape: Sequence[int] | None = None, dynamic: bool = False,
                  backbone_only: bool = False, exporter: str = 'dynamo',
                  cfg_options: dict | None = None,
                  check_shapes: Sequence[Sequence[int]] = ()) -> dict:
    """Export the model of ``config`` to ``out`` and verify it.

    Args:
        config: an mmdet or mmseg config (any config with
            ``backbone_only``).
        out: the ONNX file to write.
        checkpoint: weights of the whole model (read by ``load_untrusted``);
            None: the models' own initialisation.
        shape: (H, W) to export at; default the task's
            (``mmhatnet.config_tools.DEFAULT_SHAPES``).
        dynamic: free batch, height and width; also verified at
            :func:`other_shape` with a batch of two.
        backbone_only: the backbone's maps only.
        exporter: 'dynamo' (``torch.export``) or 'torchscript' (the exporter
            mmdeploy uses).
        cfg_options: overrides merged into the config.
        check_shapes: more (H, W) to verify a dynamic graph at.

    Returns:
        ``out``, ``outputs`` (names), ``checks`` (see :func:`verify`) and
        ``ok`` (every check passed).
    """
    if exporter not in EXPORTERS:
        raise ValueError(f'exporter must be one of {EXPORTERS}, '
                         f'got {exporter!r}')
    cfg = load_config(config, cfg_options)
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg') and not backbone_only:
        raise ValueError(f'{config}: whole-model export covers mmdet and '
                         f'mmseg configs, got default_scope {scope!r}; use '
                         f'--backbone-only')
    shape = tuple(shape or DEFAULT_SHAPES[scope])
    for size in (shape, *check_shapes):
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f'shape must be two positive ints (H, W), '
                             f'got {tuple(size)!r}')
    if check_shapes and not dynamic:
        raise ValueError('check_shapes needs dynamic=True: a static graph '
                         'takes only the export size')
    model = build_model(cfg)
    if checkpoint is None:
        model.init_weights()
    else:
        load_checkpoint(model, checkpoint)
    in_channels = cfg.model.backbone.get('in_channels', 3)
    module = TensorOutputs(model, scope, backbone_only)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with DefaultScope.overwrite_default_scope(scope):
        export_module(module, out, shape, in_channels, dynamic, exporter)
        checks = verify(module, out, [shape], in_channels)
        if dynamic:
            checks += verify(module, out,
                             [other_shape(shape), *check_shapes],
                             in_channels, batch=2, seed=1)
    return dict(out=out, outputs=module.output_names, checks=checks,
                ok=all(c['ok'] for c in checks))


def main(argv: list[str] | None = None) -> dict:
    """``tools/export_onnx.py``: export, verify, print; exit status 1 if
    the verification fails."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Export the model of an mmdet / mmseg config to ONNX '
        'and verify it in onnxruntime against eager PyTorch.')
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='weights of the whole model')
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size to export at (default: 512 512 '
                        'for mmseg, 800 1280 for mmdet)')
    parser.add_argument('--dynamic', action='store_true',
                        help='free batch, height and width')
    parser.add_argument('--backbone-only', action='store_true')
    parser.add_argument('--exporter', choices=EXPORTERS, default='dynamo')
    parser.add_argument('--check-shape', type=int, nargs=2, action='append',
                        default=[], metavar=('H', 'W'),
                        help='with --dynamic: also verify at this size '
                        '(repeatable)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides, key=value')
    args = parser.parse_args(argv)
    result = export_config(args.config, args.out, args.checkpoint,
                           args.shape, args.dynamic, args.backbone_only,
                           args.exporter, args.cfg_options,
                           args.check_shape)
    print(f'wrote {result["out"]} ({args.exporter} exporter, '
          f'{"dynamic" if args.dynamic else "static"} shapes), outputs: '
          f'{", ".join(result["outputs"])}')
    for check in result['checks']:
        h, w = check['shape']
        print(f'onnxruntime vs eager at {h}x{w}: max abs error '
              f'{check["max_abs"]:.3g}, max relative error '
              f'{check["max_rel"]:.3g} '
              f'({"PASS" if check["ok"] else "FAIL"}, tolerance '
              f'{TOLERANCE:g})')
    print('verdict:', 'PASS' if result['ok'] else 'FAIL')
    if not result['ok']:
        raise SystemExit(1)
    return result
