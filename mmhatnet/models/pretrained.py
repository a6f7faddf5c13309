"""``init_cfg=dict(type='Pretrained', ...)`` for HATNet: every backbone
parameter loaded, exactly, or an error that says what to do.

mmengine's ``Pretrained`` loads with ``strict=False`` and reports missing
or mis-shaped keys only as a log warning, so a wrong file trains from
random weights. HATNet's ``init_weights`` calls :func:`load_pretrained`
instead, so ``tools/train.py``, ``mim train``, the toolboxes' own tools and
their inferencers all get it. It accepts the layouts the weights come in:
the state dict bare or under 'model' / 'state_dict', keys with a DDP
``module.`` prefix, the converted file (``backbone.*``, ``prefix='backbone.'``)
and the authors' raw release, converted on the fly. Anything else raises a
:class:`CheckpointError` naming the file's top-level keys, its key
prefixes, the HAT-Net variant its shapes fit, and the fix.
"""
from __future__ import annotations

import os

import torch
from mmengine.logging import print_log
from torch import nn

from ..engine.safe_load import CheckpointError, load_untrusted, state_dict_of

# ckpt_convert and hatnet import each other's modules through this one:
# their names are imported where used.

CONVERT = 'python tools/convert_official.py HAT-Net_<Arch>.pth {dst}'
#: the authors' release, as configs/_base_/hatnet_backbone.py names it
RELEASE_URL = ('https://github.com/yun-liu/HAT-Net/releases/download/v2.0/'
               'HAT-Net_<Arch>.pth')


def missing_pretrained_message(path: str, where: str) -> str:
    """The error for a local pretrained file that does not exist."""
    return (f'{where} {path!r} does not exist. Convert the released weights '
            f'there with `{CONVERT.format(dst=path)}` or copy the release '
            f'file there as it is (both load), point it at the release '
            f'({RELEASE_URL}) or elsewhere, or train from scratch with '
            f'init_cfg=None (tools/train.py: --cfg-options '
            f'model.backbone.init_cfg=None)')


def _prefixes(state_dict: dict) -> str:
    counts: dict = {}
    for key in state_dict:
        head = key.split('.', 1)[0] + '.' if '.' in key else key
        counts[head] = counts.get(head, 0) + 1
    return ', '.join(f'{k!r} ({n} keys)' for k, n in
                     sorted(counts.items(), key=lambda kv: -kv[1])[:6])


def _problems(state_dict: dict, layout: dict) -> list:
    from .ckpt_convert import layout_problems
    return layout_problems(state_dict, layout)


def _count(problems: list) -> int:
    """The number of keys in ``layout_problems``' report."""
    return sum(int(p.split()[0]) for p in problems)


def _fitting_arch(state_dict: dict) -> str | None:
    """The HAT-Net variant whose backbone keys and shapes ``state_dict``
    has exactly, or None."""
    from .ckpt_convert import RELEASE_ARCHS, layout_problems
    from .hatnet import HATNet
    for arch in RELEASE_ARCHS:
        with torch.device('meta'):
            layout = {k: tuple(v.shape)
                      for k, v in HATNet(arch).state_dict().items()}
        if not layout_problems(state_dict, layout):
            return arch
    return None


def _candidates(state_dict: dict, prefix: str | None) -> list:
    """(description, backbone state dict) readings of ``state_dict``."""
    from .ckpt_convert import convert_official
    readings = []
    if prefix:
        picked = {k[len(prefix):]: v for k, v in state_dict.items()
                  if k.startswith(prefix)}
        readings.append((f'keys under prefix {prefix!r}', picked))
    else:
        readings.append(('its keys as they are', state_dict))
    try:
        _, converted = convert_official(state_dict)
    except CheckpointError:
        pass
    else:  # the authors' release: convert it as the converter would
        readings.append(('the release layout, converted', {
            k[len('backbone.'):]: v for k, v in converted.items()
            if k.startswith('backbone.')}))
    return readings


def load_pretrained(model: nn.Module, checkpoint: str,
                    prefix: str | None = None,
                    map_location: str = 'cpu') -> None:
    """Load every parameter and buffer of ``model`` from ``checkpoint``
    exactly (see the module docstring), or raise CheckpointError."""
    if '://' not in checkpoint and not os.path.isfile(checkpoint):
        raise CheckpointError(missing_pretrained_message(
            checkpoint, 'init_cfg.checkpoint'))
    # a path or a URL (downloaded once to torch hub's cache), tensors only
    obj = load_untrusted(checkpoint, map_location, weights_only=True)
    top = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
    try:
        state_dict = state_dict_of(obj, checkpoint)
    except CheckpointError as e:
        raise CheckpointError(
            f'{e}; its top-level keys are {top}. Convert the released '
            f'weights with `{CONVERT.format(dst="out.pth")}`') from None
    if state_dict and all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}

    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    readings = _candidates(state_dict, prefix)
    for how, candidate in readings:
        if not _problems(candidate, expected):
            model.load_state_dict(candidate, strict=True)
            print_log(f'HATNet: loaded all {len(expected)} backbone tensors '
                      f'from {checkpoint} ({how})', logger='current')
            return

    how, best = min(readings, key=lambda r: _count(
        _problems(r[1], expected)))
    fits = _fitting_arch(best)
    fixes = []
    if fits is not None:
        fixes.append(f"its shapes fit arch='{fits}': set "
                     f"model.backbone.arch='{fits}' or use the "
                     f'{fits.capitalize()} weights')
    heads = {k.split('.', 1)[0] + '.' for k in state_dict if '.' in k}
    if 'backbone.' in heads and prefix != 'backbone.':
        fixes.append("set init_cfg.prefix='backbone.'")
    if not fixes:
        fixes.append(f'convert the authors\' release with '
                     f'`{CONVERT.format(dst="out.pth")}` and point '
                     f"init_cfg.checkpoint there with prefix='backbone.'")
    raise CheckpointError(
        f'{checkpoint} does not fit this HATNet backbone, so it is not '
        f'loaded. The file holds top-level keys {top}; its state dict has '
        f'{len(state_dict)} tensors with prefixes {_prefixes(state_dict)}. '
        f'Read as {how}: ' + '; '.join(_problems(best, expected)) +
        '. Fix: ' + '; or '.join(fixes))
