"""The network: the HATNet backbone (``hatnet``), its two halves of a block
(``attention``: H-MHSA; ``convffn``: the inverted-residual feed-forward),
the release's ImageNet head (``cls_head``, imported by the ImageNet configs),
Mask R-CNN's test-time augmentation with masks (``det_tta``, imported by the
Mask R-CNN configs), the converter of the authors' weights (``ckpt_convert``)
and the switch to size-independent paths under graph export
(``export_mode``)."""
from .attention import HierarchicalAttention
from .convffn import ConvFFN
from .hatnet import HATNet

__all__ = ['ConvFFN', 'HATNet', 'HierarchicalAttention']
