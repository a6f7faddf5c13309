"""Mixed precision: under autocast, the memory-lean ConvFFN and the fused
(masked) attention are as close to the exact (float64) result as their
plain-ops references under the same autocast are, or within the dtype's
tolerance, forward and backward. bf16 on the CPU; fp16 and bf16 on CUDA
where a GPU is present (without one, those cases are reported as skipped,
never as passed).

Measured against float64, not against the plain ops: torch's own bf16
kernels are not equally accurate everywhere. On torch 2.0.1, on a CPU
without AVX-512, the plain channels-last convolutions' weight gradients are
12% off the float64 ones under bf16 autocast (the banded ConvFFN's 0.6%).
"""
import contextlib
import copy

import pytest
import torch

from mmhatnet.models.attention import HierarchicalAttention
from mmhatnet.models.convffn import ConvFFN

_no_gpu = pytest.mark.skipif(not torch.cuda.is_available(),
                             reason='no GPU: the CUDA case was not run')
CASES = [
    pytest.param('cpu', torch.bfloat16, id='cpu-bf16'),
    pytest.param('cuda', torch.float16, id='cuda-fp16', marks=_no_gpu),
    pytest.param('cuda', torch.bfloat16, id='cuda-bf16', marks=_no_gpu),
]
#: Relative error (norm of the difference over the exact result's) always
#: allowed, in units of the dtype's rounding; more only where the plain ops
#: under the same autocast are further off themselves.
UNITS = 8


def _pass(module, x, device, dtype):
    """Output and gradients (input's, then each parameter's) of one
    forward and backward, under autocast in ``dtype`` (None: without)."""
    x = x.detach().clone().requires_grad_()
    module.zero_grad(set_to_none=True)
    with (torch.autocast(device, dtype=dtype) if dtype is not None
          else contextlib.nullcontext()):
        out = module(x)
    weight = torch.linspace(-1, 1, out.numel(), device=device,
                            dtype=torch.float64 if dtype is None else None)
    (out.to(weight.dtype) * weight.view_as(out)).sum().backward()
    return out, [x.grad] + [p.grad for p in module.parameters()]


def _rel(a, exact):
    return ((a.double() - exact).norm() / exact.norm()).item()


def _assert_close(new, plain, exact, dtype, what):
    """``new`` is as close to ``exact`` as ``plain`` (the plain ops under
    the same autocast) is, give or take a factor of 2, or within UNITS
    roundings of ``dtype``."""
    assert new.dtype == plain.dtype, (what, new.dtype, plain.dtype)
    assert new.isfinite().all() and plain.isfinite().all(), what
    err, plain_err = _rel(new, exact), _rel(plain, exact)
    assert err <= max(UNITS * torch.finfo(dtype).eps, 2 * plain_err), (
        what, err, plain_err)


def _check_pair(new, plain, x, device, dtype):
    exact = copy.deepcopy(plain).double()
    out, grads = _pass(new, x, device, dtype)
    ref, ref_grads = _pass(plain, x, device, dtype)
    exact_out, exact_grads = _pass(exact, x.double(), device, None)
    _assert_close(out, ref, exact_out, dtype, 'output')
    names = ['input'] + [n for n, _ in plain.named_parameters()]
    for name, g, r, e in zip(names, grads, ref_grads, exact_grads):
        _assert_close(g, r, e, dtype, name)
    return out


@pytest.mark.parametrize('device, dtype', CASES)
@pytest.mark.parametrize('channels_last', [True, False])
def test_memory_lean_convffn_matches_plain_ops_under_autocast(
        bands, device, dtype, channels_last):
    torch.manual_seed(0)
    lean = ConvFFN(16, 4, 3, lean_ffn=True)
    for p in lean.parameters():
        torch.nn.init.normal_(p, std=0.3)
    plain = ConvFFN(16, 4, 3, lean_ffn=False)
    plain.load_state_dict(lean.state_dict())
    lean, plain = lean.to(device), plain.to(device)
    x = torch.randn(2, 16, 13, 11, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    _check_pair(lean, plain, x, device, dtype)
    with torch.no_grad():
        exact = copy.deepcopy(plain).double()(x.double())
        with torch.autocast(device, dtype=dtype):
            _assert_close(lean(x), plain(x), exact, dtype,
                          'inference output')


@pytest.mark.parametrize('device, dtype', CASES)
@pytest.mark.parametrize('grid_size', [8, 1], ids=['hierarchical', 'global'])
def test_fused_attention_matches_plain_ops_under_autocast(
        device, dtype, grid_size):
    """11x19 with G1 = 8: padded grids, so the fused path gets a key
    mask."""
    torch.manual_seed(0)
    plain = HierarchicalAttention(64, 16, grid_size, 4,
                                  fused_attention=False)
    fused = HierarchicalAttention(64, 16, grid_size, 4,
                                  fused_attention=True)
    fused.load_state_dict(plain.state_dict())
    plain, fused = plain.to(device), fused.to(device)
    x = torch.randn(2, 64, 11, 19, device=device)
    out = _check_pair(fused, plain, x, device, dtype)
    # and both are near fp32: autocast ran, in the dtype it was asked for
    with torch.no_grad():
        ref = plain(x)
    err = ((out.double() - ref.double()).norm() / ref.double().norm()).item()
    assert 0 < err <= 4 * UNITS * torch.finfo(dtype).eps, err
