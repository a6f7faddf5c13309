"""The release's ImageNet classifier head for mmpretrain:
global-average-pooled features -> Dropout(p) -> Linear.

Imported by configs/imagenet_hatnet_*.py (``custom_imports``); it needs
mmpretrain, which the backbone alone does not.
"""
from __future__ import annotations

from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS
from torch import nn


@MODELS.register_module()
class DropoutLinearClsHead(LinearClsHead):
    """``LinearClsHead`` with dropout before the linear layer (``head.fc``,
    the release's ``classifier.1``)."""

    def __init__(self, *args, dropout: float = 0.2, **kwargs):
        super().__init__(*args, **kwargs)
        self.dropout = nn.Dropout(dropout)

    def pre_logits(self, feats):
        return self.dropout(feats[-1])
