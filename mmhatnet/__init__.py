"""mmhatnet: HAT-Net backbones for the OpenMMLab stack.

Importing the package (configs do it through ``custom_imports``) registers
``HATNet`` in ``mmengine.registry.MODELS``, the root registry, so
``dict(type='HATNet')`` builds under the mmdet, mmseg and mmpretrain scopes
alike; it also registers the training-safety pieces of ``mmhatnet.engine``
and allows mmengine's own checkpoint classes under safe loading.
"""
from . import transforms  # noqa: F401  (registers CheckAnnotationSize)
from .engine import allow_mmengine_checkpoints
from .models import HATNet, HierarchicalAttention

allow_mmengine_checkpoints()

__version__ = '0.1.0'
__all__ = ['HATNet', 'HierarchicalAttention', '__version__']
