"""ConvFFN, HAT-Net's inverted-residual feed-forward:
GN -> 1x1 expand (C -> E*C) -> SiLU -> KxK depthwise -> SiLU -> 1x1 project
(E*C -> C) -> GN.

Two implementations behind one switch, ``lean_ffn`` (HATNet's argument of
the same name), each the other's reference (as ``fused_attention`` is for
attention):

- plain (``lean_ffn=False``): the layers as autograd ops, which keep four
  E*C-channel maps for backward;
- memory-lean (default): a custom autograd Function that keeps two, the
  inputs of the two SiLUs, and recomputes the SiLUs in backward
  (element-wise, so bit-identical). On CPU it also runs everything after the
  expansion over bands of rows with a K // 2 halo, so that no other
  E*C-channel map is ever whole (without grad the expansion is banded too).

Why bands: on CPU, glibc serves buffers over 32 MB with fresh pages, and
faulting them in costs as much as a pass of SiLU over them. The bands are
about 8 MB (:data:`BAND_BYTES`), so their buffers are reused;
:func:`row_bands` changes that size for a block of code (the tests cut maps
into 2-row bands; the benchmark and the FLOP counter switch bands off). The
setting is a :class:`contextvars.ContextVar`: it holds in the current
thread (or asyncio task) only, and each thread starts from the default.
Off CPU there is one band.

Outputs and gradients of the two implementations agree up to the order of
float sums (weight gradients add up band by band). Under graph export
(:func:`~mmhatnet.models.export_mode.is_exporting`) ConvFFN runs the plain
ops, which equal one band of the memory-lean path: a graph must not depend
on the number of bands, and the TorchScript exporter cannot record the
autograd Function.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .export_mode import is_exporting

#: The default band size on CPU: bytes of E*C-channel map per band, and the
#: fewest rows a band has (its halo rows are recomputed).
BAND_BYTES = 8 << 20
BAND_MIN_ROWS = 8


class _Bands(NamedTuple):
    max_bytes: int | None  # None: one band
    min_rows: int


_BANDS: ContextVar[_Bands] = ContextVar(
    'row_bands', default=_Bands(BAND_BYTES, BAND_MIN_ROWS))


@contextlib.contextmanager
def row_bands(max_bytes: int | None = BAND_BYTES,
              min_rows: int = BAND_MIN_ROWS) -> Iterator[None]:
    """Within the ``with`` block, memory-lean ConvFFNs on CPU cut their maps
    into bands of at most ``max_bytes`` of E*C-channel map and at least
    ``min_rows`` rows; ``max_bytes=None`` runs each map as one band.

    The setting holds in the current context (thread or asyncio task) and
    is restored on exit.
    """
    if max_bytes is not None and max_bytes < 1 or min_rows < 1:
        raise ValueError(f'row_bands needs max_bytes >= 1 or None and '
                         f'min_rows >= 1, got {max_bytes}, {min_rows}')
    token = _BANDS.set(_Bands(max_bytes, min_rows))
    try:
        yield
    finally:
        _BANDS.reset(token)


class ConvFFN(nn.Module):
    """The inverted-residual feed-forward of a HAT-Net block.

    Args:
        dim: channels C.
        expansion: E; the hidden maps have E*C channels.
        kernel_size: K of the depthwise convolution (odd).
        lean_ffn: the memory-lean autograd Function with CPU row bands
            (True) or the plain autograd ops (False); see the module
            docstring.

    The layers keep the release's parameter names (``conv1.0``, ``conv1.1``,
    ``conv2.0``, ``conv3.0``, ``conv3.1``) so that its weights load as they
    are; read them by role as ``norm``, ``expand``, ``depthwise``,
    ``project`` and ``out_norm``.
    """

    def __init__(self, dim: int, expansion: int, kernel_size: int,
                 lean_ffn: bool = True):
        super().__init__()
        hidden = dim * expansion
        self.lean_ffn = lean_ffn
        self.conv1 = nn.Sequential(
            nn.GroupNorm(1, dim, eps=1e-6),
            nn.Conv2d(dim, hidden, 1, bias=False))
        self.conv2 = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2,
                      groups=hidden, bias=False))
        self.conv3 = nn.Sequential(
            nn.Conv2d(hidden, dim, 1, bias=False),
            nn.GroupNorm(1, dim, eps=1e-6))

    @property
    def norm(self) -> nn.GroupNorm:
        return self.conv1[0]

    @property
    def expand(self) -> nn.Conv2d:
        return self.conv1[1]

    @property
    def depthwise(self) -> nn.Conv2d:
        return self.conv2[0]

    @property
    def project(self) -> nn.Conv2d:
        return self.conv3[0]

    @property
    def out_norm(self) -> nn.GroupNorm:
        return self.conv3[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.norm(x)
        if not self.lean_ffn or is_exporting():
            h = F.silu(self.expand(normed))
            return self.out_norm(self.project(F.silu(self.depthwise(h))))
        weights = (self.expand.weight, self.depthwise.weight,
                   self.project.weight)
        if torch.is_grad_enabled() and (normed.requires_grad or any(
                w.requires_grad for w in weights)):
            dtype = _autocast_dtype(normed)
            out = _InvertedResidual.apply(normed.to(dtype),
                                          *(w.to(dtype) for w in weights))
        else:
            out = _banded_inference(normed, *weights)
        return self.out_norm(out)


def _row_bands(x: torch.Tensor, channels: int, halo: int):
    """Bands of rows of ``x`` (seen with ``channels`` channels): tuples
    ``(r0, r1, a, b)``, the band's rows ``[r0, r1)`` and the rows
    ``[a, b)`` with the halo."""
    height, width = x.shape[-2:]
    rows = height
    bands = _BANDS.get()
    if x.device.type == 'cpu' and bands.max_bytes is not None:
        row_bytes = x.shape[0] * channels * width * x.element_size()
        rows = max(bands.min_rows, bands.max_bytes // row_bytes)
    for r0 in range(0, height, rows):
        r1 = min(r0 + rows, height)
        yield r0, r1, max(r0 - halo, 0), min(r1 + halo, height)


# Feature detection once, at import: dynamo (torch < 2.1) cannot trace
# hasattr on the torch module.
if hasattr(torch, 'get_autocast_dtype'):  # torch >= 2.4: any device

    def _autocast_dtype(x: torch.Tensor) -> torch.dtype:
        """The dtype autocast would run a convolution of ``x`` in."""
        device = x.device.type
        if x.dtype != torch.float64 and torch.amp.is_autocast_available(
                device) and torch.is_autocast_enabled(device):
            return torch.get_autocast_dtype(device)
        return x.dtype
else:  # before, autocast had a cpu and a cuda API only

    def _autocast_dtype(x: torch.Tensor) -> torch.dtype:
        """The dtype autocast would run a convolution of ``x`` in."""
        if x.dtype == torch.float64:
            return x.dtype
        if x.device.type == 'cpu' and torch.is_autocast_cpu_enabled():
            return torch.get_autocast_cpu_dtype()
        if x.device.type == 'cuda' and torch.is_autocast_enabled():
            return torch.get_autocast_gpu_dtype()
        return x.dtype


if hasattr(getattr(torch, 'compiler', None), 'is_compiling'):
    _is_compiling = torch.compiler.is_compiling
else:  # before torch 2.3
    from torch._dynamo import is_compiling as _is_compiling


def _silu_grad_(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``grad * silu'(x)``, in place in eager mode (dynamo traces no
    ``out=`` into channels-last tensors; inductor plans buffers itself)."""
    if _is_compiling():
        return torch.ops.aten.silu_backward(grad, x)
    return torch.ops.aten.silu_backward.grad_input(grad, x, grad_input=grad)


