"""Converting the authors' release to an OpenMMLab checkpoint.

The release (``HAT-Net_{Tiny,Small,Medium,Large}.pth``) is a state dict of
the timm-style classifier, bare or under 'model' / 'state_dict'. Converted,
it is an OpenMMLab checkpoint: ``backbone.*`` (names unchanged, the unused
``attn.proj_norm`` dropped) and ``head.fc.*`` (the release's
``classifier.1``).
"""
from __future__ import annotations

import os

import torch

from ..engine.fileio import save_checkpoint
from ..engine.safe_load import CheckpointError, load_untrusted, state_dict_of
from .hatnet import HATNet

RELEASE_ARCHS = ('tiny', 'small', 'medium', 'large')
_UNUSED = '.attn.proj_norm.'
_CLASSIFIER = 'classifier.1.'


def release_layout(arch: str, num_classes: int = 1000) -> dict:
    """Key -> shape of the authors' release of ``arch``."""
    with torch.device('meta'):
        model = HATNet(arch)
    layout = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for name, module in model.named_modules():
        if name.endswith('.attn'):
            dim = module.proj.out_channels
            layout[f'{name}.proj_norm.weight'] = (dim, )
            layout[f'{name}.proj_norm.bias'] = (dim, )
    dim = model.arch['embed_dims'][-1]
    layout[_CLASSIFIER + 'weight'] = (num_classes, dim)
    layout[_CLASSIFIER + 'bias'] = (num_classes, )
    return layout


def layout_problems(state_dict: dict, layout: dict) -> list[str]:
    """What keeps ``state_dict`` from having ``layout``; [] if nothing."""
    missing = sorted(set(layout) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(layout))
    misshaped = sorted(
        f'{k}: {tuple(state_dict[k].shape)}, expected {layout[k]}'
        for k in set(layout) & set(state_dict)
        if tuple(state_dict[k].shape) != layout[k])
    problems = []
    for what, items in (('missing', missing), ('unexpected', unexpected),
                        ('mis-shaped', misshaped)):
        if items:
            shown = ', '.join(items[:8])
            more = f' and {len(items) - 8} more' if len(items) > 8 else ''
            problems.append(f'{len(items)} {what}: {shown}{more}')
    return problems


def convert_official(state_dict: dict,
                     arch: str | None = None) -> tuple[str, dict]:
    """Check a release state dict against ``arch`` (detected when None) and
    return ``(arch, converted state dict)``."""
    if any(k.startswith('backbone.') for k in state_dict):
        raise CheckpointError(
            'this state dict has backbone.* keys: it is already converted')
    bias = state_dict.get(_CLASSIFIER + 'bias')
    num_classes = bias.shape[0] if bias is not None else 1000
    candidates = list(RELEASE_ARCHS)
    if arch is not None:
        full = {n[0]: n for n in RELEASE_ARCHS}.get(arch.lower(), arch.lower())
        if full not in RELEASE_ARCHS:
            raise CheckpointError(f'unknown release arch {arch!r}; choose '
                                  f'one of {list(RELEASE_ARCHS)}')
        candidates = [full]
    report = {}
    for name in candidates:
        problems = layout_problems(state_dict,
                                   release_layout(name, num_classes))
        if not problems:
            break
        report[name] = problems
    else:
        # the variant with the fewest problems is the one the user meant
        name = min(report, key=lambda n: sum(
            int(p.split()[0]) for p in report[n]))
        raise CheckpointError(
            f'not a HAT-Net {name} release checkpoint '
            f'(closest of {", ".join(candidates)}): ' +
            '; '.join(report[name]))
    converted = {}
    for key, value in state_dict.items():
        if _UNUSED in key:
            continue
        if key.startswith(_CLASSIFIER):
            converted['head.fc.' + key[len(_CLASSIFIER):]] = value
        else:
            converted['backbone.' + key] = value
    return name, converted


def convert_file(src: str, dst: str, arch: str | None = None) -> str:
    """Convert the release file ``src`` to the OpenMMLab checkpoint ``dst``;
    returns the arch."""
    state_dict = state_dict_of(load_untrusted(src, weights_only=True), src)
    arch, converted = convert_official(state_dict, arch)
    meta = dict(arch=arch, source=os.path.basename(src),
                converted_by='mmhatnet tools/convert_official.py')
    save_checkpoint(dict(state_dict=converted, meta=meta), dst)
    return arch
