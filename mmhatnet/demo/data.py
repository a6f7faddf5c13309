"""Small, learnable synthetic data sets in the on-disk layouts of our configs.

Every image shows coloured geometric shapes (circle, square, triangle,
star), each shape class with its own colour, on a grey background with
soft coloured blotches, so a tiny model trained for a few minutes beats
chance.  The annotation of a shape is drawn first (its polygon rasterised
to a mask) and the image is coloured from it, so boxes, polygons and label
maps match the pixels.  Paths are relative to ``out_dir`` exactly as the
configs read them relative to the working directory:

* ``coco``: ``data/coco/annotations/instances_{train,val}2017.json`` and
  ``data/coco/{train,val}2017/<12-digit id>.jpg``, standard COCO instances
  (all 80 categories with their official ids; the shapes are ``person``,
  ``car``, ``cat`` and ``dog``; polygons; 1 to 4 non-overlapping shapes per
  image).
* ``ade``: ``data/ade/ADEChallengeData2016/images/{training,validation}/
  ADE_{train,val}_<8 digits>.jpg`` with single-channel uint8 label maps of
  the same stem under ``annotations/``: 0 is "other" (grey clutter, ignored
  under ``reduce_zero_label``), 1 (``wall``) the background and 2 to 5
  (``building``, ``sky``, ``floor``, ``tree``) the shapes.
* ``imagenet``: ``data/imagenet/train/<wnid>/<wnid>_<4 digits>.JPEG``,
  ``data/imagenet/val/ILSVRC2012_val_<8 digits>.JPEG`` and the annotation
  files ``data/imagenet/meta/{train,val}.txt`` (``path label`` per line),
  one centred shape per image, labels 0 to 3 (the first four ImageNet-1k
  classes).  mmpretrain's ``ImageNet`` needs the annotation files: without
  them it scans the folders and rejects fewer than 1000 of them.

Each image comes from its own random generator seeded by ``(seed, task,
split, index)``, so the output is deterministic and an image does not
depend on how many others are made.  A task's root holds a marker file;
regenerating replaces a root that has the marker and refuses to touch a
non-empty one without it (real data).
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

TASKS = ('coco', 'ade', 'imagenet')
SPLITS = ('train', 'val')
#: ``(num_train, num_val)`` per task; for ImageNet, images per class.
DEFAULT_SIZES = {'coco': (24, 8), 'ade': (24, 8), 'imagenet': (16, 4)}

COCO_ROOT = 'data/coco'
ADE_ROOT = 'data/ade/ADEChallengeData2016'
IMAGENET_ROOT = 'data/imagenet'
MARKER = '.mmhatnet_demo_data'

#: Shape classes, their RGB colours and their vertex pattern: number of
#: vertices and the radii (relative to the circumradius) they cycle through.
SHAPES = ('circle', 'square', 'triangle', 'star')
SHAPE_COLOURS = ((220, 50, 40), (40, 170, 60), (40, 90, 220), (235, 200, 30))
_GEOMETRY = {
    'circle': (48, (1.0, )),
    'square': (4, (1.0, )),
    'triangle': (3, (1.0, )),
    'star': (10, (1.0, 0.45)),
}

#: The 80 COCO classes in mmdet's order, with their official ids (1 to 90
#: less the ten unused ones); shape ``k`` is COCO class ``COCO_SHAPES[k]``.
COCO_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard',
    'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
    'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork',
    'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair',
    'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop',
    'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven',
    'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush')
COCO_IDS = tuple(
    i for i in range(1, 91)
    if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
COCO_SHAPES = ('person', 'car', 'cat', 'dog')

#: ADE20K raw labels: 0 "other" (ignored), 1 ``wall`` (background), and
#: shape ``k`` is ``ADE_FIRST_SHAPE + k`` (``building`` ... ``tree``).
ADE_OTHER = 0
ADE_BACKGROUND = 1
ADE_FIRST_SHAPE = 2

#: WordNet ids of the first four ImageNet-1k classes (tench, goldfish, great
#: white shark, tiger shark): label ``k`` is shape ``k``.
IMAGENET_WNIDS = ('n01440764', 'n01443537', 'n01484850', 'n01491361')

_JPEG = [cv2.IMWRITE_JPEG_QUALITY, 95]


@dataclass(frozen=True)
class Instance:
    """One drawn shape.

    Attributes:
        shape: Index into :data:`SHAPES`.
        polygon: ``(N, 2)`` float vertices ``(x, y)`` in COCO pixel
            coordinates, rounded to 2 decimals as written to the json.
        mask: ``(H, W)`` bool mask, the polygon rasterised.
    """

    shape: int
    polygon: np.ndarray
    mask: np.ndarray


def _rng(seed: int, task: str, split: str, *key: int) -> np.random.Generator:
    """Return the generator of one image, independent of all the others."""
    return np.random.default_rng(
        [seed, TASKS.index(task), SPLITS.index(split), *key])


def _side(rng: np.random.Generator, low: int, high: int) -> int:
    """Draw an image side in ``[low, high]`` that is not a multiple of 32."""
    while True:
        side = int(rng.integers(low, high + 1))
        if side % 32:
            return side


def shape_polygon(shape: int, centre: tuple[float, float], radius: float,
                  angle: float) -> np.ndarray:
    """Return the ``(N, 2)`` vertices of a shape, rounded to 2 decimals.

    Args:
        shape: Index into :data:`SHAPES`.
        centre: ``(x, y)`` of the centre.
        radius: Circumradius in pixels.
        angle: Rotation in radians.
    """
    count, radii = _GEOMETRY[SHAPES[shape]]
    theta = angle + 2 * np.pi * np.arange(count) / count
    r = radius * np.resize(np.asarray(radii), count)
    xy = np.stack([centre[0] + r * np.cos(theta),
                   centre[1] + r * np.sin(theta)], axis=1)
    return xy.round(2)


def polygon_mask(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rasterise a polygon to a bool mask as pycocotools does.

    The same rasteriser serves COCO evaluation and mmdet's ``poly2mask``,
    so the drawn shape is exactly the mask they see.
    """
    rles = mask_utils.frPyObjects([polygon.ravel().tolist()], height, width)
    return mask_utils.decode(rles)[..., 0].astype(bool)


