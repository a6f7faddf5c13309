"""What chance gives on the held-out images, scored by the real evaluators.

The yardstick beside each demo result: for segmentation, the background
class ("wall") predicted everywhere; for detection, ten boxes per image
at random places with random shape classes and box-shaped masks; for
classification, a uniform guess (1 / classes, exact).
"""
from __future__ import annotations

import os.path as osp

import torch

from .data import COCO_CLASSES, COCO_SHAPES, IMAGENET_WNIDS


def _segmentation(root: str) -> dict[str, float]:
    from mmseg.datasets import ADE20KDataset
    from mmseg.datasets.transforms import LoadAnnotations
    from mmseg.evaluation import IoUMetric

    dataset = ADE20KDataset(
        data_root=root, pipeline=[],
        data_prefix=dict(img_path='images/validation',
                         seg_map_path='annotations/validation'))
    load = LoadAnnotations()  # reduce_zero_label from the dataset
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dataset.metainfo
    samples = []
    for i in range(len(dataset)):
        gt = torch.from_numpy(load(dataset.get_data_info(i))['gt_seg_map'])
        background = torch.zeros_like(gt)  # label 0 is "wall"
        samples.append(dict(pred_sem_seg=dict(data=background[None]),
                            gt_sem_seg=dict(data=gt[None])))
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def _detection(root: str, seed: int = 0) -> dict[str, float]:
    from mmdet.datasets import CocoDataset
    from mmdet.evaluation import CocoMetric
    from pycocotools.coco import COCO

    ann_file = osp.join(root, 'annotations', 'instances_val2017.json')
    metric = CocoMetric(ann_file=ann_file, metric=['bbox', 'segm'])
    metric.dataset_meta = CocoDataset.METAINFO
    labels = torch.tensor([COCO_CLASSES.index(n) for n in COCO_SHAPES])
    rng = torch.Generator().manual_seed(seed)
    samples = []
    for img in COCO(ann_file).dataset['images']:
        h, w, n = img['height'], img['width'], 10
        corners = torch.rand(n, 2, 2, generator=rng) * torch.tensor([w, h])
        boxes = torch.cat([corners.amin(1), corners.amax(1)], 1)
        masks = torch.zeros(n, h, w, dtype=torch.bool)
        for mask, (x0, y0, x1, y1) in zip(masks, boxes.long().tolist()):
            mask[y0:y1 + 1, x0:x1 + 1] = True
        pred = dict(bboxes=boxes, scores=torch.rand(n, generator=rng),
                    labels=labels[torch.randint(len(labels), (n, ),
                                                generator=rng)],
                    masks=masks)
        samples.append(dict(img_id=img['id'], ori_shape=(h, w),
                            pred_instances=pred))
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def chance(data: str, root: str, metrics: tuple[str, ...]
           ) -> dict[str, float]:
    """Chance's value of each of ``metrics`` on a demo data set.

    Args:
        data: ``'ade'``, ``'coco'`` or ``'imagenet'``.
        root: The data set's root, as :func:`make_demo_data` returned it.
        metrics: The evaluator's metric names to return.
    """
    if data == 'ade':
        found = _segmentation(str(root))
    elif data == 'coco':
        found = _detection(str(root))
    elif data == 'imagenet':
        found = {'accuracy/top1': 100.0 / len(IMAGENET_WNIDS)}
    else:
        raise ValueError(f"data must be 'ade', 'coco' or 'imagenet', got "
                         f'{data!r}')
    return {k: float(found[k]) for k in metrics}
