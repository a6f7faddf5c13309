"""HATNet under graph export: the one switch (``is_exporting``), and dynamic
batch, height and width through both torch.onnx exporters, checked in
onnxruntime against eager at sizes the graph was not exported at."""
import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from mmhatnet import HATNet
from mmhatnet.models.attention import grid_key_mask
from mmhatnet.models.convffn import row_bands
from mmhatnet.models.export_mode import is_exporting
from tiny import SIZE as EXPORT_SIZE
from tiny import TINY

pytestmark = pytest.mark.deploy  # newest stack only

# (batch, H, W): G1 divides stage 1 of 256x256 and 64x128; 333x517 is the
# issue's size, with partial grids and pooling windows at every stage
CHECKS = [(1, 72, 88), (2, 256, 256), (1, 64, 128), (1, 333, 517)]


class _Probe(nn.Module):
    """Doubles its input in a recorded graph, triples it in eager mode."""

    def forward(self, x):
        return x * (2 if is_exporting() else 3)


@pytest.mark.parametrize('exporter', ['torchscript', 'dynamo'])
def test_is_exporting_under_onnx_export_and_not_in_eager(tmp_path,
                                                         exporter):
    x = torch.ones(1)
    assert _Probe()(x).item() == 3
    path = str(tmp_path / 'probe.onnx')
    torch.onnx.export(_Probe(), (x, ), path, input_names=['x'],
                      dynamo=exporter == 'dynamo')
    session = ort.InferenceSession(path,
                                   providers=['CPUExecutionProvider'])
    assert session.run(None, {'x': x.numpy()})[0].item() == 2


def test_is_exporting_under_torch_export_and_jit_trace():
    x = torch.ones(1)
    assert torch.jit.trace(_Probe(), x)(x).item() == 2
    assert torch.export.export(_Probe(), (x, )).module()(x).item() == 2


def test_grid_key_mask_always_gives_a_mask_of_the_same_grids():
    assert grid_key_mask(16, 24, 8, torch.device('cpu')) is None
    full = grid_key_mask(16, 24, 8, torch.device('cpu'), always=True)
    assert full.shape == (6, 1, 64) and bool(full.all())
    mask = grid_key_mask(10, 12, 8, torch.device('cpu'), always=True)
    assert torch.equal(mask, grid_key_mask(10, 12, 8, torch.device('cpu')))
    # 2x2 grids over the 16x16 padding: the first has all 64 tokens real
    assert mask.shape == (4, 1, 64)
    assert mask.sum(-1).flatten().tolist() == [64, 32, 16, 8]


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _export(model, path, exporter):
    x = torch.randn(1, 3, *EXPORT_SIZE)
    if exporter == 'dynamo':
        dim = torch.export.Dim.DYNAMIC
        torch.onnx.export(model, (x, ), path, input_names=['x'], dynamo=True,
                          dynamic_shapes={'x': {0: dim, 2: dim, 3: dim}})
    else:
        torch.onnx.export(model, (x, ), path, input_names=['x'],
                          dynamo=False, opset_version=17,
                          dynamic_axes={'x': {0: 'n', 2: 'h', 3: 'w'}})


@pytest.mark.parametrize('exporter', [
    'torchscript', pytest.param('dynamo', marks=pytest.mark.e2e)])
def test_dynamic_export_matches_eager_at_other_sizes(tmp_path, exporter):
    # eager runs ConvFFN's memory-lean function in 2-row bands and skips
    # masks where G1 divides; the graph has one band and always masks: the
    # numbers must be the same
    model = HATNet(TINY, drop_path_rate=0.).eval()
    for p in model.parameters():  # far from identity: every path matters
        nn.init.normal_(p, std=0.3)
    path = str(tmp_path / 'hatnet.onnx')
    with torch.no_grad():
        _export(model, path, exporter)
    with torch.no_grad(), row_bands(1, min_rows=2):
        expected = [model(torch.randn(n, 3, h, w, generator=_gen(i)))
                    for i, (n, h, w) in enumerate(CHECKS)]
    session = ort.InferenceSession(path,
                                   providers=['CPUExecutionProvider'])
    for i, (n, h, w) in enumerate(CHECKS):
        x = torch.randn(n, 3, h, w, generator=_gen(i))
        got = session.run(None, {'x': x.numpy()})
        assert len(got) == 4
        for g, e in zip(got, expected[i]):
            e = e.numpy()
            assert g.shape == e.shape
            err = np.abs(g - e).max() / np.abs(e).max()
            assert err < 1e-4, (exporter, (n, h, w), err)
