"""Bad data through the real datasets and the shipped configs' pipelines:
an error that names the file, never a silently wrong sample."""
import json
import os

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmhatnet.demo.data import make_demo_data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _dataset(name, tmp_path, loader='train_dataloader'):
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', name))
    init_default_scope(cfg.default_scope)
    registry = __import__(f'{cfg.default_scope}.registry',
                          fromlist=['DATASETS']).DATASETS
    dataset = cfg[loader].dataset
    dataset.data_root = os.path.join(tmp_path, dataset.data_root)
    return registry.build(dataset)


@pytest.fixture
def coco(tmp_path):
    make_demo_data(tmp_path, ['coco'], num_train=2, num_val=1)
    return tmp_path / 'data' / 'coco'


@pytest.fixture
def ade(tmp_path):
    make_demo_data(tmp_path, ['ade'], num_train=2, num_val=1)
    return tmp_path / 'data' / 'ade' / 'ADEChallengeData2016'


def test_corrupt_image_is_named(tmp_path, coco):
    image = coco / 'train2017' / '000000000001.jpg'
    image.write_bytes(b'not a jpeg')
    dataset = _dataset('mask-rcnn_hatnet_tiny.py', tmp_path)
    with pytest.raises(Exception, match='000000000001.jpg'):
        dataset[0]


def test_missing_annotation_file_is_named(tmp_path, coco):
    os.remove(coco / 'annotations' / 'instances_train2017.json')
    with pytest.raises(FileNotFoundError, match='instances_train2017.json'):
        _dataset('retinanet_hatnet_tiny.py', tmp_path).full_init()


def test_coco_image_size_mismatch_is_named(tmp_path, coco):
    ann_file = coco / 'annotations' / 'instances_val2017.json'
    ann = json.loads(ann_file.read_text())
    ann['images'][0]['height'] += 7
    ann_file.write_text(json.dumps(ann))
    dataset = _dataset('mask-rcnn_hatnet_tiny.py', tmp_path,
                       'val_dataloader')
    with pytest.raises(ValueError, match=r'000000000001.jpg is \d+x\d+ '
                       r'\(HxW\) but the annotation file gives'):
        dataset[0]


def test_segmentation_map_size_mismatch_is_named(tmp_path, ade):
    png = sorted((ade / 'annotations' / 'training').iterdir())[0]
    labels = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(png), labels[:-5])
    dataset = _dataset('fpn_hatnet_tiny.py', tmp_path)
    with pytest.raises(ValueError, match=f'but .*{png.name} gives'):
        dataset[0]


def test_zero_area_box_is_skipped_as_upstream_documents(tmp_path, coco):
    ann_file = coco / 'annotations' / 'instances_train2017.json'
    ann = json.loads(ann_file.read_text())
    first = ann['images'][0]['id']
    before = sum(a['image_id'] == first for a in ann['annotations'])
    bad = dict(ann['annotations'][0], id=10**6, image_id=first,
               bbox=[5.0, 5.0, 0.0, 9.0], area=0.0)
    ann['annotations'].append(bad)
    ann_file.write_text(json.dumps(ann))
    dataset = _dataset('retinanet_hatnet_tiny.py', tmp_path)
    dataset.full_init()
    assert len(dataset.get_data_info(0)['instances']) == before
    boxes = dataset[0]['data_samples'].gt_instances.bboxes
    assert len(boxes) == before and np.all(boxes.areas.numpy() > 0)
