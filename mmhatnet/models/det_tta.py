"""Test-time augmentation that keeps instance masks, for ``--tta``.

mmdet's ``DetTTAModel`` merges the views' boxes (flipped back, then one
NMS) and refuses a detector that predicts masks ("TTA of instance
segmentation does not support now", mmdet 3.0 to 3.3). Each view's masks
are predicted at the original image size (``rescale=True``), flipped as
that view was: flipped back, they follow their boxes through the same NMS.

Imported by configs/mask-rcnn_hatnet_*.py (``custom_imports``); it needs
mmdet, which the backbone alone does not.
"""
from __future__ import annotations

import torch
from mmcv.ops import batched_nms
from mmdet.models.test_time_augs import DetTTAModel
from mmdet.structures import DetDataSample
from mmengine.registry import MODELS
from mmengine.structures import InstanceData

# the (H, W) mask dimensions each flip direction reverses
_FLIPPED_DIMS = {'horizontal': (-1, ), 'vertical': (-2, ),
                 'diagonal': (-2, -1)}


@MODELS.register_module()
class InstanceSegTTAModel(DetTTAModel):
    """``DetTTAModel`` that merges instance masks along with the boxes;
    detectors without masks are merged as ``DetTTAModel`` does."""

    def _merge_single_sample(
            self, data_samples: list[DetDataSample]) -> DetDataSample:
        preds = [s.pred_instances for s in data_samples]
        if preds[0].get('masks') is None:
            return super()._merge_single_sample(data_samples)
        metas = [s.metainfo for s in data_samples]
        bboxes, scores = self.merge_aug_bboxes(
            [p.bboxes for p in preds], [p.scores for p in preds], metas)
        if bboxes.numel() == 0:
            return data_samples[0]
        labels = torch.cat([p.labels for p in preds])
        # (N, H, W) at the original size, each view's flip undone
        masks = torch.cat([
            p.masks.flip(_FLIPPED_DIMS[m['flip_direction']])
            if m['flip'] else p.masks for p, m in zip(preds, metas)])
        dets, keep = batched_nms(bboxes, scores, labels, self.tta_cfg['nms'])
        most = self.tta_cfg['max_per_img']
        dets, keep = dets[:most], keep[:most]
        merged = data_samples[0]
        merged.pred_instances = InstanceData(
            bboxes=dets[:, :-1], scores=dets[:, -1], labels=labels[keep],
            masks=masks[keep])
        return merged
