from .attention import HierarchicalAttention
from .hatnet import HATNet

__all__ = ['HATNet', 'HierarchicalAttention']
