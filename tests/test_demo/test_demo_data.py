"""Tests of mmhatnet.demo.data, the synthetic data sets.

They load with the real upstream dataset classes, their annotations match
the drawn pixels, and the output is deterministic.
"""
import hashlib
import os
import runpy
from collections import Counter

import cv2
import numpy as np
import pytest
from mmdet.datasets import CocoDataset
from mmseg.datasets import ADE20KDataset
from mmseg.datasets.transforms import LoadAnnotations
from pycocotools.coco import COCO

from mmhatnet.demo.data import (
    ADE_FIRST_SHAPE,
    ADE_ROOT,
    COCO_CLASSES,
    COCO_IDS,
    COCO_ROOT,
    COCO_SHAPES,
    DEFAULT_SIZES,
    IMAGENET_ROOT,
    IMAGENET_WNIDS,
    MARKER,
    SHAPE_COLOURS,
    SHAPES,
    ade_sample,
    coco_sample,
    make_demo_data,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SEED = 3


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """All three data sets at their default sizes."""
    out = tmp_path_factory.mktemp('demo')
    make_demo_data(out, seed=SEED)
    return out


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob('*')
                  if p.is_file())


def _digests(root):
    return {f: hashlib.sha256((root / f).read_bytes()).hexdigest()
            for f in _files(root)}


def test_layout(tmp_path):
    roots = make_demo_data(tmp_path, num_train=2, num_val=1)
    assert roots == {'coco': tmp_path / COCO_ROOT,
                     'ade': tmp_path / ADE_ROOT,
                     'imagenet': tmp_path / IMAGENET_ROOT}
    wnids = IMAGENET_WNIDS
    assert _files(tmp_path) == sorted(
        [f'{COCO_ROOT}/{MARKER}',
         f'{COCO_ROOT}/annotations/instances_train2017.json',
         f'{COCO_ROOT}/annotations/instances_val2017.json',
         f'{COCO_ROOT}/train2017/000000000001.jpg',
         f'{COCO_ROOT}/train2017/000000000002.jpg',
         f'{COCO_ROOT}/val2017/000000000001.jpg',
         f'{ADE_ROOT}/{MARKER}']
        + [f'{ADE_ROOT}/{kind}/training/ADE_train_0000000{i}.{ext}'
           for kind, ext in (('images', 'jpg'), ('annotations', 'png'))
           for i in (1, 2)]
        + [f'{ADE_ROOT}/images/validation/ADE_val_00000001.jpg',
           f'{ADE_ROOT}/annotations/validation/ADE_val_00000001.png',
           f'{IMAGENET_ROOT}/{MARKER}',
           f'{IMAGENET_ROOT}/meta/train.txt',
           f'{IMAGENET_ROOT}/meta/val.txt']
        + [f'{IMAGENET_ROOT}/train/{w}/{w}_000{i}.JPEG'
           for w in wnids for i in (1, 2)]
        + [f'{IMAGENET_ROOT}/val/ILSVRC2012_val_0000000{i}.JPEG'
           for i in range(1, 5)])
    meta = tmp_path / IMAGENET_ROOT / 'meta'
    assert (meta / 'train.txt').read_text().splitlines() == [
        f'{w}/{w}_000{i}.JPEG {label}'
        for label, w in enumerate(wnids) for i in (1, 2)]
    assert (meta / 'val.txt').read_text().splitlines() == [
        f'ILSVRC2012_val_0000000{i + 1}.JPEG {i}' for i in range(4)]


def test_coco_categories_are_mmdets():
    assert CocoDataset.METAINFO['classes'] == COCO_CLASSES
    ids = dict(zip(COCO_CLASSES, COCO_IDS))
    assert len(set(COCO_IDS)) == 80 and max(COCO_IDS) == 90
    assert [ids[n] for n in COCO_SHAPES] == [1, 3, 17, 18]
    assert ids['toothbrush'] == 90 and ids['stop sign'] == 13


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_loads_in_mmdet(demo, split):
    ds = CocoDataset(data_root=str(demo / COCO_ROOT),
                     ann_file=f'annotations/instances_{split}2017.json',
                     data_prefix={'img': f'{split}2017/'}, pipeline=[])
    ds.full_init()
    assert len(ds) == DEFAULT_SIZES['coco'][split == 'val']
    shape_labels = {COCO_CLASSES.index(n) for n in COCO_SHAPES}
    labels = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        h, w = cv2.imread(info['img_path']).shape[:2]
        assert (h, w) == (info['height'], info['width'])
        assert min(h, w) >= 200 and max(h, w) <= 400
        assert h % 32 and w % 32
        assert 1 <= len(info['instances']) <= 4
        for inst in info['instances']:
            (poly, ) = inst['mask']
            xy = np.reshape(poly, (-1, 2))
            assert inst['bbox'] == pytest.approx(
                [*xy.min(0), *xy.max(0)], abs=1e-6)
            assert inst['ignore_flag'] == 0
            labels.append(inst['bbox_label'])
    assert set(labels) <= shape_labels


def test_coco_masks_match_the_pixels(demo):
    root = demo / COCO_ROOT
    coco = COCO(str(root / 'annotations/instances_val2017.json'))
    cats = {c['id']: c['name'] for c in coco.loadCats(coco.getCatIds())}
    assert len(cats) == 80
    for img_id in coco.getImgIds():
        img = coco.loadImgs(img_id)[0]
        image, instances = coco_sample(SEED, 'val', img_id - 1)
        on_disk = cv2.imread(str(root / 'val2017' / img['file_name']))
        assert on_disk.shape == image.shape
        # JPEG (quality 95, chroma subsampled) of the generated pixels
        assert np.abs(on_disk[..., ::-1] - image.astype(float)).mean() < 8
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        assert len(anns) == len(instances)
        for ann, inst in zip(anns, instances):
            assert cats[ann['category_id']] == COCO_SHAPES[inst.shape]
            # drawn with pycocotools' rasteriser: the very same pixels
            mask = coco.annToMask(ann).astype(bool)
            assert np.array_equal(mask, inst.mask)
            assert ann['area'] == mask.sum()
            colour = on_disk[mask][:, ::-1].mean(0)
            assert np.abs(colour - SHAPE_COLOURS[inst.shape]).max() < 30


