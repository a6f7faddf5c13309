"""H-MHSA, the hierarchical multi-head self-attention of HAT-Net.

Paper: "Vision Transformers with Hierarchical Attention" (Liu et al., 2024),
Sec. 3.2. With ``x`` an (N, C, H, W) map, G1 the grid size and G2 the pooling
ratio:

    q, k, v = qkv(GN(x))
    A1 = GN_grid(x + Attn_local(q, k, v))         attention inside G1xG1 grids
    A2 = Attn(q(A1), kv(GN_ds(AvgPool_G2(A1))))   every token over pooled A1
    out = proj(A1 + A2)

A module with G1 == 1 is plain global MHSA: ``out = proj(Attn(q, k, v))``.

Any H and W are handled. The map is padded to a multiple of G1 for the local
step only, and padded keys are masked out, so every real token attends to
the real tokens of its grid alone. Pooling averages the real pixels of each
G2xG2 window (windows at the border may be partial). For sizes that G1 and G2
divide, this is exactly the computation of the authors' release.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .export_mode import is_exporting


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              key_mask: torch.Tensor | None = None,
              fused: bool = True) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` over the last two dimensions.

    ``key_mask`` (bool, broadcastable to (..., 1, S)) marks the keys that take
    part; every query must have at least one. ``fused`` selects torch's
    ``scaled_dot_product_attention``; the plain path is its reference.

    SDPA gets the bool mask as it is, and None where nothing is padded: a
    mask moves it off its flash path, and its cuDNN backend (the first
    choice on SM90) returned wrong outputs and gradients for a float mask
    whose dtype differed from fp16/bf16 queries (PyTorch PRs 191612,
    191964). Only under export is the mask additive, in q's dtype.
    """
    if key_mask is not None and key_mask.dtype != torch.bool:
        raise TypeError(f'key_mask must be bool, got {key_mask.dtype}')
    if fused:
        if key_mask is not None and is_exporting():
            # the same softmax with an additive mask, the only kind that
            # mmdeploy's rewrite of this function reads
            key_mask = torch.zeros(key_mask.shape, dtype=q.dtype,
                                   device=q.device).masked_fill(
                                       ~key_mask, float('-inf'))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
    scores = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask, float('-inf'))
    return scores.softmax(dim=-1) @ v


def grid_key_mask(height: int, width: int, grid: int, device: torch.device,
                  always: bool = False) -> torch.Tensor | None:
    """Which tokens of each G1xG1 grid are real, or None if all are (and
    not ``always``).

    Returns a bool tensor of shape (num_grids, 1, grid * grid) for the map
    padded at the bottom and right to a multiple of ``grid``.
    """
    pad_h, pad_w = -height % grid, -width % grid
    if not always and pad_h == 0 and pad_w == 0:
        return None
    # comparisons rather than slice assignment: a traced graph computes
    # them for any size
    rows = torch.arange(height + pad_h, device=device) < height
    cols = torch.arange(width + pad_w, device=device) < width
    gh, gw = (height + pad_h) // grid, (width + pad_w) // grid
    # (Hp, Wp) -> (gh, G1, gw, G1) -> (gh * gw, 1, G1 * G1)
    real = (rows[:, None] & cols).reshape(gh, grid, gw, grid).transpose(1, 2)
    return real.reshape(gh * gw, 1, grid * grid)