def _place(rng: np.random.Generator, height: int, width: int, count: int,
           radii: tuple[float, float], *, overlap: bool) -> list[Instance]:
    """Place up to ``count`` random shapes fully inside the image.

    Without ``overlap`` their circumcircles keep 4 pixels apart, and
    placing gives up after ``50 * count`` draws (the first always fits).
    """
    instances: list[Instance] = []
    circles: list[tuple[float, float, float]] = []
    high = min(radii[1], min(height, width) / 2 - 4)
    for _ in range(50 * count):
        if len(instances) == count:
            break
        r = rng.uniform(min(radii[0], high), high)
        x = rng.uniform(r + 2, width - r - 2)
        y = rng.uniform(r + 2, height - r - 2)
        shape = int(rng.integers(len(SHAPES)))
        angle = rng.uniform(0, 2 * np.pi)
        if not overlap and any(np.hypot(x - cx, y - cy) < r + cr + 4
                               for cx, cy, cr in circles):
            continue
        polygon = shape_polygon(shape, (x, y), r, angle)
        instances.append(
            Instance(shape, polygon, polygon_mask(polygon, height, width)))
        circles.append((x, y, r))
    return instances


def _background(rng: np.random.Generator, height: int,
                width: int) -> np.ndarray:
    """Return a float RGB grey with smooth random blotches."""
    base = rng.uniform(70, 190) + rng.uniform(-20, 20, 3)
    blotches = rng.normal(0, 20, (4, 4, 3)).astype(np.float32)
    field = cv2.resize(blotches, (width, height),
                       interpolation=cv2.INTER_CUBIC)
    return base + field


def _paint(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray,
           colour: Iterable[float]) -> None:
    """Fill ``mask`` of ``image`` with a jittered ``colour``, in place."""
    image[mask] = np.asarray(colour) + rng.uniform(-25, 25, 3)