@pytest.mark.parametrize('split', ['train', 'val'])
def test_ade_loads_in_mmseg(demo, split):
    folder = {'train': 'training', 'val': 'validation'}[split]
    ds = ADE20KDataset(data_root=str(demo / ADE_ROOT),
                       data_prefix={'img_path': f'images/{folder}',
                                    'seg_map_path': f'annotations/{folder}'},
                       pipeline=[])
    assert len(ds) == DEFAULT_SIZES['ade'][split == 'val']
    load = LoadAnnotations()  # reduce_zero_label from the dataset
    seen = set()
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        raw = cv2.imread(info['seg_map_path'], cv2.IMREAD_UNCHANGED)
        image, labels = ade_sample(SEED, split, i)
        assert np.array_equal(raw, labels)
        assert cv2.imread(info['img_path']).shape == image.shape
        seg = load(info)['gt_seg_map']
        assert np.array_equal(seg == 255, labels == 0)
        seen |= set(np.unique(seg).tolist())
    # wall (the background), the four shapes and some ignored "other"
    assert seen == {0, 255} | {ADE_FIRST_SHAPE - 1 + k
                               for k in range(len(SHAPES))}


@pytest.mark.parametrize('split', ['train', 'val'])
def test_imagenet_loads_in_mmpretrain(demo, split):
    # imported here so that a broken mmpretrain fails this test alone
    from mmpretrain.datasets import ImageNet
    ds = ImageNet(data_root=str(demo / IMAGENET_ROOT), split=split,
                  pipeline=[])
    per_class = DEFAULT_SIZES['imagenet'][split == 'val']
    assert len(ds) == per_class * len(IMAGENET_WNIDS)
    assert len(ds.CLASSES) == 1000
    assert ds.CLASSES[0].startswith('tench')
    assert Counter(ds.get_gt_labels().tolist()) == dict.fromkeys(
        range(len(IMAGENET_WNIDS)), per_class)
    for i in range(len(ds)):
        assert os.path.isfile(ds.get_data_info(i)['img_path'])


def test_imagenet_is_learnable(demo):
    """A nearest-class-mean on 8x8 thumbnails beats chance by far."""
    def load(split):
        lines = (root / 'meta' / f'{split}.txt').read_text().splitlines()
        x, y = [], []
        for line in lines:
            path, label = line.rsplit(' ', 1)
            img = cv2.imread(str(root / split / path))
            x.append(cv2.resize(img, (8, 8), interpolation=cv2.INTER_AREA))
            y.append(int(label))
        return np.reshape(x, (len(x), -1)).astype(float), np.array(y)

    root = demo / IMAGENET_ROOT
    x, y = load('train')
    means = np.stack([x[y == k].mean(0) for k in range(len(SHAPES))])
    x, y = load('val')
    pred = ((x[:, None] - means) ** 2).sum(-1).argmin(1)
    assert (pred == y).mean() > 0.75


def test_deterministic_and_idempotent(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    make_demo_data(a, num_train=3, num_val=2, seed=1)
    make_demo_data(b, num_train=5, num_val=2, seed=1)
    make_demo_data(b, num_train=3, num_val=2, seed=1)  # no stale files
    assert _digests(a) == _digests(b)
    make_demo_data(b, num_train=3, num_val=2, seed=2)
    before, after = _digests(a), _digests(b)
    assert before.keys() == after.keys()
    assert {f for f in before if before[f] == after[f]} == {
        f'{root}/{name}' for root in (COCO_ROOT, ADE_ROOT, IMAGENET_ROOT)
        for name in (MARKER, 'meta/train.txt', 'meta/val.txt')
        if root == IMAGENET_ROOT or name == MARKER}


def test_refuses_to_overwrite_real_data(tmp_path):
    real = tmp_path / COCO_ROOT / 'annotations'
    real.mkdir(parents=True)
    (real / 'instances_val2017.json').write_text('{}')
    with pytest.raises(FileExistsError):
        make_demo_data(tmp_path, tasks=['coco'])
    assert (real / 'instances_val2017.json').read_text() == '{}'


@pytest.mark.parametrize('kwargs', [{'tasks': ['voc']}, {'seed': -1},
                                    {'num_train': 0}, {'num_val': -2}])
def test_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        make_demo_data(tmp_path, **kwargs)
    assert not list(tmp_path.iterdir())


def test_cli(tmp_path, capsys):
    main = runpy.run_path(os.path.join(ROOT, 'tools',
                                       'make_demo_data.py'))['main']
    main([str(tmp_path), '--tasks', 'ade', 'imagenet', '--num-train', '2',
          '--num-val', '1', '--seed', '5'])
    assert capsys.readouterr().out.split() == [
        'ade:', str(tmp_path / ADE_ROOT),
        'imagenet:', str(tmp_path / IMAGENET_ROOT)]
    assert not (tmp_path / COCO_ROOT).exists()
    assert len(list((tmp_path / ADE_ROOT).rglob('*.png'))) == 3
    assert len(list((tmp_path / IMAGENET_ROOT).rglob('*.JPEG'))) == 12
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), '--num-val', '0'])
    assert exc.value.code == 2
