"""mmhatnet.analysis.release: the one reference computation of the
authors' release (its exactness against mmhatnet is tested in
tests/test_models/test_hatnet.py) and the loader of their own file."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mmhatnet import HATNet
from mmhatnet.analysis.release import (ReleaseBaseline, load_release_code,
                                       release_code_size_error)

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
# the common stack runs these for the Python 3.8 one (pytest.ini)
pytestmark = pytest.mark.torch_mmengine


@pytest.mark.parametrize('size', [(64, 96), (72, 104)],
                         ids=['divisible', 'padded'])
def test_baseline_computes_what_hatnet_computes(size):
    """The benchmark compares like with like: same outputs, same grads."""
    net = HATNet('tiny', drop_path_rate=0.)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    baseline = ReleaseBaseline(net)
    assert list(baseline.parameters()) == list(net.parameters())
    x = torch.randn(1, 3, *size)
    results = []
    for model in (net, baseline):
        net.zero_grad(set_to_none=True)
        outs = model(x)
        sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum()
            for o in outs).backward()
        results.append((outs, [p.grad for p in net.parameters()]))
    (outs, grads), (ref_outs, ref_grads) = results
    torch.testing.assert_close(outs, ref_outs, rtol=1e-4, atol=1e-4)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_drop_path_is_the_networks_in_training():
    net = HATNet('tiny', drop_path_rate=0.5).train()
    baseline = ReleaseBaseline(net).train()
    x = torch.randn(4, 3, 32, 32)
    torch.manual_seed(1)
    a = baseline(x)
    torch.manual_seed(2)
    b = baseline(x)
    assert not torch.allclose(a[-1], b[-1])  # samples dropped at random
    baseline.eval()
    torch.testing.assert_close(baseline(x), ReleaseBaseline(net).eval()(x))


def test_release_code_runs_only_where_g1_divides():
    net = HATNet('small')  # G1 8, 8, 8
    assert release_code_size_error(net, (512, 512)) is None
    assert release_code_size_error(net, (800, 1344)) == (
        'stage 2 of a 800x1344 input is 100x168, which G1 = 8 does not '
        "divide; the release's code reshapes by H // G1 and cannot run it")


def test_authors_file_gets_timm_stand_ins(tmp_path, monkeypatch):
    """The authors' HAT_Net.py imports four timm names; without timm they
    are mmcv's DropPath, mmengine's trunc_normal_ and no-op helpers."""
    monkeypatch.setitem(sys.modules, 'timm', None)  # as if not installed
    path = tmp_path / 'HAT_Net.py'
    path.write_text(textwrap.dedent('''
        from timm.models.layers import DropPath, trunc_normal_
        from timm.models.registry import register_model
        from timm.models.vision_transformer import _cfg

        @register_model
        def HAT_Net(**kwargs):
            return DropPath, trunc_normal_, _cfg(url='')
    '''))
    module = load_release_code(str(path))
    drop_path, init, cfg = module.HAT_Net()
    from mmcv.cnn.bricks import DropPath
    from mmengine.model.weight_init import trunc_normal_
    assert drop_path is DropPath and init is trunc_normal_
    assert cfg == {'url': ''}
    assert 'timm.models' not in sys.modules  # the stand-ins are gone
    other = tmp_path / 'other.py'
    other.write_text('x = 1\n')
    with pytest.raises(ValueError, match='defines no HAT_Net class'):
        load_release_code(str(other))


def test_benchmark_cli_refuses_release_code_where_it_cannot_run(tmp_path):
    run = subprocess.run(
        [sys.executable, f'{ROOT}/tools/benchmark.py', '--shape', '800',
         '1344', '--release-code', str(tmp_path / 'HAT_Net.py')],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert 'stage 2 of a 800x1344 input is 100x168' in run.stderr
