"""Data pipeline pieces (registered in mmengine's root TRANSFORMS)."""
from .transforms import CheckAnnotationSize

__all__ = ['CheckAnnotationSize']
