"""The backbone's fast paths as a whole: channels-last, autocast and
torch.compile (ConvFFN's own: test_convffn.py)."""
import pytest
import torch

from mmhatnet.models.convffn import _autocast_dtype
from tiny import SIZE, outputs_and_grads, tiny_model


def test_channels_last_input_gives_the_same_outputs():
    model = tiny_model().eval()
    x = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        ref = model(x)
        out = model(x.contiguous(memory_format=torch.channels_last))
    for r, o in zip(ref, out):
        assert r.is_contiguous()  # outputs keep the input's format
        assert o.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(o, r, rtol=1e-6, atol=1e-6)


def test_training_step_is_the_same_for_both_memory_formats():
    model = tiny_model()
    params = list(model.parameters())
    x = torch.randn(1, 3, *SIZE)
    ref_outs, ref_grads = outputs_and_grads(model, x, params)
    outs, grads = outputs_and_grads(
        model, x.contiguous(memory_format=torch.channels_last), params)
    torch.testing.assert_close(outs, ref_outs, rtol=1e-6, atol=1e-6)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_autocast_bfloat16_agrees_with_float32():
    model = tiny_model()
    x = torch.randn(1, 3, *SIZE)
    ref = model(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(x)
        loss = sum(o.float().square().mean() for o in outs)
    loss.backward()
    for o, r in zip(outs, ref):
        assert o.isfinite().all()
        # bf16 keeps 8 bits of mantissa: about 1% per op here
        assert (o.float() - r).norm() <= 0.05 * r.norm()
    assert all(p.grad.isfinite().all() for p in model.parameters())
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        for o, r in zip(model(x), ref):
            assert (o.float() - r).norm() <= 0.05 * r.norm()


def _dynamo_traces_autocast_state() -> bool:
    """torch 2.0's dynamo cannot trace autocast state queries, which the
    memory-lean ConvFFN makes: it breaks the graph there."""
    try:
        torch.compile(_autocast_dtype, backend='eager',
                      fullgraph=True)(torch.ones(1))
    except torch._dynamo.exc.Unsupported:
        return False
    finally:
        torch._dynamo.reset()
    return True


def test_compiles_to_one_graph_with_the_eager_results(bands):
    if not _dynamo_traces_autocast_state():
        pytest.skip("this torch's dynamo cannot trace autocast state")
    torch._dynamo.reset()
    model = tiny_model()
    params = list(model.parameters())
    x = torch.randn(1, 3, 40, 56)  # stage 1: 10x14, padded grids
    # fullgraph: any graph break raises; aot_eager also traces backward
    compiled = torch.compile(model, backend='aot_eager', fullgraph=True)
    outs, grads = outputs_and_grads(compiled, x, params)
    ref_outs, ref_grads = outputs_and_grads(model, x, params)
    torch.testing.assert_close(outs, ref_outs, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-5,
                                   atol=1e-5)
