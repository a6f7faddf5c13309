"""mmhatnet: HAT-Net backbones for the OpenMMLab stack.

Importing the package registers ``HATNet`` in ``mmengine.registry.MODELS``,
the root registry, so ``dict(type='HATNet')`` builds under the mmdet, mmseg
and mmpretrain scopes alike.
"""
from .models import HATNet, HierarchicalAttention

__version__ = '0.1.0'
__all__ = ['HATNet', 'HierarchicalAttention', '__version__']
