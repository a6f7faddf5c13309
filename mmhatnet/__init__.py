"""mmhatnet: HAT-Net backbones for the OpenMMLab stack.

Importing the package (configs do it through ``custom_imports``) registers
``HATNet`` in ``mmengine.registry.MODELS``, the root registry, so
``dict(type='HATNet')`` builds under the mmdet, mmseg and mmpretrain scopes
alike. It also registers the runtime pieces (``engine``: hooks, the atomic
checkpoint backend; ``datasets``: ``CheckAnnotationSize``) and
makes mmengine read checkpoints through mmhatnet's safe loading
(``engine.safe_load``), check the optimizer and scheduler state it resumes
against the run (``engine.resume_state``) and resume without a path from
the newest complete checkpoint (``engine.resume``). Nothing else happens
at import.

Layers, each importing only the ones below it (``tests/test_layering.py``
checks this, and that there is no import cycle):

- the runtime, what training and inference import: ``engine/`` (the
  bottom), ``models/`` (the network, its exact pretrained loading and the
  converter of the release's weights) and ``datasets/``, then ``apis/``
  (the logic of ``tools/train.py`` and ``tools/test.py``);
- the tooling, which the runtime never imports, each the logic of entry
  points in ``tools/``: ``config_tools`` (configs as the tools use them),
  ``deployment/`` (ONNX export), ``analysis/`` (FLOPs, the release
  reference, the benchmark) and ``demo/`` (generated data sets, the main
  job), then ``selfcheck`` (the stack check).
"""
from . import datasets  # noqa: F401  (registers CheckAnnotationSize)
from .engine import (use_checked_resume_state_in_mmengine,
                     use_complete_checkpoints_in_mmengine,
                     use_safe_loading_in_mmengine)
from .models import ConvFFN, HATNet, HierarchicalAttention

use_safe_loading_in_mmengine()
use_checked_resume_state_in_mmengine()
use_complete_checkpoints_in_mmengine()

__version__ = '0.1.0'
__all__ = ['ConvFFN', 'HATNet', 'HierarchicalAttention', '__version__']
