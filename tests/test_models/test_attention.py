import math

import pytest
import torch

from mmhatnet.models.attention import HierarchicalAttention


def restricted_reference(m: HierarchicalAttention, x: torch.Tensor):
    """H-MHSA computed grid by grid and window by window over the real
    tokens only: no padding anywhere."""
    B, C, H, W = x.shape
    nh, hd, g, p = m.num_heads, m.head_dim, m.grid_size, m.pool_ratio

    def attend(q, k, v):  # (B, nh, hd, n) each -> (B, nh, hd, n)
        s = torch.einsum('bhdq,bhdk->bhqk', q, k) * hd**-0.5
        return torch.einsum('bhqk,bhdk->bhdq', s.softmax(-1), v)

    qkv = m.qkv(m.norm(x)).view(B, 3, nh, hd, H, W)
    local = torch.zeros(B, nh, hd, H, W)
    for y in range(0, H, g):
        for x0 in range(0, W, g):
            cell = qkv[..., y:y + g, x0:x0 + g]
            h, w = cell.shape[-2:]
            q, k, v = (cell[:, i].reshape(B, nh, hd, h * w) for i in range(3))
            local[..., y:y + g, x0:x0 + g] = attend(q, k, v).view(
                B, nh, hd, h, w)
    a1 = m.grid_norm(x + local.view(B, C, H, W))
    ph, pw = math.ceil(H / p), math.ceil(W / p)
    pooled = torch.stack([
        torch.stack([a1[..., i * p:(i + 1) * p, j * p:(j + 1) * p].mean(
            (-2, -1)) for j in range(pw)], -1) for i in range(ph)], -2)
    kv = m.kv(m.ds_norm(pooled)).view(B, 2, nh, hd, ph * pw)
    q = m.q(a1).view(B, nh, hd, H * W)
    a2 = attend(q, kv[:, 0], kv[:, 1]).reshape(B, C, H, W)
    return m.proj(a1 + a2)


@pytest.mark.parametrize('fused', [True, False])
@pytest.mark.parametrize('size', [(16, 24), (13, 21), (5, 3)],
                         ids=['divisible', 'partly-padded', 'below-grid'])
def test_padding_never_leaks(size, fused):
    m = HierarchicalAttention(32, 8, grid_size=8, pool_ratio=4,
                              fused_attention=fused)
    for t in m.parameters():  # far from identity: every path matters
        torch.nn.init.normal_(t, std=0.5)
    x = torch.randn(2, 32, *size)
    with torch.no_grad():
        out, ref = m(x), restricted_reference(m, x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('grid_size', [8, 1], ids=['hierarchical', 'global'])
@pytest.mark.parametrize('size', [(16, 16), (11, 19)],
                         ids=['unpadded', 'padded'])
def test_fused_matches_plain_in_output_and_gradients(grid_size, size):
    plain = HierarchicalAttention(64, 16, grid_size, 4,
                                  fused_attention=False)
    fused = HierarchicalAttention(64, 16, grid_size, 4,
                                  fused_attention=True)
    fused.load_state_dict(plain.state_dict())
    x = torch.randn(2, 64, *size)
    outs, grads = [], []
    for m in (plain, fused):
        xi = x.clone().requires_grad_()
        out = m(xi)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum() \
            .backward()
        outs.append(out)
        grads.append([xi.grad] + [p.grad for p in m.parameters()])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_global_stage_owns_no_local_parameters():
    m = HierarchicalAttention(64, 32, grid_size=1)
    assert sorted({k.split('.')[0] for k in m.state_dict()}) == \
        ['norm', 'proj', 'qkv']


def test_dim_must_divide_into_heads():
    with pytest.raises(ValueError, match='dim 50 is not a multiple of '
                       'head_dim 16'):
        HierarchicalAttention(50, 16)
