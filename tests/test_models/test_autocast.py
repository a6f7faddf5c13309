"""Mixed precision: under autocast, the memory-lean ConvFFN and the fused
(masked) attention give what their plain-ops references give under the same
autocast, to the dtype's tolerance, forward and backward. bf16 on the CPU;
fp16 and bf16 on CUDA where a GPU is present (without one, those cases are
reported as skipped, never as passed)."""
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
#: Relative error (norm of the difference over the reference's) allowed
#: between two implementations under the same autocast, in units of the
#: dtype's rounding: each rounds its intermediate results differently.
UNITS = 8


def _pass(module, x, device, dtype):
    """Output and gradients (input's, then each parameter's) of one
    forward and backward under autocast."""
    x = x.detach().clone().requires_grad_()
    module.zero_grad(set_to_none=True)
    with torch.autocast(device, dtype=dtype):
        out = module(x)
    weight = torch.linspace(-1, 1, out.numel(), device=device)
    (out.float() * weight.view_as(out)).sum().backward()
    return out, [x.grad] + [p.grad for p in module.parameters()]


def _assert_close(a, b, dtype, what):
    assert a.dtype == b.dtype, (what, a.dtype, b.dtype)
    assert a.isfinite().all() and b.isfinite().all(), what
    err = ((a.double() - b.double()).norm() / b.double().norm()).item()
    assert err <= UNITS * torch.finfo(dtype).eps, (what, err)


def _check_pair(lean, plain, x, device, dtype):
    out, grads = _pass(lean, x, device, dtype)
    ref, ref_grads = _pass(plain, x, device, dtype)
    _assert_close(out, ref, dtype, 'output')
    names = ['input'] + [n for n, _ in plain.named_parameters()]
    for name, g, r in zip(names, grads, ref_grads):
        _assert_close(g, r, dtype, name)
    return out


@pytest.mark.parametrize('device, dtype', CASES)
@pytest.mark.parametrize('channels_last', [True, False])
def test_memory_lean_convffn_matches_plain_ops_under_autocast(
        bands, device, dtype, channels_last):
    torch.manual_seed(0)
    lean = ConvFFN(16, 4, 3, memory_lean=True)
    for p in lean.parameters():
        torch.nn.init.normal_(p, std=0.3)
    plain = ConvFFN(16, 4, 3, memory_lean=False)
    plain.load_state_dict(lean.state_dict())
    lean, plain = lean.to(device), plain.to(device)
    x = torch.randn(2, 16, 13, 11, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    _check_pair(lean, plain, x, device, dtype)
    with torch.no_grad(), torch.autocast(device, dtype=dtype):
        _assert_close(lean(x), plain(x), dtype, 'inference output')


@pytest.mark.parametrize('device, dtype', CASES)
@pytest.mark.parametrize('grid_size', [8, 1], ids=['hierarchical', 'global'])
def test_fused_attention_matches_plain_ops_under_autocast(
        device, dtype, grid_size):
    """11x19 with G1 = 8: padded grids, so the fused path gets a key
    mask."""
    torch.manual_seed(0)
    plain = HierarchicalAttention(64, 16, grid_size, 4, fused=False)
    fused = HierarchicalAttention(64, 16, grid_size, 4, fused=True)
    fused.load_state_dict(plain.state_dict())
    plain, fused = plain.to(device), fused.to(device)
    x = torch.randn(2, 64, 11, 19, device=device)
    out = _check_pair(fused, plain, x, device, dtype)
    # and both are near fp32: autocast ran, in the dtype it was asked for
    with torch.no_grad():
        ref = plain(x)
    err = ((out.double() - ref.double()).norm() / ref.double().norm()).item()
    assert 0 < err <= 4 * UNITS * torch.finfo(dtype).eps, err
