"""Config mistakes that ``tools/train.py`` finds before a run starts, with
the fix."""
from __future__ import annotations

import os.path as osp

import torch

from ..engine import load_untrusted
from ..engine.safe_load import check_reachable
from ..models import HATNet
from ..models.pretrained import missing_pretrained_message


def check_config(cfg) -> None:
    """Raise ValueError for mistakes a run would hit late: a missing,
    unsafe or unreachable pretrained file, a neck or head whose
    ``in_channels`` do not fit the backbone."""
    model = cfg.get('model', {})
    backbone = model.get('backbone') or {}
    if backbone.get('type') != 'HATNet':
        return
    init = backbone.get('init_cfg') or {}
    ckpt = init.get('checkpoint') if isinstance(init, dict) else None
    if ckpt and '://' not in ckpt:
        if not osp.isfile(ckpt):
            raise ValueError(missing_pretrained_message(
                ckpt, 'model.backbone.init_cfg.checkpoint'))
        load_untrusted(ckpt, 'meta')  # refuse a pickle that would run code
    elif ckpt and ckpt.startswith(('http://', 'https://')):
        check_reachable(ckpt, 'model.backbone.init_cfg.checkpoint')
    kwargs = {k: v for k, v in backbone.items()
              if k not in ('type', 'init_cfg', '_scope_')}
    with torch.device('meta'):
        out_channels = list(HATNet(**kwargs).out_channels)
    neck = model.get('neck')
    necks = neck if isinstance(neck, list) else [neck]
    first = necks[0] if necks and isinstance(necks[0], dict) else {}
    in_channels = first.get('in_channels')
    head = model.get('head') or {}
    given = head.get('in_channels')
    for key, got, want in (('neck', in_channels, out_channels),
                           ('head', given, out_channels[-1])):
        if isinstance(got, (list, tuple)):
            got = list(got)
        if got is not None and not isinstance(got, dict) and got != want:
            raise ValueError(
                f'model.{key}.in_channels is {got} but HATNet arch='
                f'{backbone.get("arch", "small")!r} with out_indices='
                f'{tuple(backbone.get("out_indices", (0, 1, 2, 3)))} gives '
                f'{want}: set model.{key}.in_channels={want}')
