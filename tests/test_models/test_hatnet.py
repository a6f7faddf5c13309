import json
import os
import re

import pytest
import torch
import torch.utils.checkpoint

from mmhatnet import HATNet
from mmhatnet.analysis.release import (random_release_state_dict,
                                       release_forward, release_logits)
from mmhatnet.engine import save_checkpoint
from mmhatnet.models.ckpt_convert import convert_official, release_layout

# every key and shape of the released checkpoints, per variant
REFERENCE = os.path.join(os.path.dirname(__file__), '..', 'data',
                         'official_state_dict_keys.json')
ARCHS = ('tiny', 'small', 'medium', 'large')
DIMS = dict(tiny=(48, 96, 240, 384), small=(64, 128, 320, 512),
            medium=(64, 128, 320, 512), large=(64, 128, 320, 640))


def _official_layout(arch):
    with open(REFERENCE) as f:
        return {k: tuple(s) for k, s in json.load(f)[arch]}


@pytest.mark.parametrize('arch', ARCHS)
def test_layout_and_parameters_match_the_release(arch):
    official = _official_layout(arch)
    assert release_layout(HATNet, arch) == official
    model = HATNet(arch)
    ours = sum(p.numel() for p in model.parameters())
    proj_norm = sum(torch.Size(s).numel() for k, s in official.items()
                    if '.attn.proj_norm.' in k)
    classifier = sum(torch.Size(s).numel() for k, s in official.items()
                     if k.startswith('classifier.'))
    release = sum(torch.Size(s).numel() for s in official.values())
    assert ours == release - proj_norm - classifier
    # the release's own count, measured with its code (HATNET.md)
    expected_m = dict(tiny=12.66, small=25.75, medium=42.94, large=63.13)
    assert round(release / 1e6, 2) == expected_m[arch]


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('size', [(224, 224), (512, 512), (800, 1333),
                                  (333, 517), (31, 47)])
def test_stage_shapes(arch, size):
    with torch.device('meta'):
        model = HATNet(arch)
        feats = model(torch.empty(2, 3, *size))
    h, w = (size[0] + 3) // 4, (size[1] + 3) // 4  # two stride-2 convs
    for i, f in enumerate(feats):
        if i:
            h, w = (h + 1) // 2, (w + 1) // 2
        assert f.shape == (2, DIMS[arch][i], h, w)
    assert model.out_channels == DIMS[arch]


@pytest.mark.parametrize('size', [(31, 47), (32, 32), (57, 75)])
def test_small_and_odd_inputs_compute(size):
    model = HATNet('tiny', out_indices=(1, 3)).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, *size))
    assert len(feats) == 2 and all(f.isfinite().all() for f in feats)
    assert model.out_channels == (96, 384)


def _converted(arch, seed=0):
    sd = random_release_state_dict(release_layout(HATNet, arch), seed)
    name, converted = convert_official(sd, HATNet)
    assert name == arch
    backbone = {k[len('backbone.'):]: v for k, v in converted.items()
                if k.startswith('backbone.')}
    return sd, backbone, converted


def test_imagenet_logits_match_the_release_computation():
    sd, backbone, converted = _converted('tiny')
    model = HATNet('tiny', grid_sizes=(8, 7, 7), pool_ratios=(8, 4, 2),
                   out_indices=(3, )).eval()
    model.load_state_dict(backbone)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        feat, = model(x)
        logits = torch.nn.functional.linear(feat.mean((2, 3)),
                                            converted['head.fc.weight'],
                                            converted['head.fc.bias'])
        feats = release_forward(sd, x, 48, (8, 7, 7), (8, 4, 2))
        ref = release_logits(sd, feats[-1])
    torch.testing.assert_close(logits, ref, rtol=1e-4, atol=1e-4)


def test_dense_features_match_the_release_computation():
    sd, backbone, _ = _converted('small')
    model = HATNet('small').eval()  # 8,8,8 / 16,8,4
    model.load_state_dict(backbone)
    x = torch.randn(1, 3, 512, 512)
    with torch.no_grad():
        feats = model(x)
        ref = release_forward(sd, x, 64, (8, 8, 8), (16, 8, 4))
    for ours, theirs in zip(feats, ref):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_trains_and_infers_at_an_odd_size():
    """333x517, where G1 divides no stage's map (padded and masked): the
    features are the release's computation, and a training step reaches
    and changes every parameter."""
    sd, backbone, _ = _converted('tiny')
    # no drop path: a dropped block would rightly get no gradient
    model = HATNet('tiny', drop_path_rate=0.)
    model.load_state_dict(backbone)
    x = torch.randn(1, 3, 333, 517)
    with torch.no_grad():
        feats = model.eval()(x)
        ref = release_forward(sd, x, 48, model.grid_sizes[:3],
                              model.pool_ratios[:3])
    for ours, theirs in zip(feats, ref):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    loss = sum(f.square().mean() for f in model.train()(x))
    loss.backward()
    optimizer.step()
    assert loss.isfinite()
    for (name, p), old in zip(model.named_parameters(), before):
        assert p.grad is not None and p.grad.isfinite().all(), name
        assert not torch.equal(p, old), name


