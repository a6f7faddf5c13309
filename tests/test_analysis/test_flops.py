"""mmhatnet.analysis.flops and tools/get_flops.py: the op set counted, and the
paper's ImageNet FLOPs and downstream parameters from the real configs."""
import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from mmhatnet import HierarchicalAttention
from mmhatnet.analysis.flops import count_macs, get_complexity
from mmhatnet.models import ConvFFN

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
# the common stack runs these for the Python 3.8 one (pytest.ini)
pytestmark = pytest.mark.torch_mmengine


def _config(name):
    return os.path.join(ROOT, 'configs', f'{name}.py')


def _count(module, *inputs):
    return count_macs(lambda: module.eval()(*inputs))


def test_counts_layers_norms_and_pooling_not_activations():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # 4*4*4 outputs x 27 + bias
        nn.GroupNorm(2, 4),  # 64 elements, affine
        nn.SiLU(),
        nn.AvgPool2d(2),  # 64 inputs -> 4x2x2
        nn.Flatten(),
        nn.Linear(16, 5, bias=False),
        nn.ReLU())
    macs = _count(model, torch.randn(1, 3, 4, 4))
    assert macs == dict(layers=64 * 27 + 64 + 16 * 5, norms=2 * 64,
                        pooling=64, attention=0)


def test_transposed_convolution():
    # each of the 2x6x6 outputs sums 4 input channels x 1 tap, + bias
    macs = _count(nn.ConvTranspose2d(4, 2, 2, stride=2),
                  torch.randn(1, 4, 3, 3))
    assert macs['layers'] == 72 * 4 + 72


def test_convffn_counted_as_the_network_not_its_cpu_bands():
    # 128x128 with 512 hidden channels runs in row bands on CPU
    ffn = ConvFFN(64, 8, 3)
    macs = _count(ffn, torch.randn(1, 64, 128, 128))
    pixels = 128 * 128
    assert macs['layers'] == pixels * 512 * (64 + 9 + 64)
    assert macs['norms'] == 2 * 2 * pixels * 64


@pytest.mark.parametrize('fused', [True, False])
def test_attention_products_alike_fused_and_explicit(fused):
    # 2 heads of 4 channels on 10x12: grids of 4x4 padded to 12x12, and
    # every real token over 5x6 pooled tokens (pooling 2)
    attn = HierarchicalAttention(8, 4, grid_size=4, pool_ratio=2,
                                 fused_attention=fused)
    macs = _count(attn, torch.randn(1, 8, 10, 12))
    per_head = 144 * 16 * (4 + 4) + 120 * 30 * (4 + 4)
    assert macs['attention'] == 2 * per_head


@pytest.mark.parametrize('arch, paper_g', [('tiny', 1.98), ('small', 4.31)])
def test_imagenet_flops_match_the_paper_convention(arch, paper_g):
    result = get_complexity(_config(f'imagenet_hatnet_{arch}'))
    assert result['shape'] == [224, 224]
    assert result['flops_paper_g'] == pytest.approx(paper_g, abs=0.005)
    # the attention matrix products add 0.16 G (tiny), 0.26 G (small)
    assert result['flops_g'] - result['flops_paper_g'] > 0.1


def test_fpn_small_parameters_match_the_paper():
    result = get_complexity(_config('fpn_hatnet_small'), shape=(64, 64))
    assert result['params_m'] == pytest.approx(29.5, abs=0.05)


def test_cli_writes_json(tmp_path):
    out = tmp_path / 'flops.json'
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'get_flops.py'),
         _config('retinanet_hatnet_tiny'), '--shape', '64', '96',
         '--json', str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'FLOPs paper' in proc.stdout
    result = json.loads(out.read_text())
    assert set(result) == {'params_m', 'flops_g', 'flops_paper_g', 'shape',
                           'config'}
    assert result['shape'] == [64, 96]
    assert result['flops_g'] > result['flops_paper_g'] > 0
