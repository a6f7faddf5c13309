"""The HAT-Net backbone (Liu et al., "Vision Transformers with Hierarchical
Attention", 2024) for dense prediction and classification.

Parameter names are those of the authors' release (``patch_embed.3.weight``,
``blocks.2.5.attn.kv.weight``, ``ds3.norm.weight``), less the release's
``attn.proj_norm``, which its forward never uses. Converted release weights
therefore load with only a ``backbone.`` prefix (tools/convert_official.py).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmengine.registry import MODELS
from torch import nn

from .attention import HierarchicalAttention
from .convffn import ConvFFN
from .pretrained import load_pretrained


class HATBlock(nn.Module):
    """``x + DropPath(H-MHSA(x))``, then ``x + DropPath(ConvFFN(x))``."""

    def __init__(self, dim: int, head_dim: int, grid_size: int,
                 pool_ratio: int, expansion: int, kernel_size: int,
                 drop_path: float, fused_attention: bool, lean_ffn: bool):
        super().__init__()
        self.attn = HierarchicalAttention(dim, head_dim, grid_size,
                                          pool_ratio, fused_attention)
        self.conv = ConvFFN(dim, expansion, kernel_size, lean_ffn)
        self.drop_path = DropPath(drop_path) if drop_path else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(x))
        return x + self.drop_path(self.conv(x))


class Downsample(nn.Module):
    """3x3 stride-2 conv and GroupNorm between stages."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, 3, stride=2, padding=1)
        self.norm = nn.GroupNorm(1, out_dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


def _arch_entry(embed_dims, depths, kernel_sizes, head_dim):
    return dict(embed_dims=embed_dims, depths=depths,
                expansions=(8, 8, 4, 4), kernel_sizes=kernel_sizes,
                head_dim=head_dim)


_TINY = _arch_entry((48, 96, 240, 384), (2, 2, 6, 3), (3, 3, 3, 3), 48)
_SMALL = _arch_entry((64, 128, 320, 512), (2, 3, 8, 3), (3, 3, 3, 3), 64)
_MEDIUM = _arch_entry((64, 128, 320, 512), (3, 6, 18, 3), (5, 3, 5, 3), 64)
_LARGE = _arch_entry((64, 128, 320, 640), (3, 8, 27, 3), (3, 3, 3, 3), 64)


@MODELS.register_module()
class HATNet(BaseModule):
    """HAT-Net backbone: a 4-stage pyramid of H-MHSA blocks at strides
    4, 8, 16 and 32.

    Args:
        arch: 'tiny', 'small', 'medium', 'large' (or 't', 's', 'm', 'l'),
            or a dict with keys ``embed_dims``, ``depths``, ``expansions``,
            ``kernel_sizes`` (4 ints each) and ``head_dim`` (int).
        in_channels: channels of the input image.
        grid_sizes: G1 of stages 1-3 (the last stage is global attention).
            The default is the paper's detection/segmentation setting; its
            ImageNet setting is (8, 7, 7).
        pool_ratios: G2 of stages 1-3; ImageNet setting (8, 4, 2).
        out_indices: stages whose outputs ``forward`` returns, in order.
        frozen_stages: stages 0..frozen_stages (stem included) get no
            gradient and stay in eval mode; -1 freezes nothing.
        drop_path_rate: stochastic depth, rising linearly over the blocks.
        with_cp: gradient checkpointing of each block (saves memory, same
            gradients).
        fused_attention: torch's fused attention (True) or the plain
            reference ``softmax(q k^T) v`` (False).
        lean_ffn: ConvFFN's memory-lean autograd function with CPU row
            bands (True) or its plain autograd ops, the reference (False);
            see ``mmhatnet.models.convffn``.
        init_cfg: mmengine init config, e.g. ``dict(type='Pretrained',
            checkpoint=PATH, prefix='backbone.')``. None: the release's
            trunc-normal initialisation.
    """
    arch_zoo = {
        **dict.fromkeys(['t', 'tiny'], _TINY),
        **dict.fromkeys(['s', 'small'], _SMALL),
        **dict.fromkeys(['m', 'medium'], _MEDIUM),
        **dict.fromkeys(['l', 'large'], _LARGE),
    }
    num_stages = 4

    def __init__(self,
                 arch: str | dict = 'small',
                 in_channels: int = 3,
                 grid_sizes: Sequence[int] = (8, 8, 8),
                 pool_ratios: Sequence[int] = (16, 8, 4),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 drop_path_rate: float = 0.1,
                 with_cp: bool = False,
                 fused_attention: bool = True,
                 lean_ffn: bool = True,
                 init_cfg: dict | list | None = None):
        super().__init__(init_cfg=init_cfg)
        arch = self._resolve_arch(arch)
        grid_sizes = _check_ints('grid_sizes', grid_sizes, 3, minimum=1)
        pool_ratios = _check_ints('pool_ratios', pool_ratios, 3, minimum=1)
        out_indices = _check_ints('out_indices', out_indices, None,
                                  minimum=0, maximum=self.num_stages - 1)
        if not -1 <= frozen_stages < self.num_stages:
            raise ValueError(f'frozen_stages must be in [-1, '
                             f'{self.num_stages - 1}], got {frozen_stages}')
        if not 0 <= drop_path_rate < 1:
            raise ValueError(
                f'drop_path_rate must be in [0, 1), got {drop_path_rate}')

        self.arch = arch
        self.in_channels = in_channels
        self.grid_sizes = grid_sizes + (1, )
        self.pool_ratios = pool_ratios + (1, )
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.drop_path_rate = drop_path_rate
        self.with_cp = with_cp
        dims = arch['embed_dims']
        self.out_channels = tuple(dims[i] for i in out_indices)

        self.patch_embed = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, stride=2, padding=1),
            nn.GroupNorm(1, 16, eps=1e-6),
            nn.SiLU(inplace=True),
            nn.Conv2d(16, dims[0], 3, stride=2, padding=1))
        self.ds2 = Downsample(dims[0], dims[1])
        self.ds3 = Downsample(dims[1], dims[2])
        self.ds4 = Downsample(dims[2], dims[3])

        depths = arch['depths']
        n = sum(depths)
        dpr = [drop_path_rate * j / max(n - 1, 1) for j in range(n)]
        self.blocks = nn.ModuleList()
        for i, depth in enumerate(depths):
            first = sum(depths[:i])
            self.blocks.append(nn.ModuleList(
                HATBlock(dims[i], arch['head_dim'], self.grid_sizes[i],
                         self.pool_ratios[i], arch['expansions'][i],
                         arch['kernel_sizes'][i], dpr[first + j],
                         fused_attention, lean_ffn) for j in range(depth)))
        self._freeze_stages()

    @classmethod
    def _resolve_arch(cls, arch: str | dict) -> dict:
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise ValueError(f'unknown HATNet arch {arch!r}; choose one '
                                 f'of {sorted(cls.arch_zoo)} or pass a dict')
            return dict(cls.arch_zoo[arch.lower()])
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got {arch!r}')
        keys = {'embed_dims', 'depths', 'expansions', 'kernel_sizes',
                'head_dim'}
        if set(arch) != keys:
            raise ValueError(
                f'a custom arch needs exactly the keys {sorted(keys)}; '
                f'missing {sorted(keys - set(arch))}, '
                f'unexpected {sorted(set(arch) - keys)}')
        resolved = {k: _check_ints(k, arch[k], 4, minimum=1)
                    for k in keys - {'head_dim'}}
        resolved['head_dim'] = _check_ints('head_dim', (arch['head_dim'], ),
                                           1, minimum=1)[0]
        for i, dim in enumerate(resolved['embed_dims']):
            if dim % resolved['head_dim']:
                raise ValueError(
                    f'embed_dims[{i}] = {dim} is not a multiple of '
                    f'head_dim = {resolved["head_dim"]}')
        for i, k in enumerate(resolved['kernel_sizes']):
            if k % 2 == 0:
                raise ValueError(f'kernel_sizes[{i}] = {k} must be odd')
        return resolved

    def stage_modules(self, i: int) -> list[nn.Module]:
        """The modules of stage ``i``: its entry (stem or downsample) and
        its blocks."""
        entry = self.patch_embed if i == 0 else getattr(self, f'ds{i + 1}')
        return [entry, self.blocks[i]]

    def init_weights(self) -> None:
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            # all or nothing, where mmengine's Pretrained only warns
            load_pretrained(self, cfg['checkpoint'], cfg.get('prefix'),
                            cfg.get('map_location', 'cpu'))
            self._is_init = True
            return
        if cfg is not None:
            super().init_weights()  # mmengine's other initialisers
            return
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.GroupNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'HATNet expects an (N, {self.in_channels}, H, W) tensor, '
                f'got shape {tuple(x.shape)}')
        # On CPU the network runs channels-last: oneDNN's depthwise and 1x1
        # convolutions are 2-3x faster on NHWC and GroupNorm has an NHWC
        # kernel there. The outputs keep the input's memory format.
        nchw = not x.is_contiguous(memory_format=torch.channels_last)
        if x.device.type == 'cpu':
            x = x.contiguous(memory_format=torch.channels_last)
        outs = []
        for i in range(self.num_stages):
            entry, blocks = self.stage_modules(i)
            x = entry(x)
            for block in blocks:
                if self.with_cp and x.requires_grad:
                    x = cp.checkpoint(block, x, use_reentrant=False)
                else:
                    x = block(x)
            if i in self.out_indices:
                outs.append(x.contiguous() if nchw else x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages + 1):
            for m in self.stage_modules(i):
                m.eval()
                m.requires_grad_(False)

    def train(self, mode: bool = True) -> 'HATNet':
        super().train(mode)
        self._freeze_stages()
        return self


def _check_ints(name: str, values, length: int | None, minimum: int,
                maximum: int | None = None) -> tuple[int, ...]:
    """``values`` as a tuple of ints, or a ValueError naming ``name``."""
    allowed = f'>= {minimum}' if maximum is None else \
        f'in [{minimum}, {maximum}]'
    if isinstance(values, int) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f'{name} must be a sequence of ints {allowed}, '
                         f'got {values!r}')
    values = tuple(values)
    if length is not None and len(values) != length:
        raise ValueError(f'{name} needs {length} values (one per stage), '
                         f'got {len(values)}: {values!r}')
    if any(v < minimum or (maximum is not None and v > maximum)
           for v in values):
        raise ValueError(f'{name} values must be {allowed}, got {values!r}')
    return values
