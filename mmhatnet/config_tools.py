"""Configs as the tools use them; not runtime (nothing in ``models/``,
``engine/``, ``datasets/`` or ``apis/`` imports this module).

- :func:`shipped_config`: where a shipped config is. The configs are
  files of an mmhatnet checkout, which pip does not install: the caller
  names the checkout (the entry points in ``tools/`` pass the one they sit
  in), and a config that is not there is a ``FileNotFoundError`` that says
  so.
- :func:`load_config`, :func:`build_model` and :data:`DEFAULT_SHAPES`: a
  config with overrides, its whole model, and the input size the tools
  measure and export each toolbox's models at.
- :func:`image_size_options`: the ``--cfg-options`` that shrink a config's
  images for a short run, its pipeline steps found by type, never by
  position.
"""
from __future__ import annotations

import copy
import importlib
import os.path as osp

from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

DEFAULT_SHAPES = {
    'mmpretrain': (224, 224),
    'mmseg': (512, 512),
    'mmdet': (800, 1280),
}

#: The pipeline steps that set the image size: step type -> (its argument,
#: the size of :func:`image_size_options` it takes).
SIZE_STEPS = {
    'Resize': ('scale', 'scale'),  # mmdet (w, h); mmseg test (long, short)
    'RandomResize': ('scale', 'scale'),  # mmseg training (long, short)
    'ResizeEdge': ('scale', 'scale'),  # mmpretrain test: the short edge
    'RandomCrop': ('crop_size', 'crop'),  # mmseg training (h, w)
    'CenterCrop': ('crop_size', 'crop'),  # mmpretrain test: one side
    'RandomResizedCrop': ('scale', 'crop'),  # mmpretrain training
}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def shipped_config(root: str, name: str) -> str:
    """The path of ``configs/<name>`` in the mmhatnet checkout ``root``."""
    path = osp.join(root, 'configs', name)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} does not exist. The shipped configs are the configs/ '
            f'folder of an mmhatnet checkout (pip does not install them): '
            f'pass the root of a checkout; the tools in its tools/ folder '
            f'pass their own')
    return path


def load_config(config: str, cfg_options: dict | None = None) -> Config:
    """The config at ``config`` with ``cfg_options`` merged in."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_model(cfg: Config) -> nn.Module:
    """The whole model of ``cfg`` in eval mode, built through the registry
    of its ``default_scope``, with no backbone checkpoint."""
    scope = cfg.get('default_scope')
    if scope not in DEFAULT_SHAPES:
        raise ValueError(f'default_scope must be one of '
                         f'{sorted(DEFAULT_SHAPES)}, got {scope!r}')
    registry = importlib.import_module(f'{scope}.registry').MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(model_cfg).eval()


def image_size_options(cfg: Config, scale=None, crop=None,
                       loaders: tuple[str, ...] = LOADERS) -> dict:
    """The ``--cfg-options`` (key -> value) that give the pipelines of
    ``cfg``'s ``loaders`` the resize target ``scale`` and the crop
    ``crop``.

    Each step of :data:`SIZE_STEPS` is found by its type, wherever it is in
    its pipeline; an mmseg data preprocessor's ``size`` (it pads every batch
    to it) gets the crop too. The keys index the pipelines as ``cfg`` has
    them, so merge these into ``cfg`` (or pass them with the config file
    ``cfg`` was read from) after any option that replaces a pipeline.

    Raises:
        ValueError: a loader's pipeline has no step for the sizes given.
    """
    sizes = {'scale': scale, 'crop': crop}
    options = {}
    for loader in loaders:
        pipeline = cfg[loader]['dataset'].get('pipeline')
        if pipeline is None:
            raise ValueError(f'{loader}.dataset of this config has no '
                             f'pipeline')
        keys = len(options)
        for i, step in enumerate(pipeline):
            # 'mmdet.Resize' names the scope too
            arg, size = SIZE_STEPS.get(step['type'].split('.')[-1],
                                       (None, None))
            if arg is not None and sizes[size] is not None:
                options[f'{loader}.dataset.pipeline.{i}.{arg}'] = sizes[size]
        if len(options) == keys:
            given = [k for k, v in sizes.items() if v is not None]
            types = sorted(t for t, (_, size) in SIZE_STEPS.items()
                           if size in given)
            raise ValueError(
                f'{loader}.dataset.pipeline has none of the steps {types}, '
                f'which take the {" or ".join(given)}; its steps are '
                f'{[step["type"] for step in pipeline]}')
    preprocessor = cfg.get('model', {}).get('data_preprocessor') or {}
    if crop is not None and 'size' in preprocessor:
        options['model.data_preprocessor.size'] = crop
    return options


def as_cfg_options(options: dict) -> list[str]:
    """``options`` as ``--cfg-options`` arguments, ``key=value``."""
    return [f'{key}={value}' for key, value in options.items()]
