"""Data checks for the training and testing pipelines."""
from __future__ import annotations

from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckAnnotationSize(BaseTransform):
    """Raise ValueError, naming the files, when an annotation's size
    disagrees with its image.

    Upstream would go on silently (COCO boxes and polygons drawn for another
    image size) or fail later with an error that names no file (a
    segmentation map whose shape differs from the prediction's). Checks the
    image size recorded in the annotation file ('height', 'width', COCO) and
    the segmentation map's shape (ADE20K). Place it after
    ``LoadAnnotations`` and before any transform that resizes the map.
    """

    def transform(self, results: dict) -> dict:
        image = tuple(results['ori_shape'][:2])
        sizes = {}
        if 'height' in results and 'width' in results:
            sizes['the annotation file'] = (results['height'],
                                            results['width'])
        if results.get('gt_seg_map') is not None:
            sizes[results.get('seg_map_path', 'the segmentation map')] = \
                tuple(results['gt_seg_map'].shape[:2])
        for source, size in sizes.items():
            if tuple(size) != image:
                raise ValueError(
                    f'{results.get("img_path")} is {image[0]}x{image[1]} '
                    f'(HxW) but {source} gives {size[0]}x{size[1]}: fix or '
                    f'remove this sample')
        return results