def _depthwise(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, weight, padding=weight.shape[-1] // 2,
                    groups=weight.shape[0])


def _conv_grads(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                padding: int | tuple[int, int], need_x: bool,
                need_weight: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and weight gradients of a stride-1 convolution without bias;
    the input gradient reads only the shape of ``x``."""
    groups = x.shape[1] // weight.shape[1]
    padding = padding if isinstance(padding, tuple) else (padding, padding)
    return torch.ops.aten.convolution_backward(
        grad, x, weight, None, (1, 1), padding, (1, 1), False, (0, 0),
        groups, (need_x, need_weight, False))[:2]


def _sum(tensors) -> torch.Tensor | None:
    total = None
    for t in tensors:
        total = t if total is None else total + t
    return total


def _banded_inference(normed: torch.Tensor, expand: torch.Tensor,
                      depthwise: torch.Tensor,
                      project: torch.Tensor) -> torch.Tensor:
    """ConvFFN from the normalised input to the projection, band by band
    (the halo rows' expansion is computed twice)."""
    outs = []
    for r0, r1, a, b in _row_bands(normed, expand.shape[0],
                                   depthwise.shape[-1] // 2):
        h = F.silu(F.conv2d(normed[:, :, a:b], expand), inplace=True)
        d = _depthwise(h, depthwise)[:, :, r0 - a:r1 - a]
        outs.append(F.conv2d(F.silu(d, inplace=True), project))
    return torch.cat(outs, dim=2)


class _InvertedResidual(torch.autograd.Function):
    """``project(silu(depthwise(silu(expand(normed)))))`` (the release's
    name for ConvFFN), keeping ``h = expand(normed)`` and ``d =
    depthwise(silu(h))`` for backward; see the module docstring."""

    @staticmethod
    def forward(ctx, normed: torch.Tensor, expand: torch.Tensor,
                depthwise: torch.Tensor,
                project: torch.Tensor) -> torch.Tensor:
        h = F.conv2d(normed, expand)
        d = torch.empty_like(h)
        outs = []
        for r0, r1, a, b in _row_bands(h, h.shape[1],
                                       depthwise.shape[-1] // 2):
            band = _depthwise(F.silu(h[:, :, a:b]),
                              depthwise)[:, :, r0 - a:r1 - a]
            d[:, :, r0:r1] = band
            outs.append(F.conv2d(F.silu(band, inplace=True), project))
        ctx.save_for_backward(normed, h, d, expand, depthwise, project)
        return torch.cat(outs, dim=2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        normed, h, d, expand, depthwise, project = ctx.saved_tensors
        need_normed, need_expand, need_depthwise, need_project = \
            ctx.needs_input_grad
        need_h = need_normed or need_expand
        need_d = need_h or need_depthwise
        p = depthwise.shape[-1] // 2
        grad_normed = torch.empty_like(normed) if need_normed else None
        grads = {'expand': [], 'depthwise': [], 'project': []}
        for r0, r1, a, b in _row_bands(h, h.shape[1], p):
            if need_project:
                grads['project'].append(_conv_grads(
                    grad[:, :, r0:r1], F.silu(d[:, :, r0:r1]), project, 0,
                    False, True)[1])
            if not need_d:
                continue
            # w.r.t. d on the band and its halo: (N, E*C, b - a, W)
            g = _conv_grads(grad[:, :, a:b], d[:, :, a:b], project, 0, True,
                            False)[0]
            g = _silu_grad_(g, d[:, :, a:b])
            if need_depthwise:
                # from silu(h) on the band and its halo, zero-padded only
                # where the band meets the map's edge
                top, bottom = p - (r0 - a), p - (b - r1)
                s = F.silu(h[:, :, a:b])
                if top != bottom:
                    s, top = F.pad(s, (0, 0, top, bottom)), 0
                grads['depthwise'].append(_conv_grads(
                    g[:, :, r0 - a:r1 - a], s, depthwise, (top, p), False,
                    True)[1])
            if not need_h:
                continue
            g = _conv_grads(g, h[:, :, a:b], depthwise, p, True,
                            False)[0][:, :, r0 - a:r1 - a]
            g = _silu_grad_(g, h[:, :, r0:r1])
            g, grad_expand = _conv_grads(g, normed[:, :, r0:r1], expand, 0,
                                         need_normed, need_expand)
            if need_normed:
                grad_normed[:, :, r0:r1] = g
            if need_expand:
                grads['expand'].append(grad_expand)
        return (grad_normed, _sum(grads['expand']),
                _sum(grads['depthwise']), _sum(grads['project']))
