"""A one-block-per-stage HATNet and the comparison helper that the model
tests share (test_speed_paths, test_convffn, test_export_mode)."""
import torch

from mmhatnet import HATNet

# every stage has one block; stage 1 of a 72x88 input is 18x22: padded
# grids of G1 = 8
TINY = dict(embed_dims=(16, 32, 48, 64), depths=(1, 1, 1, 1),
            expansions=(2, 2, 2, 2), kernel_sizes=(3, 5, 3, 3), head_dim=16)
SIZE = (72, 88)


def tiny_model(**kwargs) -> HATNet:
    """The TINY HATNet, its weights far from identity: every path
    matters."""
    model = HATNet(TINY, drop_path_rate=0., **kwargs)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return model


def outputs_and_grads(fn, x, params):
    """``fn(x)`` and the gradients of a fixed weighting of its outputs with
    respect to ``x`` and ``params``."""
    x = x.detach().clone().requires_grad_()
    for p in params:
        p.grad = None
    out = fn(x)
    outs = out if isinstance(out, tuple) else (out, )
    weights = [torch.linspace(-1, 1, o.numel()).view_as(o) for o in outs]
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    return outs, [x.grad] + [p.grad for p in params]
