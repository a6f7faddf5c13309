"""mmhatnet.deployment.export and tools/export_onnx.py: whole shipped configs
exported with dynamic shapes and verified in onnxruntime, checkpoints, the
mmseg Upsample replacement, and a verification that can fail."""
import os
import subprocess
import sys

import onnxruntime as ort
import pytest
import torch
from mmseg.models.utils import Upsample
from torch import nn

from mmhatnet import HATNet
from mmhatnet.deployment.export import (ScaleUpsample, TensorOutputs,
                                        export_config, export_module,
                                        exportable, other_shape, verify)
from mmhatnet.engine.safe_load import CheckpointError

pytestmark = pytest.mark.deploy  # newest stack only

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
# small inputs keep the exports quick; 64x96 is divisible by 32, the
# dynamic check's 49x73 by neither 32 nor G1 at any stage
SHAPE = (64, 96)
TINY = dict(embed_dims=(16, 32, 48, 64), depths=(1, 1, 1, 1),
            expansions=(2, 2, 2, 2), kernel_sizes=(3, 3, 3, 3), head_dim=16)


def _config(name):
    return os.path.join(ROOT, 'configs', f'{name}.py')


def _onnx_outputs(path):
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return [o.name for o in session.get_outputs()]


@pytest.mark.e2e
@pytest.mark.parametrize('name, outputs', [
    ('fpn_hatnet_tiny', ['seg_logits']),
    ('mask-rcnn_hatnet_tiny',
     [f'{k}{i}' for k in ('neck', 'cls_score', 'bbox_pred')
      for i in range(5)]),
])
def test_whole_model_exports_with_dynamic_shapes_and_verifies(
        tmp_path, name, outputs):
    out = str(tmp_path / f'{name}.onnx')
    result = export_config(_config(name), out, shape=SHAPE, dynamic=True,
                           exporter='torchscript')
    assert result['outputs'] == outputs == _onnx_outputs(out)
    assert [c['shape'] for c in result['checks']] == [[64, 96], [49, 73]]
    assert result['ok'], result['checks']


@pytest.mark.e2e
def test_tool_exports_retinanet_and_prints_the_verdict(tmp_path):
    out = str(tmp_path / 'retinanet.onnx')
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'export_onnx.py'),
         _config('retinanet_hatnet_tiny'), '--out', out, '--shape',
         *map(str, SHAPE), '--dynamic', '--exporter', 'torchscript',
         '--check-shape', '333', '517'],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'onnxruntime vs eager at 64x96' in proc.stdout
    assert 'onnxruntime vs eager at 49x73' in proc.stdout
    assert 'onnxruntime vs eager at 333x517' in proc.stdout
    assert 'verdict: PASS' in proc.stdout
    assert _onnx_outputs(out) == [f'{k}{i}' for k in ('cls_score',
                                                       'bbox_pred')
                                  for i in range(5)]


@pytest.mark.e2e
def test_checkpoint_weights_are_the_exported_ones(tmp_path):
    from mmhatnet.config_tools import build_model, load_config
    model = build_model(load_config(_config('fpn_hatnet_tiny')))
    for p in model.parameters():
        nn.init.normal_(p, std=0.1)
    ckpt = str(tmp_path / 'fpn.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = str(tmp_path / 'backbone.onnx')
    result = export_config(_config('fpn_hatnet_tiny'), out, ckpt,
                           shape=SHAPE, backbone_only=True,
                           exporter='torchscript')
    assert result['ok'] and result['outputs'] == [f'feat{i}'
                                                  for i in range(4)]
    # the graph holds the checkpoint's weights, not a fresh initialisation
    x = torch.randn(1, 3, *SHAPE)
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    got = session.run(None, {'input': x.numpy()})
    with torch.no_grad():
        expected = model.backbone.eval()(x)
    for g, e in zip(got, expected):
        torch.testing.assert_close(torch.from_numpy(g), e, rtol=1e-4,
                                   atol=1e-4 * e.abs().max().item())


def test_checkpoint_of_another_model_is_refused(tmp_path):
    ckpt = str(tmp_path / 'backbone_only.pth')
    torch.save(HATNet('tiny').state_dict(), ckpt)  # no 'backbone.' prefix
    with pytest.raises(CheckpointError, match='missing keys'):
        export_config(_config('fpn_hatnet_tiny'), str(tmp_path / 'x.onnx'),
                      ckpt, shape=SHAPE)


class _WithBackbone(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = HATNet(TINY, drop_path_rate=0.)


def test_verification_fails_for_a_graph_of_other_weights(tmp_path):
    module = TensorOutputs(_WithBackbone(), 'mmdet', backbone_only=True)
    path = str(tmp_path / 'tiny.onnx')
    export_module(module, path, (32, 32), exporter='torchscript')
    assert verify(module, path, [(32, 32)])[0]['ok']
    with torch.no_grad():
        module.model.backbone.ds4.norm.bias.add_(1.)
    check, = verify(module, path, [(32, 32)])
    assert not check['ok'] and check['max_rel'] > 1e-2
    # a static graph refuses another size: not a pass
    with pytest.raises(Exception, match='[Ii]nvalid|dimension'):
        verify(module, path, [(64, 64)])


@pytest.mark.parametrize('mode, align_corners', [('bilinear', False),
                                                 ('nearest', None)])
@pytest.mark.parametrize('size', [(7, 9), (25, 31)])
def test_scale_upsample_equals_mmseg_upsample(mode, align_corners, size):
    x = torch.randn(2, 3, *size)
    ours = ScaleUpsample(2., mode, align_corners)(x)
    theirs = Upsample(scale_factor=2, mode=mode,
                      align_corners=align_corners)(x)
    assert torch.equal(ours, theirs)


def test_exportable_replaces_integer_upsamples_only_and_restores():
    model = nn.Sequential(
        Upsample(scale_factor=2, mode='bilinear', align_corners=False),
        Upsample(size=(4, 4)), Upsample(scale_factor=1.5),
        nn.Sequential(Upsample(scale_factor=4)))
    before = list(model.modules())
    with exportable(model):
        kinds = [type(m) for m in (model[0], model[1], model[2],
                                   model[3][0])]
        assert kinds == [ScaleUpsample, Upsample, Upsample, ScaleUpsample]
        assert model[3][0].scale_factor == 4.
    assert list(model.modules()) == before


def test_other_shape_is_odd_and_smaller():
    assert other_shape((64, 96)) == (49, 73)
    assert other_shape((800, 1344)) == (601, 1009)


def test_bad_arguments_are_named(tmp_path):
    out = str(tmp_path / 'x.onnx')
    with pytest.raises(ValueError, match="exporter must be one of.*'onnx2'"):
        export_config(_config('fpn_hatnet_tiny'), out, exporter='onnx2')
    with pytest.raises(ValueError, match="'mmpretrain'.*--backbone-only"):
        export_config(_config('imagenet_hatnet_tiny'), out)
    with pytest.raises(ValueError, match=r'shape must be.*\(0, 5\)'):
        export_config(_config('fpn_hatnet_tiny'), out, shape=(0, 5))
    with pytest.raises(ValueError, match='needs dynamic=True'):
        export_config(_config('fpn_hatnet_tiny'), out,
                      check_shapes=[(64, 64)])
