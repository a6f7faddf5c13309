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
import torch
import torch.nn.functional as F
from torch import nn


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              key_mask: torch.Tensor | None = None,
              fused: bool = True) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` over the last two dimensions.

    ``key_mask`` (bool, broadcastable to (..., 1, S)) marks the keys that take
    part; every query must have at least one. ``fused`` selects torch's
    ``scaled_dot_product_attention``; the plain path is its reference.
    """
    if fused:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
    scores = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask, float('-inf'))
    return scores.softmax(dim=-1) @ v


def grid_key_mask(height: int, width: int, grid: int,
                  device: torch.device) -> torch.Tensor | None:
    """Which tokens of each G1xG1 grid are real, or None if all are.

    Returns a bool tensor of shape (num_grids, 1, grid * grid) for the map
    padded at the bottom and right to a multiple of ``grid``.
    """
    pad_h, pad_w = -height % grid, -width % grid
    if pad_h == 0 and pad_w == 0:
        return None
    real = torch.zeros(height + pad_h, width + pad_w, dtype=torch.bool,
                       device=device)
    real[:height, :width] = True
    gh, gw = real.shape[0] // grid, real.shape[1] // grid
    # (Hp, Wp) -> (gh, G1, gw, G1) -> (gh * gw, 1, G1 * G1)
    real = real.reshape(gh, grid, gw, grid).transpose(1, 2)
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
        nh, hd = self.num_heads, self.head_dim
        qkv = self.qkv(self.norm(x))  # (B, 3C), channels ordered (3, nh, hd)

        if self.grid_size == 1:
            # (B, 3, nh, hd, HW) -> (3, B, nh, HW, hd)
            q, k, v = qkv.reshape(B, 3, nh, hd, H * W).permute(
                1, 0, 2, 4, 3).unbind(0)
            out = attention(q, k, v, fused=self.fused)
            return self.proj(out.transpose(-2, -1).reshape(B, C, H, W))

        local = x + self._local_attention(qkv)
        local = self.grid_norm(local)

        q = self.q(local).reshape(B, nh, hd, H * W).transpose(-2, -1)
        pooled = F.avg_pool2d(local, self.pool_ratio, ceil_mode=True)
        # (B, 2C, h, w) -> (B, 2, nh, hd, hw) -> (2, B, nh, hw, hd)
        k, v = self.kv(self.ds_norm(pooled)).reshape(
            B, 2, nh, hd, -1).permute(1, 0, 2, 4, 3).unbind(0)
        out = attention(q, k, v, fused=self.fused)  # (B, nh, HW, hd)
        out = out.transpose(-2, -1).reshape(B, C, H, W) + local
        return self.proj(out)

    def _local_attention(self, qkv: torch.Tensor) -> torch.Tensor:
        """Attention inside each G1xG1 grid; (B, 3C, H, W) -> (B, C, H, W)."""
        B, C3, H, W = qkv.shape
        nh, hd, g = self.num_heads, self.head_dim, self.grid_size
        mask = grid_key_mask(H, W, g, qkv.device)
        if mask is not None:
            qkv = F.pad(qkv, (0, -W % g, 0, -H % g))
        Hp, Wp = qkv.shape[-2:]
        gh, gw = Hp // g, Wp // g
        # (B, 3, nh, hd, gh, G1, gw, G1) -> (3, B * nh, gh * gw, G1 * G1, hd)
        qkv = qkv.reshape(B, 3, nh, hd, gh, g, gw, g).permute(
            1, 0, 2, 4, 6, 5, 7, 3)
        q, k, v = qkv.reshape(3, B * nh, gh * gw, g * g, hd).unbind(0)
        out = attention(q, k, v, mask, fused=self.fused)
        # (B, nh, gh, gw, G1, G1, hd) -> (B, nh, hd, gh, G1, gw, G1)
        out = out.reshape(B, nh, gh, gw, g, g, hd).permute(
            0, 1, 6, 2, 4, 3, 5).reshape(B, C3 // 3, Hp, Wp)
        return out[:, :, :H, :W]
