"""mmhatnet.models.det_tta: Mask R-CNN's views merged, masks included."""
import pytest
import torch

pytest.importorskip('mmdet')
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.bbox import bbox_flip  # noqa: E402
from mmengine.model import BaseModel  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

from mmhatnet.models.det_tta import InstanceSegTTAModel  # noqa: E402

H, W = 6, 8


class _Detector(BaseModel):
    """What the TTA model wraps; merge_preds never calls it."""

    def forward(self, *args, **kwargs):
        raise AssertionError('not called')


def _view(instances, direction):
    """``instances`` as the detector predicts them on a view flipped in
    ``direction`` (None: not flipped), the flipped view's scores higher so
    that NMS keeps its instances."""
    dims = {None: (), 'horizontal': (-1, ), 'vertical': (-2, ),
            'diagonal': (-2, -1)}[direction]
    sample = DetDataSample(metainfo=dict(
        ori_shape=(H, W), flip=direction is not None,
        flip_direction=direction))
    sample.pred_instances = InstanceData(
        bboxes=bbox_flip(instances.bboxes, (H, W), direction)
        if direction else instances.bboxes,
        scores=instances.scores + (0.05 if direction else 0.),
        labels=instances.labels,
        masks=instances.masks.flip(dims) if dims else instances.masks)
    return sample


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_flipped_view_merges_back_onto_the_image(direction):
    masks = torch.zeros(2, H, W, dtype=torch.bool)
    masks[0, :3, :2] = True
    masks[1, 2:, 5:] = True
    instances = InstanceData(
        bboxes=torch.tensor([[0., 0., 2., 3.], [5., 2., 8., 6.]]),
        scores=torch.tensor([0.9, 0.8]), labels=torch.tensor([0, 1]),
        masks=masks)
    tta = InstanceSegTTAModel(module=_Detector(), tta_cfg=dict(
        nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
    merged = tta.merge_preds([[_view(instances, None),
                               _view(instances, direction)]])[0]
    # each instance seen twice: NMS keeps the flipped view's, put back
    got = merged.pred_instances
    assert torch.equal(got.masks, masks)
    assert torch.allclose(got.bboxes, instances.bboxes)
    assert torch.equal(got.labels, instances.labels)
