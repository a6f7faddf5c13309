"""The computation of the authors' release, written once.

:func:`release_forward` computes HAT-Net as the release's ``HAT_Net.py``
does, op for op and in its order: ``nn.GroupNorm`` / ``nn.Conv2d`` as
separate ops, in-place SiLUs, the explicit attention ``(q * scale) @ k^T``,
softmax, ``attn @ v`` with the release's reshapes and permutes, drop path
as a per-sample mask. It reads no mmhatnet module: it takes a mapping from
the release's parameter names (``blocks.2.5.attn.kv.weight``,
``classifier.1.bias``) to tensors, so it runs on a release state dict (the
tests compare mmhatnet with it) and on the parameters of a :class:`HATNet`,
whose names are the release's (the benchmark's baseline, training
included).

Where the release cannot run (a map that G1 does not divide: it reshapes
by ``H // G1`` and crashes), it pads and masks like mmhatnet, and it pools
with ``ceil_mode`` (the release floors; the two agree where G2 divides the
map), so it gives mmhatnet's outputs for every input size.

:class:`ReleaseCode` runs the authors' own ``HAT_Net.py`` instead, for a
user who has the file (``tools/benchmark.py --release-code``); the project
does not ship it.
"""
from __future__ import annotations

import importlib.util
import re
import sys
import types
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..models import HATNet
from ..models.attention import grid_key_mask

_BLOCK = re.compile(r'blocks\.(\d+)\.(\d+)\.attn\.qkv\.weight$')


def _gn(x, p, name):
    return F.group_norm(x, 1, p[name + '.weight'], p[name + '.bias'], 1e-6)


def _conv(x, p, name, **kwargs):
    return F.conv2d(x, p[name + '.weight'], p.get(name + '.bias'), **kwargs)


def _attend(q, k, v, scale, key_mask=None):
    attn = (q * scale) @ k.transpose(-2, -1)
    if key_mask is not None:
        attn = attn.masked_fill(~key_mask, float('-inf'))
    return attn.softmax(dim=-1) @ v


def _attention(x, p, name, head_dim, g, pool):
    B, C, H, W = x.shape
    nh = C // head_dim
    scale = head_dim**-0.5
    qkv = _conv(_gn(x, p, name + '.norm'), p, name + '.qkv')
    if g == 1:
        # (B, 3, nh, hd, HW) -> (3, B, nh, HW, hd)
        q, k, v = qkv.reshape(B, 3, nh, head_dim, -1).permute(1, 0, 2, 4, 3)
        out = _attend(q, k, v, scale).transpose(-2, -1).reshape(B, C, H, W)
        return _conv(out, p, name + '.proj')

    mask = grid_key_mask(H, W, g, x.device)  # (gh * gw, 1, G1 * G1)
    if mask is not None:
        qkv = F.pad(qkv, (0, -W % g, 0, -H % g))
    Hp, Wp = qkv.shape[-2:]
    gh, gw = Hp // g, Wp // g
    # (B, 3, nh, hd, gh, G1, gw, G1) -> (3, B * nh * gh * gw, G1 * G1, hd)
    qkv = qkv.reshape(B, 3, nh, head_dim, gh, g, gw, g).permute(
        1, 0, 2, 4, 6, 5, 7, 3).reshape(3, -1, g * g, head_dim)
    q, k, v = qkv[0], qkv[1], qkv[2]
    if mask is not None:  # keys of every (batch, head) share one mask
        q, k, v = (t.reshape(B * nh, gh * gw, g * g, head_dim)
                   for t in (q, k, v))
    local = _attend(q, k, v, scale, mask)
    # (B, nh, gh, gw, G1, G1, hd) -> (B, C, Hp, Wp)
    local = local.reshape(B, nh, gh, gw, g, g, head_dim).permute(
        0, 1, 6, 2, 4, 3, 5).reshape(B, C, Hp, Wp)
    if mask is not None:
        local = local[:, :, :H, :W]
    local = _gn(x + local, p, name + '.grid_norm')

    # (B, C, H, W) -> (B, nh, HW, hd)
    q = _conv(local, p, name + '.q').reshape(B, nh, head_dim,
                                            -1).transpose(-2, -1)
    pooled = F.avg_pool2d(local, pool, ceil_mode=True)
    # (B, 2C, h, w) -> (2, B, nh, hw, hd)
    kv = _conv(_gn(pooled, p, name + '.ds_norm'), p, name + '.kv')
    k, v = kv.reshape(B, 2, nh, head_dim, -1).permute(1, 0, 2, 4, 3)
    out = _attend(q, k, v, scale).transpose(-2, -1).reshape(B, C, H, W)
    return _conv(out + local, p, name + '.proj')


