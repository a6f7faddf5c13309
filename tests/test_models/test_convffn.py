"""ConvFFN: the memory-lean Function and its CPU row bands against the plain
autograd ops."""
import pytest
import torch

from mmhatnet.models.convffn import (ConvFFN, _InvertedResidual, _row_bands,
                                     row_bands)
from tiny import SIZE, outputs_and_grads, tiny_model


def _plain_twin(m: ConvFFN) -> ConvFFN:
    """The plain-ops ConvFFN with ``m``'s weights: the reference."""
    dim, hidden = m.expand.in_channels, m.expand.out_channels
    plain = ConvFFN(dim, hidden // dim, m.depthwise.kernel_size[0],
                    lean_ffn=False)
    plain.load_state_dict(m.state_dict())
    return plain


@pytest.mark.parametrize('kernel_size', [3, 5])
@pytest.mark.parametrize('channels_last', [True, False])
def test_memory_lean_matches_the_plain_ops(bands, kernel_size,
                                                channels_last):
    m = ConvFFN(8, 3, kernel_size)
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(2, 8, 11, 13)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    plain = _plain_twin(m)
    outs, grads = outputs_and_grads(m, x, list(m.parameters()))
    ref_outs, ref_grads = outputs_and_grads(plain, x,
                                             list(plain.parameters()))
    torch.testing.assert_close(outs, ref_outs, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with torch.no_grad():  # the banded inference path
        torch.testing.assert_close(m(x), ref_outs[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('needs', [
    (True, True, True, True), (True, False, False, False),
    (False, True, False, False), (False, False, True, False),
    (False, False, False, True), (False, False, True, True)])
def test_fused_ffn_gradients_are_exact(bands, needs):
    """Each gradient alone (the others not needed), and all together."""
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(1, 3, 7, 5, dtype=torch.double, generator=g)
              .contiguous(memory_format=torch.channels_last),  # normed
              torch.randn(4, 3, 1, 1, dtype=torch.double, generator=g),
              torch.randn(4, 1, 3, 3, dtype=torch.double, generator=g),
              torch.randn(2, 4, 1, 1, dtype=torch.double, generator=g)]
    for t, need in zip(inputs, needs):
        t.requires_grad_(need)
    assert torch.autograd.gradcheck(_InvertedResidual.apply, inputs)


def test_hatnet_switches_every_block_to_the_plain_ops(bands):
    model = tiny_model()
    plain = tiny_model(lean_ffn=False)
    plain.load_state_dict(model.state_dict())
    assert all(not m.lean_ffn for m in plain.modules()
               if isinstance(m, ConvFFN))
    x = torch.randn(1, 3, *SIZE)
    outs, grads = outputs_and_grads(model, x, list(model.parameters()))
    ref_outs, ref_grads = outputs_and_grads(plain, x,
                                             list(plain.parameters()))
    torch.testing.assert_close(outs, ref_outs, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_row_bands_sets_the_band_size_and_restores_it():
    x = torch.empty(1, 4, 20, 8)  # one row of 4 channels: 128 bytes
    assert len(list(_row_bands(x, 4, 1))) == 1  # 8 MB default: one band
    with row_bands(256, min_rows=1):
        bands = list(_row_bands(x, 4, 1))
        assert [(r0, r1) for r0, r1, _, _ in bands] == [
            (r, r + 2) for r in range(0, 20, 2)]
        assert bands[1][2:] == (1, 5)  # the halo: a row on each side
        with row_bands(None):
            assert len(list(_row_bands(x, 4, 1))) == 1
        assert len(list(_row_bands(x, 4, 1))) == 10
    assert len(list(_row_bands(x, 4, 1))) == 1
    with pytest.raises(ValueError, match='min_rows >= 1, got 8, 0'):
        with row_bands(8, min_rows=0):
            pass
