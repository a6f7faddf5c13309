"""mmhatnet.models.ckpt_convert and tools/convert_official.py."""
import os
import runpy
import subprocess
import sys

import pytest
import torch

from mmhatnet import HATNet
from mmhatnet.analysis.release import random_release_state_dict
from mmhatnet.engine import CheckpointError
from mmhatnet.models.ckpt_convert import convert_official, release_layout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, 'tools', 'convert_official.py')
# the file I/O around the converter lives in the tool
convert_file = runpy.run_path(TOOL)['convert_file']


@pytest.fixture(scope='module')
def tiny_release():
    return random_release_state_dict(release_layout(HATNet, 'tiny'))


@pytest.mark.parametrize('wrap', ['bare', 'model', 'state_dict'])
def test_round_trip(tmp_path, tiny_release, wrap):
    src, dst = tmp_path / 'HAT-Net_Tiny.pth', tmp_path / 'out' / 'tiny.pth'
    torch.save(tiny_release if wrap == 'bare' else {wrap: tiny_release}, src)
    assert convert_file(str(src), str(dst)) == 'tiny'
    out = torch.load(dst, weights_only=True)
    assert out['meta']['arch'] == 'tiny'
    sd = out['state_dict']
    kept = {k: v for k, v in tiny_release.items() if 'proj_norm' not in k}
    assert len(sd) == len(kept) and len(kept) < len(tiny_release)
    for k, v in kept.items():
        new = ('head.fc.' + k[len('classifier.1.'):]
               if k.startswith('classifier.1.') else 'backbone.' + k)
        assert torch.equal(sd[new], v)
    assert not list(dst.parent.glob('*.tmp'))


def test_variant_is_detected_and_checked():
    sd = random_release_state_dict(release_layout(HATNet, 'small'))
    assert convert_official(sd, HATNet)[0] == 'small'
    assert convert_official(sd, HATNet, 's')[0] == 'small'
    with pytest.raises(CheckpointError, match='not a HAT-Net medium release '
                       r'checkpoint .* missing: blocks\.0\.2\.'):
        convert_official(sd, HATNet, 'medium')


def test_wrong_layout_lists_the_problems(tiny_release):
    sd = dict(tiny_release)
    del sd['ds2.norm.bias']
    sd['blocks.0.0.attn.qkv.weight'] = torch.zeros(3, 3)
    sd['extra.weight'] = torch.zeros(1)
    with pytest.raises(CheckpointError) as e:
        convert_official(sd, HATNet)
    msg = str(e.value)
    assert 'not a HAT-Net tiny release checkpoint' in msg
    assert '1 missing: ds2.norm.bias' in msg
    assert '1 unexpected: extra.weight' in msg
    assert ('1 mis-shaped: blocks.0.0.attn.qkv.weight: (3, 3), expected '
            '(144, 48, 1, 1)') in msg


def test_converted_input_is_refused(tiny_release):
    _, converted = convert_official(tiny_release, HATNet)
    with pytest.raises(CheckpointError, match='already converted'):
        convert_official(converted, HATNet)


def test_checkpoint_without_state_dict(tmp_path):
    path = tmp_path / 'x.pth'
    torch.save({'epoch': 3}, path)
    with pytest.raises(CheckpointError, match='holds no state dict'):
        convert_file(str(path), str(tmp_path / 'y.pth'))


def test_command_line(tmp_path, tiny_release):
    src, dst = tmp_path / 'in.pth', tmp_path / 'out.pth'
    torch.save(tiny_release, src)
    ok = subprocess.run([sys.executable, TOOL, str(src), str(dst)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert 'HAT-Net tiny' in ok.stdout and dst.exists()
    bad = subprocess.run(
        [sys.executable, TOOL, str(src), str(dst), '--arch', 'large'],
        capture_output=True, text=True)
    assert bad.returncode == 2
    assert 'error: not a HAT-Net large release checkpoint' in bad.stderr