class HierarchicalAttention(nn.Module):
    """H-MHSA on an (N, C, H, W) map; see the module docstring.

    Args:
        dim: channels C.
        head_dim: channels per head; C must be a multiple of it.
        grid_size: G1. 1 makes the module plain global MHSA.
        pool_ratio: G2, kernel and stride of the average pooling.
        fused: use ``scaled_dot_product_attention`` (True) or the plain
            ``softmax(q k^T) v`` reference (False).

    The steps are laid out for channels-last maps (HATNet runs so on CPU):
    there q, k, v and the attention outputs are views, and the only copies
    are the grid gather and scatter of the local step. Contiguous maps
    work too, at the cost of a few more copies.
    """

    def __init__(self, dim: int, head_dim: int, grid_size: int = 1,
                 pool_ratio: int = 1, fused: bool = True):
        super().__init__()
        if dim % head_dim:
            raise ValueError(
                f'dim {dim} is not a multiple of head_dim {head_dim}')
        self.num_heads = dim // head_dim
        self.head_dim = head_dim
        self.grid_size = grid_size
        self.pool_ratio = pool_ratio
        self.fused = fused

        self.norm = nn.GroupNorm(1, dim, eps=1e-6)
        self.qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)
        if grid_size > 1:
            self.grid_norm = nn.GroupNorm(1, dim, eps=1e-6)
            self.ds_norm = nn.GroupNorm(1, dim, eps=1e-6)
            self.q = nn.Conv2d(dim, dim, 1)
            self.kv = nn.Conv2d(dim, dim * 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        if self.grid_size == 1:
            qkv = _tokens(self.qkv(self.norm(x)))  # (B, HW, 3C)
            q, k, v = self._split_heads(qkv, 3)
            out = attention(q, k, v, fused=self.fused)
            return self.proj(_to_map(out, H, W))

        local = self.grid_norm(self._local_attention(x))
        q, = self._split_heads(_tokens(self.q(local)), 1)
        pooled = F.avg_pool2d(local, self.pool_ratio, ceil_mode=True)
        kv = _tokens(self.kv(self.ds_norm(pooled)))  # (B, hw, 2C)
        k, v = self._split_heads(kv, 2)
        out = attention(q, k, v, fused=self.fused)
        return self.proj(_to_map(out, H, W) + local)

    def _split_heads(self, tokens: torch.Tensor,
                     n: int) -> tuple[torch.Tensor, ...]:
        """(..., L, n * C) -> n views of shape (..., nh, L, hd)."""
        *batch, L, _ = tokens.shape
        tokens = tokens.reshape(*batch, L, n, self.num_heads, self.head_dim)
        if n == 1:  # unbind's backward would copy the gradient
            return tokens.squeeze(-3).transpose(-3, -2),
        # a non-negative dim: the TorchScript exporter's movedim emits a
        # Transpose with the negative one, which ONNX rejects
        n_dim = tokens.dim() - 3
        return tokens.movedim(n_dim, 0).transpose(-3, -2).unbind(0)

    def _local_attention(self, x: torch.Tensor) -> torch.Tensor:
        """``x + Attn_local(qkv(GN(x)))``, (B, C, H, W) -> (B, C, H, W).

        The normalised map is gathered grid by grid, with zeros where it is
        padded, and only then projected to q, k, v: one C-channel copy
        instead of a 3C-channel one, and q, k, v come out as views.
        """
        B, C, H, W = x.shape
        g = self.grid_size
        # under export, always the padded path, whose graph fits any size
        mask = grid_key_mask(H, W, g, x.device, always=is_exporting())
        normed = self.norm(x).permute(0, 2, 3, 1)  # (B, H, W, C)
        if mask is not None:
            normed = F.pad(normed, (0, 0, 0, -W % g, 0, -H % g))
            # (gh * gw, 1, G1 * G1) -> (B * gh * gw, 1, 1, G1 * G1)
            mask = mask.unsqueeze(1).repeat(B, 1, 1, 1)
        Hp, Wp = normed.shape[1:3]
        gh, gw = Hp // g, Wp // g
        # (B, gh, G1, gw, G1, C) -> (B * gh * gw, G1 * G1, C)
        cells = normed.reshape(B, gh, g, gw, g, C).transpose(2, 3).reshape(
            B * gh * gw, g * g, C)
        qkv = F.linear(cells, self.qkv.weight.flatten(1), self.qkv.bias)
        q, k, v = self._split_heads(qkv, 3)  # (B * gh * gw, nh, G1^2, hd)
        out = attention(q, k, v, mask, fused=self.fused)
        # (B * gh * gw, nh, G1 * G1, hd) -> (B, gh, G1, gw, G1, C)
        out = out.transpose(1, 2).reshape(B, gh, gw, g, g, C).transpose(2, 3)
        if mask is not None:
            out = out.reshape(B, Hp, Wp, C)[:, :H, :W]
            return x + out.permute(0, 3, 1, 2)
        # the residual sum puts the cells back in place in the same pass
        x = x.permute(0, 2, 3, 1).reshape(B, gh, g, gw, g, C) + out
        return x.reshape(B, H, W, C).permute(0, 3, 1, 2)


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, HW, C); a view of a channels-last map."""
    return x.permute(0, 2, 3, 1).flatten(1, 2)


def _to_map(x: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """(B, nh, HW, hd) -> (B, C, H, W); a view when the memory is laid out
    (B, HW, nh, hd), as the fused attention returns it for q from
    ``_split_heads``."""
    B, nh, _, hd = x.shape
    return x.transpose(1, 2).reshape(B, H, W, nh * hd).permute(0, 3, 1, 2)