def _ffn(x, p, name):
    x = _conv(_gn(x, p, name + '.conv1.0'), p, name + '.conv1.1')
    x = F.silu(x, inplace=True)
    dw = p[name + '.conv2.0.weight']
    x = F.conv2d(x, dw, padding=dw.shape[-1] // 2, groups=dw.shape[0])
    x = F.silu(x, inplace=True)
    return _gn(_conv(x, p, name + '.conv3.0'), p, name + '.conv3.1')


def _drop_path(x, prob, training):
    """timm's (and mmcv's) DropPath: drop whole samples, rescale the
    rest."""
    if not training or prob == 0:
        return x
    keep = 1 - prob
    mask = (keep + torch.rand((x.shape[0], 1, 1, 1), dtype=x.dtype,
                              device=x.device)).floor_()
    return x.div(keep) * mask


def release_forward(params: Mapping[str, torch.Tensor], x: torch.Tensor,
                    head_dim: int, grid_sizes: Sequence[int],
                    pool_ratios: Sequence[int], drop_path_rate: float = 0.,
                    training: bool = False) -> tuple[torch.Tensor, ...]:
    """The four stage features of the release network with ``params``.

    Args:
        params: release parameter name -> tensor (``proj_norm`` and
            ``classifier`` entries are not read).
        x: (N, 3, H, W) images.
        head_dim: 48 for Tiny, 64 for the others.
        grid_sizes, pool_ratios: G1 and G2 of stages 1-3.
        drop_path_rate: stochastic depth of the last block, rising linearly
            from 0 (``training`` only), as the release's
            ``torch.linspace(0, rate, sum(depths))``.
    """
    depths = [0] * 4
    for key in params:
        match = _BLOCK.match(key)
        if match:
            stage, block = map(int, match.groups())
            depths[stage] = max(depths[stage], block + 1)
    total = sum(depths)
    grids, pools = tuple(grid_sizes) + (1, ), tuple(pool_ratios) + (1, )
    x = _conv(x, params, 'patch_embed.0', stride=2, padding=1)
    x = F.silu(_gn(x, params, 'patch_embed.1'), inplace=True)
    x = _conv(x, params, 'patch_embed.3', stride=2, padding=1)
    feats = []
    for i, depth in enumerate(depths):
        if i:
            x = _conv(x, params, f'ds{i + 1}.conv', stride=2, padding=1)
            x = _gn(x, params, f'ds{i + 1}.norm')
        for j in range(depth):
            name = f'blocks.{i}.{j}'
            prob = drop_path_rate * (sum(depths[:i]) + j) / max(total - 1, 1)
            x = x + _drop_path(_attention(x, params, name + '.attn',
                                          head_dim, grids[i], pools[i]),
                               prob, training)
            x = x + _drop_path(_ffn(x, params, name + '.conv'), prob,
                               training)
        feats.append(x)
    return tuple(feats)


def release_logits(params: Mapping[str, torch.Tensor],
                   feature: torch.Tensor) -> torch.Tensor:
    """The release's classifier on the last stage's feature (eval mode:
    global average pooling, then ``classifier.1``)."""
    x = F.adaptive_avg_pool2d(feature, (1, 1)).flatten(1)
    return F.linear(x, params['classifier.1.weight'],
                    params['classifier.1.bias'])


class ReleaseBaseline(nn.Module):
    """:func:`release_forward` on the parameters of ``net`` (shared, not
    copied), returning the stages of ``net.out_indices`` like ``net``, in
    training mode with ``net``'s drop path. It ignores ``net.with_cp``."""

    def __init__(self, net: HATNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        net = self.net
        feats = release_forward(
            dict(net.named_parameters()), x, net.arch['head_dim'],
            net.grid_sizes[:3], net.pool_ratios[:3], net.drop_path_rate,
            self.training)
        return tuple(feats[i] for i in net.out_indices)


def _timm_stand_ins() -> dict[str, types.ModuleType]:
    """The four timm names ``HAT_Net.py`` imports, for where timm is not
    installed: mmcv's DropPath (timm's computation), mmengine's
    trunc_normal_, and no-op model registration."""
    from mmcv.cnn.bricks import DropPath
    from mmengine.model.weight_init import trunc_normal_
    modules = {name: types.ModuleType(name) for name in (
        'timm', 'timm.models', 'timm.models.layers', 'timm.models.registry',
        'timm.models.vision_transformer')}
    modules['timm.models.layers'].DropPath = DropPath
    modules['timm.models.layers'].trunc_normal_ = trunc_normal_
    modules['timm.models.registry'].register_model = lambda fn: fn
    modules['timm.models.vision_transformer']._cfg = \
        lambda **kwargs: dict(kwargs)
    return modules


def load_release_code(path: str) -> types.ModuleType:
    """Import the authors' ``HAT_Net.py`` from ``path`` (with stand-ins for
    its timm imports where timm is not installed)."""
    spec = importlib.util.spec_from_file_location('_hat_net_release', path)
    if spec is None:
        raise ValueError(f'{path} is not a Python file')
    module = importlib.util.module_from_spec(spec)
    try:
        import timm  # noqa: F401
        stand_ins = {}
    except ImportError:
        stand_ins = _timm_stand_ins()
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        spec.loader.exec_module(module)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name)
            else:
                sys.modules[name] = old
    if not hasattr(module, 'HAT_Net'):
        raise ValueError(f'{path} defines no HAT_Net class: not the '
                         f"authors' HAT_Net.py")
    return module


def release_code_size_error(net: HATNet,
                            shape: Sequence[int]) -> str | None:
    """Why the release's code cannot run ``net``'s G1 on an (H, W) input,
    or None where it can."""
    h, w = (shape[0] + 3) // 4, (shape[1] + 3) // 4  # after the stem
    for i, g in enumerate(net.grid_sizes[:3]):
        if i:
            h, w = (h + 1) // 2, (w + 1) // 2
        if g > 1 and (h % g or w % g):
            return (f'stage {i + 1} of a {shape[0]}x{shape[1]} input is '
                    f'{h}x{w}, which G1 = {g} does not divide; the '
                    f"release's code reshapes by H // G1 and cannot run it")
    return None


class ReleaseCode(nn.Module):
    """The authors' ``HAT_Net`` from ``HAT_Net.py`` at ``path``, built with
    ``net``'s arch, G1, G2 and drop path and loaded with ``net``'s weights;
    returns the stages of ``net.out_indices`` (the classifier is not run).

    It runs only where G1 divides every stage's map.
    """

    def __init__(self, net: HATNet, path: str):
        super().__init__()
        arch = net.arch
        self.out_indices = net.out_indices
        self.model = load_release_code(path).HAT_Net(
            dims=list(arch['embed_dims']), head_dim=arch['head_dim'],
            expansions=list(arch['expansions']),
            grid_sizes=list(net.grid_sizes), ds_ratios=list(net.pool_ratios),
            depths=list(arch['depths']),
            kernel_sizes=list(arch['kernel_sizes']),
            drop_path_rate=net.drop_path_rate)
        result = self.model.load_state_dict(net.state_dict(), strict=False)
        left = [k for k in result.missing_keys
                if '.proj_norm.' not in k and not k.startswith('classifier.')]
        if left or result.unexpected_keys:
            raise ValueError(
                f'{path}: HAT_Net does not have the release layout: missing '
                f'{left[:5]}, unexpected {result.unexpected_keys[:5]}')

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = self.model
        x = m.patch_embed(x)
        outs = []
        for i, blocks in enumerate(m.blocks):
            if i:
                x = getattr(m, f'ds{i + 1}')(x)
            for block in blocks:
                x = block(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


def random_release_state_dict(layout: Mapping[str, Sequence[int]],
                              seed: int = 0) -> dict:
    """Random weights in a release layout (key -> shape), scaled so that
    attention is far from uniform and every path matters."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in layout.items():
        if len(shape) > 1:
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            sd[key] = torch.randn(shape, generator=g) * fan_in**-0.5
        elif key.endswith('weight'):
            sd[key] = 1 + 0.2 * torch.randn(shape, generator=g)
        else:
            sd[key] = 0.2 * torch.randn(shape, generator=g)
    return sd
