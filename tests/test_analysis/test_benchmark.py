import json
import os
import subprocess
import sys

import pytest
import torch

from mmhatnet import HATNet
from mmhatnet.analysis.benchmark import (build_hatnet, convffn_bands,
                                         format_bands, format_onnx,
                                         format_table, onnx_latency,
                                         peak_memory_bytes, run_benchmark)
from mmhatnet.analysis.flops import count_flops
from mmhatnet.models.convffn import row_bands

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
# the common stack runs these for the Python 3.8 one (pytest.ini)
pytestmark = pytest.mark.torch_mmengine


def test_cpu_peak_memory_is_the_allocator_peak():
    mb = 2**20

    def step():
        a = torch.ones(4 * mb // 4)  # 4 MB, kept
        b = torch.ones(8 * mb // 4)  # 8 MB, freed before c
        del b
        c = torch.ones(2 * mb // 4)
        return a, c

    peak = peak_memory_bytes(step, torch.device('cpu'))
    assert 12 * mb <= peak < 12 * mb + 4096


def test_flop_counts_include_cpu_attention_and_grouped_backward():
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    x = torch.randn(1, 8, 16, 16, requires_grad=True)
    forward = count_flops(lambda: conv(x))
    assert forward == 2 * 8 * 16 * 16 * 9
    assert count_flops(lambda: conv(x).sum().backward()) == 3 * forward
    q = torch.randn(2, 4, 10, 8)
    flops = count_flops(
        lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q))
    assert flops == 2 * 2 * (2 * 4 * 10 * 10 * 8)


def test_build_hatnet_from_a_config():
    net = build_hatnet(config=os.path.join(
        ROOT, 'configs', 'retinanet_hatnet_small.py'))
    assert isinstance(net, HATNet) and net.out_channels == (64, 128, 320, 512)
    assert net.grid_sizes == (8, 8, 8, 1)


def test_format_table_gives_ratios_to_the_baseline():
    def record(name, seconds, mem):
        return dict(name=name, params_m=1., forward_s=seconds,
                    train_step_s=2 * seconds, forward_cpu_s=seconds,
                    train_step_cpu_s=seconds, peak_mem_mb=mem,
                    forward_flops=1e9, forward_mm_fraction=.1,
                    train_mm_fraction=.1)
    table = format_table([record('hatnet', 1., 50.),
                          record('release_baseline', 2., 100.)])
    hatnet_row = table.splitlines()[2].split()
    assert hatnet_row[0] == 'hatnet'
    assert hatnet_row[3:5] == ['2.00', '2.000']  # fwd x, then train s
    assert '0.50' in hatnet_row


@pytest.mark.e2e
def test_cli_writes_one_record_per_model(tmp_path):
    path = tmp_path / 'bench.json'
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'benchmark.py'),
         '--arch', 'tiny', '--shape', '32', '48', '--repeats', '1',
         '--json', str(path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert 'release_baseline' in run.stdout
    records = json.loads(path.read_text())
    assert [r['name'] for r in records] == [
        'hatnet', 'release_baseline', 'pvtv2_b2', 'swin_t']
    for r in records:
        for key in ('forward_s', 'train_step_s', 'peak_mem_mb',
                    'forward_flops', 'train_flops', 'train_step_cpu_s'):
            assert r[key] > 0, (r['name'], key)
        assert r['shape'] == [32, 48] and r['batch'] == 1


@pytest.mark.parametrize('flag', ['--repeats', '--batch'])
def test_cli_refuses_a_count_below_one(flag):
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'benchmark.py'),
         '--shape', '32', '32', flag, '0'], capture_output=True, text=True,
        timeout=300)
    assert run.returncode == 2
    assert f'{flag} must be at least 1, got 0' in run.stderr


class _DtypeProbe(torch.nn.Module):
    """Records the dtype its linear layer computes in, and whether a
    gradient mode was on."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 4)
        self.seen = set()

    def forward(self, x):
        out = self.linear(x.mean((2, 3)))
        self.seen.add((out.dtype, torch.is_grad_enabled()))
        return out


@pytest.mark.parametrize('amp', [None, torch.bfloat16])
def test_amp_runs_every_forward_in_its_dtype(amp):
    probe = _DtypeProbe()
    record, = run_benchmark({'probe': probe}, (8, 8), repeats=1, amp=amp)
    dtype = amp or torch.float32
    # no-grad forwards and training forwards alike, in the amp dtype
    assert probe.seen == {(dtype, False), (dtype, True)}
    assert probe.linear.weight.grad is None  # cleared after each step
    assert probe.linear.weight.dtype == torch.float32
    assert record['amp'] == (None if amp is None else 'bfloat16')
    assert record['train_step_s'] > 0 and record['train_flops'] > 0
    precision = 'bfloat16' if amp else 'fp32'
    assert format_table([record]).endswith(f'dense {precision} matmul')


def test_cli_refuses_amp_with_convffn():
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'benchmark.py'),
         '--convffn', '8', '2', '--shape', '8', '8', '--amp'],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert '--amp times the whole models' in run.stderr


def test_convffn_bands_compares_banded_with_unbanded():
    # bands of 2 rows: the banded ConvFFN never holds a whole temporary
    # E*C-channel map, the unbanded one does; the peaks tell them apart
    with row_bands(1, min_rows=2):
        records = convffn_bands(8, 4, (32, 24), repeats=1)
    banded, unbanded = records
    assert (banded['name'], unbanded['name']) == ('convffn_banded',
                                                  'convffn_unbanded')
    assert banded['peak_mem_mb'] < unbanded['peak_mem_mb']
    for r in records:
        assert r['forward_s'] > 0 and r['train_step_s'] > 0
    assert 'convffn_unbanded' in format_bands(records)


@pytest.mark.deploy
def test_onnx_latency_times_eager_and_onnxruntime_on_one_input():
    arch = dict(embed_dims=(16, 32, 48, 64), depths=(1, 1, 1, 1),
                expansions=(2, 2, 2, 2), kernel_sizes=(3, 3, 3, 3),
                head_dim=16)
    records = onnx_latency(HATNet(arch), (40, 56), repeats=1)
    assert [r['name'] for r in records] == ['eager',
                                            'onnxruntime (torchscript)']
    for r in records:
        assert r['forward_s'] > 0 and r['shape'] == [40, 56]
    # the timed graph computes the eager outputs
    assert records[1]['max_rel'] < 1e-4
    lines = format_onnx(records).splitlines()
    assert lines[0].startswith('eager') and '(1.00x)' in lines[0]


@pytest.mark.deploy
def test_cli_refuses_onnx_off_cpu():
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'benchmark.py'),
         '--shape', '32', '32', '--onnx', '--device', 'cuda'],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert 'error' in run.stderr and 'cuda' in run.stderr
