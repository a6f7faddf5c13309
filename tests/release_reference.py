"""An independent, functional reading of the authors' HAT-Net forward.

It runs on a state dict in the release's layout (``blocks.i.j.attn.qkv``,
``classifier.1``) with plain tensor ops, no mmhatnet module, and like the
release it assumes G1 divides every local stage's map and floors the
average pooling. Tests compare mmhatnet against it.
"""
import torch
import torch.nn.functional as F

ARCHS = {
    'tiny': dict(depths=(2, 2, 6, 3), head_dim=48, kernels=(3, 3, 3, 3)),
    'small': dict(depths=(2, 3, 8, 3), head_dim=64, kernels=(3, 3, 3, 3)),
    'medium': dict(depths=(3, 6, 18, 3), head_dim=64, kernels=(5, 3, 5, 3)),
    'large': dict(depths=(3, 8, 27, 3), head_dim=64, kernels=(3, 3, 3, 3)),
}


def _gn(x, sd, name):
    return F.group_norm(x, 1, sd[name + '.weight'], sd[name + '.bias'], 1e-6)


def _conv(x, sd, name, **kw):
    return F.conv2d(x, sd[name + '.weight'], sd.get(name + '.bias'), **kw)


def _softmax_attention(q, k, v, head_dim):
    # explicit scores, as the release computes them
    scores = torch.einsum('...qd,...kd->...qk', q * head_dim**-0.5, k)
    return torch.einsum('...qk,...kd->...qd', scores.softmax(-1), v)


def _attention(x, sd, p, head_dim, grid, pool):
    B, C, H, W = x.shape
    nh = C // head_dim
    qkv = _conv(_gn(x, sd, p + '.norm'), sd, p + '.qkv')
    qkv = qkv.view(B, 3, nh, head_dim, H, W)
    if grid == 1:
        q, k, v = (qkv[:, i].flatten(3).transpose(-2, -1) for i in range(3))
        out = _softmax_attention(q, k, v, head_dim)
        return _conv(out.transpose(-2, -1).reshape(B, C, H, W), sd,
                     p + '.proj')
    assert H % grid == 0 and W % grid == 0, (H, W, grid)
    # tokens of one grid cell together: (B, nh, gh, gw, G*G, hd)
    cells = [qkv[:, i].reshape(B, nh, head_dim, H // grid, grid, W // grid,
                               grid).permute(0, 1, 3, 5, 4, 6, 2).reshape(
                                   B, nh, H // grid, W // grid, grid * grid,
                                   head_dim) for i in range(3)]
    local = _softmax_attention(*cells, head_dim)
    local = local.reshape(B, nh, H // grid, W // grid, grid, grid,
                          head_dim).permute(0, 1, 6, 2, 4, 3, 5)
    a1 = _gn(x + local.reshape(B, C, H, W), sd, p + '.grid_norm')
    q = _conv(a1, sd, p + '.q').view(B, nh, head_dim, H * W)
    kv = _conv(_gn(F.avg_pool2d(a1, pool), sd, p + '.ds_norm'), sd,
               p + '.kv').view(B, 2, nh, head_dim, -1)
    a2 = _softmax_attention(q.transpose(-2, -1), kv[:, 0].transpose(-2, -1),
                            kv[:, 1].transpose(-2, -1), head_dim)
    return _conv(a2.transpose(-2, -1).reshape(B, C, H, W) + a1, sd,
                 p + '.proj')


def _ffn(x, sd, p, kernel):
    h = F.silu(_conv(_gn(x, sd, p + '.conv1.0'), sd, p + '.conv1.1'))
    h = F.silu(_conv(h, sd, p + '.conv2.0', padding=kernel // 2,
                     groups=h.shape[1]))
    return _gn(_conv(h, sd, p + '.conv3.0'), sd, p + '.conv3.1')


def release_forward(sd, arch, x, grid_sizes, pool_ratios):
    """Returns (stage features, logits) of the release network."""
    cfg = ARCHS[arch]
    grids, pools = tuple(grid_sizes) + (1, ), tuple(pool_ratios) + (1, )
    x = _conv(x, sd, 'patch_embed.0', stride=2, padding=1)
    x = F.silu(_gn(x, sd, 'patch_embed.1'))
    x = _conv(x, sd, 'patch_embed.3', stride=2, padding=1)
    feats = []
    for i, depth in enumerate(cfg['depths']):
        if i:
            x = _conv(x, sd, f'ds{i + 1}.conv', stride=2, padding=1)
            x = _gn(x, sd, f'ds{i + 1}.norm')
        for j in range(depth):
            p = f'blocks.{i}.{j}'
            x = x + _attention(x, sd, p + '.attn', cfg['head_dim'], grids[i],
                               pools[i])
            x = x + _ffn(x, sd, p + '.conv', cfg['kernels'][i])
        feats.append(x)
    logits = F.linear(x.mean((2, 3)), sd['classifier.1.weight'],
                      sd['classifier.1.bias'])
    return feats, logits


def random_release_state_dict(layout, seed=0):
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
