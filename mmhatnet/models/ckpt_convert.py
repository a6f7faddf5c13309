"""Converting the authors' release to an OpenMMLab checkpoint: a state dict
in, a state dict out (``tools/convert_official.py`` reads and writes the
files; :mod:`.pretrained` converts a release on the fly).

The release (``HAT-Net_{Tiny,Small,Medium,Large}.pth``) is a state dict of
the timm-style classifier, bare or under 'model' / 'state_dict'. Converted,
it is an OpenMMLab checkpoint: ``backbone.*`` (names unchanged, the unused
``attn.proj_norm`` dropped) and ``head.fc.*`` (the release's
``classifier.1``).

The layouts are those of the backbone class the caller passes (``HATNet``;
the loader passes its model's class), built on the meta device, as timm's
``checkpoint_filter_fn`` takes the model: this module imports no network,
so the network can load release weights through it.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..engine.safe_load import CheckpointError

RELEASE_ARCHS = ('tiny', 'small', 'medium', 'large')
_UNUSED = '.attn.proj_norm.'
_CLASSIFIER = 'classifier.1.'
_SHOWN = 8  # keys listed per kind of problem


def meta_backbone(backbone: type[nn.Module], arch: str) -> nn.Module:
    """``backbone(arch)`` built on the meta device: its layout and
    attributes, without memory or initialisation."""
    with torch.device('meta'):
        return backbone(arch)


def state_layout(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Key -> shape of ``model``'s state dict."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def release_layout(backbone: type[nn.Module], arch: str,
                   num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the authors' release of ``arch``."""
    model = meta_backbone(backbone, arch)
    layout = state_layout(model)
    for name, module in model.named_modules():
        if name.endswith('.attn'):
            dim = module.proj.out_channels
            layout[f'{name}.proj_norm.weight'] = (dim, )
            layout[f'{name}.proj_norm.bias'] = (dim, )
    dim = model.arch['embed_dims'][-1]
    layout[_CLASSIFIER + 'weight'] = (num_classes, dim)
    layout[_CLASSIFIER + 'bias'] = (num_classes, )
    return layout


@dataclasses.dataclass(frozen=True)
class LayoutProblems:
    """What keeps a state dict from having a layout: the keys missing, the
    keys unexpected and, for each mis-shaped key, ``(key, shape, expected
    shape)``. Its length is the number of keys with a problem, so it is
    false when there is none."""
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    misshaped: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()

    def __len__(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.misshaped)

    def __str__(self) -> str:
        """'2 missing: a, b; 1 mis-shaped: c: (3, 3), expected (4, 3)',
        at most 8 keys of each kind."""
        parts = []
        misshaped = [f'{k}: {got}, expected {want}'
                     for k, got, want in self.misshaped]
        for what, items in (('missing', self.missing),
                            ('unexpected', self.unexpected),
                            ('mis-shaped', misshaped)):
            if items:
                more = len(items) - _SHOWN
                parts.append(f'{len(items)} {what}: '
                             f'{", ".join(items[:_SHOWN])}'
                             + (f' and {more} more' if more > 0 else ''))
        return '; '.join(parts)


def layout_problems(state_dict: dict, layout: dict) -> LayoutProblems:
    """What keeps ``state_dict`` from having ``layout`` (key -> shape)."""
    shared = sorted(set(layout) & set(state_dict))
    return LayoutProblems(
        missing=tuple(sorted(set(layout) - set(state_dict))),
        unexpected=tuple(sorted(set(state_dict) - set(layout))),
        misshaped=tuple((k, tuple(state_dict[k].shape), tuple(layout[k]))
                        for k in shared
                        if tuple(state_dict[k].shape) != tuple(layout[k])))


def fitting_arch(state_dict: dict, backbone: type[nn.Module]) -> str | None:
    """The release variant whose ``backbone`` keys and shapes
    ``state_dict`` has exactly, or None."""
    for arch in RELEASE_ARCHS:
        layout = state_layout(meta_backbone(backbone, arch))
        if not layout_problems(state_dict, layout):
            return arch
    return None


def convert_official(state_dict: dict, backbone: type[nn.Module],
                     arch: str | None = None) -> tuple[str, dict]:
    """Check a release state dict against ``backbone``'s ``arch`` (detected
    when None) and return ``(arch, converted state dict)``."""
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
        problems = layout_problems(
            state_dict, release_layout(backbone, name, num_classes))
        if not problems:
            break
        report[name] = problems
    else:
        # the variant with the fewest problems is the one the user meant
        name = min(report, key=lambda n: len(report[n]))
        raise CheckpointError(
            f'not a HAT-Net {name} release checkpoint '
            f'(closest of {", ".join(candidates)}): {report[name]}')
    converted = {}
    for key, value in state_dict.items():
        if _UNUSED in key:
            continue
        if key.startswith(_CLASSIFIER):
            converted['head.fc.' + key[len(_CLASSIFIER):]] = value
        else:
            converted['backbone.' + key] = value
    return name, converted