def test_pretrained_init_cfg_loads_converted_weights(tmp_path):
    _, backbone, converted = _converted('tiny', seed=1)
    path = str(tmp_path / 'hatnet_tiny.pth')
    save_checkpoint(dict(state_dict=converted), path)
    model = HATNet('tiny', init_cfg=dict(type='Pretrained', checkpoint=path,
                                         prefix='backbone.'))
    model.init_weights()
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, backbone[k], rtol=0, atol=0)


def test_default_init_is_the_releases():
    model = HATNet('tiny')
    model.init_weights()
    assert model.blocks[0][0].attn.qkv.bias.abs().max() == 0
    assert model.ds2.norm.weight.eq(1).all()
    std = model.blocks[2][0].conv.conv1[1].weight.std().item()
    assert 0.015 < std < 0.025


def test_with_cp_gives_the_same_gradients(monkeypatch):
    calls = []
    checkpoint = torch.utils.checkpoint.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return checkpoint(*args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, 'checkpoint', counting)
    plain = HATNet('tiny', drop_path_rate=0.)
    ckpt = HATNet('tiny', drop_path_rate=0., with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 96)  # the input needs no grad
    grads = []
    for model in (plain, ckpt):
        sum(f.square().mean() for f in model(x)).backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
    assert len(calls) == sum(plain.arch['depths'])
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize('frozen_stages', [0, 2])
def test_frozen_stages(frozen_stages):
    model = HATNet('tiny', frozen_stages=frozen_stages)
    model.train()
    sum(f.mean() for f in model(torch.randn(1, 3, 64, 64))).backward()
    for i in range(4):
        frozen = i <= frozen_stages
        for module in model.stage_modules(i):
            for m in module.modules():
                assert m.training is not frozen
            for p in module.parameters():
                assert p.requires_grad is not frozen
                assert (p.grad is None) is frozen


def test_drop_path_rises_linearly():
    model = HATNet('tiny', drop_path_rate=0.2)
    rates = [b.drop_path.drop_prob for stage in model.blocks[1:]
             for b in stage]
    assert isinstance(model.blocks[0][0].drop_path, torch.nn.Identity)
    assert rates[-1] == pytest.approx(0.2) and rates == sorted(rates)


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='huge'), "unknown HATNet arch 'huge'; choose one of "
     r"\['l', 'large', 'm', 'medium', 's', 'small', 't', 'tiny'\]"),
    (dict(arch=dict(embed_dims=(64, 128, 320, 512))), 'missing'),
    (dict(arch=dict(embed_dims=(60, 128, 320, 512), depths=(1, 1, 1, 1),
                    expansions=(4, ) * 4, kernel_sizes=(3, ) * 4,
                    head_dim=64)),
     r'embed_dims\[0\] = 60 is not a multiple of head_dim = 64'),
    (dict(grid_sizes=(8, 8)), r'grid_sizes needs 3 values \(one per '
     r'stage\), got 2'),
    (dict(pool_ratios=(16, 0, 4)), r'pool_ratios values must be >= 1, '
     r'got \(16, 0, 4\)'),
    (dict(grid_sizes=(8, 8.5, 8)), 'grid_sizes must be a sequence of ints'),
    (dict(out_indices=(0, 4)), r'out_indices values must be in \[0, 3\]'),
    (dict(frozen_stages=4), r'frozen_stages must be in \[-1, 3\], got 4'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HATNet(**kwargs)


@pytest.mark.parametrize('shape', [(3, 64, 64), (1, 1, 64, 64)])
def test_bad_input_is_named(shape):
    message = f'expects an (N, 3, H, W) tensor, got shape {shape}'
    with pytest.raises(ValueError, match=re.escape(message)):
        HATNet('tiny')(torch.randn(shape))


def test_custom_arch_dict():
    arch = dict(embed_dims=(32, 64, 96, 128), depths=(1, 1, 2, 1),
                expansions=(2, 2, 2, 2), kernel_sizes=(3, 5, 3, 3),
                head_dim=32)
    model = HATNet(arch, out_indices=(2, 3))
    feats = model(torch.randn(1, 3, 96, 64))
    assert [f.shape[1] for f in feats] == [96, 128]
