"""mmhatnet.models.pretrained: ``init_cfg=dict(type='Pretrained')`` loads
every backbone tensor exactly, or raises with the fix."""
import functools
import os

import pytest
import torch

from mmhatnet import HATNet
from mmhatnet.analysis.release import random_release_state_dict
from mmhatnet.engine import CheckpointError
from mmhatnet.models.ckpt_convert import convert_official, release_layout


@functools.lru_cache(maxsize=None)
def _release(arch, seed=0):
    """A random state dict in the authors' release layout, and its backbone
    part as HATNet names it."""
    sd = random_release_state_dict(release_layout(HATNet, arch), seed)
    _, converted = convert_official(sd, HATNet)
    backbone = {k[len('backbone.'):]: v for k, v in converted.items()
                if k.startswith('backbone.')}
    return sd, converted, backbone


def _init(tmp_path, content, arch='tiny', **pretrained):
    path = str(tmp_path / 'weights.pth')
    torch.save(content, path)
    model = HATNet(arch, init_cfg=dict(type='Pretrained', checkpoint=path,
                                       **pretrained))
    model.init_weights()
    return model


def _assert_equal(model, backbone):
    state = model.state_dict()
    assert set(state) == set(backbone)
    for k, v in state.items():
        assert torch.equal(v, backbone[k]), k


@pytest.mark.parametrize('layout, prefix', [
    ('release under model', 'backbone.'), ('release under model', None),
    ('release bare', 'backbone.'), ('release bare', None),
    ('converted under state_dict', 'backbone.'),
    ('converted with module.', 'backbone.')])
def test_accepted_layouts_load_exactly(tmp_path, layout, prefix):
    sd, converted, backbone = _release('tiny', seed=1)
    content = {
        'release under model': {'model': sd},
        'release bare': sd,
        'converted under state_dict': {'state_dict': converted},
        'converted with module.': {'state_dict': {
            'module.' + k: v for k, v in converted.items()}},
    }[layout]
    _assert_equal(_init(tmp_path, content, prefix=prefix), backbone)


def test_converted_file_without_prefix_names_the_prefix(tmp_path):
    _, converted, _ = _release('tiny')
    with pytest.raises(CheckpointError) as e:
        _init(tmp_path, {'state_dict': converted, 'meta': {}})
    text = str(e.value)
    assert "top-level keys ['meta', 'state_dict']" in text
    assert "'backbone.' (" in text and "'head.' (2 keys)" in text
    assert "set init_cfg.prefix='backbone.'" in text


@pytest.mark.parametrize('layout', ['release', 'converted'])
def test_other_variants_weights_name_the_arch(tmp_path, layout):
    sd, converted, _ = _release('tiny')
    content = {'model': sd} if layout == 'release' else converted
    with pytest.raises(CheckpointError) as e:
        _init(tmp_path, content, arch='small', prefix='backbone.')
    text = str(e.value)
    assert 'mis-shaped' in text or 'missing' in text
    assert "its shapes fit arch='tiny': set model.backbone.arch='tiny'" \
        in text


def test_half_the_keys_is_refused_with_the_converter(tmp_path):
    _, converted, _ = _release('tiny')
    keys = sorted(converted)
    half = {k: converted[k] for k in keys[::2]}
    with pytest.raises(CheckpointError) as e:
        _init(tmp_path, {'state_dict': half}, prefix='backbone.')
    text = str(e.value)
    assert 'does not fit this HATNet backbone' in text
    assert 'missing' in text
    assert 'python tools/convert_official.py HAT-Net_<Arch>.pth' in text


def test_missing_file_says_what_to_do(tmp_path):
    path = str(tmp_path / 'nope.pth')
    model = HATNet('tiny', init_cfg=dict(type='Pretrained', checkpoint=path,
                                         prefix='backbone.'))
    with pytest.raises(CheckpointError, match=f"{path}' does not exist.*"
                       'tools/convert_official.py'):
        model.init_weights()


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_code_running_pickle_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    with pytest.raises(CheckpointError, match='refused'):
        _init(tmp_path, {'state_dict': {'w': _Exploit(marker)}},
              prefix='backbone.')
    assert not marker.exists()