def _finish(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Add pixel noise and convert a float RGB image to uint8."""
    image = image + rng.normal(0, 6, image.shape)
    return np.clip(image.round(), 0, 255).astype(np.uint8)


def _shapes_image(rng: np.random.Generator, height: int, width: int,
                  instances: list[Instance]) -> np.ndarray:
    """Paint ``instances`` in order over a background; return float RGB."""
    image = _background(rng, height, width)
    for inst in instances:
        _paint(rng, image, inst.mask, SHAPE_COLOURS[inst.shape])
    return image


def coco_sample(seed: int, split: str,
                index: int) -> tuple[np.ndarray, list[Instance]]:
    """Return a COCO image (uint8 RGB) and its non-overlapping shapes."""
    rng = _rng(seed, 'coco', split, index)
    height, width = _side(rng, 200, 400), _side(rng, 200, 400)
    count = int(rng.integers(1, 5))
    instances = _place(rng, height, width, count, (18, 60), overlap=False)
    image = _shapes_image(rng, height, width, instances)
    return _finish(rng, image), instances


def ade_sample(seed: int, split: str,
               index: int) -> tuple[np.ndarray, np.ndarray]:
    """Return an ADE20K image (uint8 RGB) and its raw uint8 label map.

    Shapes may overlap (the later one on top); zero to two grey ellipses
    of "other" (label 0) lie under them.
    """
    rng = _rng(seed, 'ade', split, index)
    height, width = _side(rng, 200, 400), _side(rng, 200, 400)
    image = _background(rng, height, width)
    labels = np.full((height, width), ADE_BACKGROUND, np.uint8)
    for _ in range(int(rng.integers(3))):
        clutter = np.zeros((height, width), np.uint8)
        centre = (int(rng.integers(width)), int(rng.integers(height)))
        axes = (int(rng.integers(10, 50)), int(rng.integers(10, 50)))
        cv2.ellipse(clutter, centre, axes, float(rng.uniform(0, 180)), 0,
                    360, 1, -1)
        mask = clutter.astype(bool)
        _paint(rng, image, mask, (rng.uniform(60, 200), ) * 3)
        labels[mask] = ADE_OTHER
    count = int(rng.integers(2, 6))
    for inst in _place(rng, height, width, count, (25, 80), overlap=True):
        _paint(rng, image, inst.mask, SHAPE_COLOURS[inst.shape])
        labels[inst.mask] = ADE_FIRST_SHAPE + inst.shape
    return _finish(rng, image), labels


def imagenet_sample(seed: int, split: str, label: int,
                    index: int) -> np.ndarray:
    """Return an ImageNet image (uint8 RGB): one centred shape ``label``."""
    rng = _rng(seed, 'imagenet', split, label, index)
    height, width = _side(rng, 180, 300), _side(rng, 180, 300)
    side = min(height, width)
    centre = (width / 2 + rng.uniform(-0.1, 0.1) * side,
              height / 2 + rng.uniform(-0.1, 0.1) * side)
    radius = rng.uniform(0.25, 0.38) * side
    polygon = shape_polygon(label, centre, radius, rng.uniform(0, 2 * np.pi))
    inst = Instance(label, polygon, polygon_mask(polygon, height, width))
    return _finish(rng, _shapes_image(rng, height, width, [inst]))


def _prepare_root(root: Path) -> None:
    """Empty a previous demo root, or create one; never touch real data."""
    if (root / MARKER).is_file():
        shutil.rmtree(root)
    elif root.is_dir() and any(root.iterdir()):
        raise FileExistsError(
            f'{root} is not empty and was not made by mmhatnet.demo.data; '
            'refusing to overwrite it')
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text('made by mmhatnet.demo.data; regenerating '
                               'replaces this folder\n')


def _imwrite(path: Path, array: np.ndarray) -> None:
    """Write an RGB image or a label map, creating the folder.

    The suffix picks the format; JPEGs get quality 95.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        array = array[..., ::-1]  # OpenCV writes BGR
    params = _JPEG if path.suffix.lower() in ('.jpg', '.jpeg') else []
    if not cv2.imwrite(str(path), array, params):
        raise OSError(f'could not write {path}')


def _write_lines(path: Path, lines: list[str]) -> None:
    """Write text lines, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(lines))


def make_coco(out_dir: Path, num_train: int, num_val: int,
              seed: int) -> Path:
    """Write the COCO data set under ``out_dir``; return its root."""
    root = Path(out_dir) / COCO_ROOT
    _prepare_root(root)
    categories = [{'id': i, 'name': name}
                  for i, name in zip(COCO_IDS, COCO_CLASSES)]
    shape_ids = [COCO_IDS[COCO_CLASSES.index(n)] for n in COCO_SHAPES]
    for split, num in zip(SPLITS, (num_train, num_val)):
        images, annotations = [], []
        for index in range(num):
            image, instances = coco_sample(seed, split, index)
            img_id = index + 1
            file_name = f'{img_id:012d}.jpg'
            _imwrite(root / f'{split}2017' / file_name, image)
            images.append({'id': img_id, 'file_name': file_name,
                           'height': image.shape[0],
                           'width': image.shape[1]})
            for inst in instances:
                (x0, y0), (x1, y1) = inst.polygon.min(0), inst.polygon.max(0)
                annotations.append({
                    'id': len(annotations) + 1,
                    'image_id': img_id,
                    'category_id': shape_ids[inst.shape],
                    'bbox': [float(x0), float(y0), round(float(x1 - x0), 2),
                             round(float(y1 - y0), 2)],
                    'area': float(inst.mask.sum()),
                    'iscrowd': 0,
                    'segmentation': [inst.polygon.ravel().tolist()],
                })
        coco = {'info': {'description': 'mmhatnet synthetic demo data'},
                'licenses': [], 'images': images,
                'annotations': annotations, 'categories': categories}
        ann_file = root / 'annotations' / f'instances_{split}2017.json'
        ann_file.parent.mkdir(parents=True, exist_ok=True)
        ann_file.write_text(json.dumps(coco))
    return root


def make_ade(out_dir: Path, num_train: int, num_val: int, seed: int) -> Path:
    """Write the ADE20K data set under ``out_dir``; return its root."""
    root = Path(out_dir) / ADE_ROOT
    _prepare_root(root)
    folders = {'train': 'training', 'val': 'validation'}
    for split, num in zip(SPLITS, (num_train, num_val)):
        for index in range(num):
            image, labels = ade_sample(seed, split, index)
            stem = f'ADE_{split}_{index + 1:08d}'
            _imwrite(root / 'images' / folders[split] / f'{stem}.jpg', image)
            _imwrite(root / 'annotations' / folders[split] / f'{stem}.png',
                     labels)
    return root


def make_imagenet(out_dir: Path, num_train: int, num_val: int,
                  seed: int) -> Path:
    """Write the ImageNet data set under ``out_dir``; return its root.

    ``num_train`` and ``num_val`` count images per class; the validation
    images cycle through the classes.
    """
    root = Path(out_dir) / IMAGENET_ROOT
    _prepare_root(root)
    lines = []
    for label, wnid in enumerate(IMAGENET_WNIDS):
        for index in range(num_train):
            name = f'{wnid}/{wnid}_{index + 1:04d}.JPEG'
            _imwrite(root / 'train' / name,
                     imagenet_sample(seed, 'train', label, index))
            lines.append(f'{name} {label}\n')
    _write_lines(root / 'meta' / 'train.txt', lines)
    lines = []
    for i in range(num_val * len(IMAGENET_WNIDS)):
        label, index = i % len(IMAGENET_WNIDS), i // len(IMAGENET_WNIDS)
        name = f'ILSVRC2012_val_{i + 1:08d}.JPEG'
        _imwrite(root / 'val' / name,
                 imagenet_sample(seed, 'val', label, index))
        lines.append(f'{name} {label}\n')
    _write_lines(root / 'meta' / 'val.txt', lines)
    return root


_MAKERS = {'coco': make_coco, 'ade': make_ade, 'imagenet': make_imagenet}


def make_demo_data(out_dir: str | Path,
                   tasks: Iterable[str] = TASKS,
                   num_train: int | None = None,
                   num_val: int | None = None,
                   seed: int = 0) -> dict[str, Path]:
    """Write the demo data sets of ``tasks`` under ``out_dir``.

    Args:
        out_dir: Folder that plays the working directory of the configs.
        tasks: Any of :data:`TASKS`.
        num_train: Training images (per class for ImageNet); ``None`` for
            the task's :data:`DEFAULT_SIZES`.
        num_val: Validation images, likewise.
        seed: Non-negative seed; the same seed gives the same files.

    Returns:
        The root folder written for each task.
    """
    tasks = list(tasks)
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ValueError(f'unknown tasks {unknown}; choose from {TASKS}')
    if seed < 0:
        raise ValueError(f'seed must be non-negative, got {seed}')
    for num in (num_train, num_val):
        if num is not None and num < 1:
            raise ValueError(f'image counts must be positive, got {num}')
    roots = {}
    for task in tasks:
        train, val = DEFAULT_SIZES[task]
        roots[task] = _MAKERS[task](
            Path(out_dir), train if num_train is None else num_train,
            val if num_val is None else num_val, seed)
    return roots
