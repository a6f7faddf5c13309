"""Tests of the main job (mmhatnet.demo): the summary, the pictures and
curves it writes, on a schedule of a few iterations; its configs; the
chance yardstick; and the upstream inferencers on its checkpoints."""
import dataclasses
import io
import json
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from rich.console import Console

from mmhatnet.demo.chance import chance
from mmhatnet.demo.curves import write_curves
from mmhatnet.demo.data import (
    ADE_BACKGROUND,
    ADE_OTHER,
    ade_sample,
    make_demo_data,
)
from mmhatnet.demo.hooks import DemoPicturesHook
from mmhatnet.demo.job import run_demo, write_config
from mmhatnet.demo.schedule import DEFAULT_TASKS, SCHEDULES

#: the checkout whose configs the demo trains
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
e2e = pytest.mark.e2e  # the tests of a demo run (pytest.ini)

#: The default tasks at a size a test can afford: 2 training iterations.
TINY = {
    'semantic_fpn': dict(num_train=2, num_val=2, length=2, val_every=2,
                         batch=1, scale=(256, 64), crop=(64, 64),
                         warmup=1, pictures=2),
    'mask_rcnn': dict(num_train=2, num_val=2, length=1, val_every=1,
                      batch=1, scale=(128, 96), warmup=1, pictures=2),
}


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """One run of the default job at the TINY sizes: (work dir, summary,
    terminal text)."""
    work_dir = tmp_path_factory.mktemp('demo')
    tasks = {name: dataclasses.replace(SCHEDULES[name], **TINY[name])
             for name in DEFAULT_TASKS}
    terminal = io.StringIO()
    out = run_demo(ROOT, str(work_dir), tasks,
                   Console(file=terminal, width=200))
    return work_dir, out, terminal.getvalue()


@e2e
def test_summary_has_the_documented_shape(demo):
    work_dir, out, _ = demo
    with open(work_dir / 'summary.json') as f:
        assert json.load(f) == out
    assert list(out) == ['semantic_fpn', 'mask_rcnn']
    assert list(out['semantic_fpn']['metrics']) == ['mIoU']
    assert list(out['mask_rcnn']['metrics']) == ['coco/bbox_mAP',
                                                 'coco/segm_mAP']
    for task in out.values():
        assert set(task) == {'metrics', 'pictures', 'curves', 'minutes'}
        assert task['minutes'] > 0
        for value in task['metrics'].values():
            assert isinstance(value, float)
        assert len(task['pictures']) == 2
        assert len(task['curves']) == 2
        for path in task['pictures'] + task['curves']:
            assert not osp.isabs(path)
            assert osp.isfile(osp.join(ROOT, path))


@e2e
def test_pictures_show_ground_truth_next_to_prediction(demo):
    work_dir, out, _ = demo
    for name, folder in (('semantic_fpn', 'images/validation'),
                         ('mask_rcnn', 'val2017')):
        for path in out[name]['pictures']:
            picture = cv2.imread(osp.join(ROOT, path))
            stem = osp.splitext(osp.basename(path))[0]
            root = {'semantic_fpn': 'data/ade/ADEChallengeData2016',
                    'mask_rcnn': 'data/coco'}[name]
            image = cv2.imread(str(work_dir / root / folder /
                                   f'{stem}.jpg'))
            height, width = image.shape[:2]
            assert picture.shape == (height, 2 * width, 3)


@e2e
def test_terminal_is_one_line_per_phase_and_a_table(demo):
    _, out, text = demo
    lines = text.splitlines()
    for phase in ('data', 'train', 'test', 'draw'):
        assert sum(line.lstrip().startswith(phase) for line in lines) == 2
    # the runners' own logs went to files, not here
    assert 'mmengine - INFO' not in text
    assert 'coco/segm_mAP' in text and 'chance' in text
    for task in out.values():
        for path in task['pictures'] + task['curves']:
            assert osp.basename(path) in text


@e2e
def test_runner_logs_go_to_files(demo):
    work_dir, _, _ = demo
    for name in DEFAULT_TASKS:
        log = (work_dir / name / 'console.log').read_text()
        assert 'mmengine - INFO' in log


def test_write_curves(tmp_path):
    scalars = tmp_path / 'scalars.json'
    lines = [dict(loss=2.0 / i, **{'decode.loss_ce': 2.0 / i}, step=i)
             for i in range(1, 5)] + [dict(mIoU=30.0, step=2),
                                      dict(mIoU=60.0, step=4)]
    scalars.write_text(''.join(json.dumps(x) + '\n' for x in lines))
    files = write_curves(str(scalars), str(tmp_path), 'FPN', ('mIoU', ))
    assert [osp.basename(f) for f in files] == ['loss.png', 'metric.png']
    for f in files:
        assert cv2.imread(f).shape == (360, 600, 3)
    with pytest.raises(ValueError, match="none of the metrics.*'mIoU'"):
        write_curves(str(scalars), str(tmp_path), 'FPN', ('coco/bbox_mAP', ))


@pytest.mark.parametrize('name', list(SCHEDULES))
def test_schedule_reaches_the_shipped_config(tmp_path, name):
    """The overrides land on the steps they mean (they index pipelines,
    found by type)."""
    s = SCHEDULES[name]
    cfg = Config.fromfile(write_config(ROOT, name, s, str(tmp_path)))
    assert cfg.model.backbone.init_cfg is None
    assert cfg.optim_wrapper.optimizer.lr == s.lr
    steps = {loader: {t['type']: t for t in
                      cfg[loader].dataset.pipeline}
             for loader in ('train_dataloader', 'test_dataloader')}
    if s.data == 'ade':
        assert steps['train_dataloader']['RandomResize']['scale'] == s.scale
        assert steps['train_dataloader']['RandomCrop']['crop_size'] == \
            s.crop
        assert steps['test_dataloader']['Resize']['scale'] == s.scale
    elif s.data == 'coco':
        for loader in steps.values():
            assert loader['Resize']['scale'] == s.scale
    else:
        assert steps['test_dataloader']['CenterCrop']['crop_size'] == \
            s.scale[0]
    assert {h['type'] for h in cfg.custom_hooks} >= {
        'DemoProgressHook', 'DemoPicturesHook', 'FiniteLossHook'}


def test_chance(tmp_path):
    roots = make_demo_data(tmp_path, ['ade', 'coco'], num_train=1,
                           num_val=3)
    seg = chance('ade', roots['ade'], ('mIoU', ))['mIoU']
    # "wall" everywhere: its IoU is its share of the labelled pixels, each
    # shape class present scores 0
    maps = [ade_sample(0, 'val', i)[1] for i in range(3)]
    labelled = np.concatenate([m[m != ADE_OTHER] for m in maps])
    present = np.unique(labelled)
    share = 100 * (labelled == ADE_BACKGROUND).mean()
    assert seg == pytest.approx(share / len(present), abs=0.01)
    det = chance('coco', roots['coco'], ('coco/bbox_mAP', 'coco/segm_mAP'))
    assert all(0 <= v < 0.05 for v in det.values())
    with pytest.raises(ValueError, match="got 'voc'"):
        chance('voc', tmp_path, ())


def test_pictures_hook_rejects_zero():
    with pytest.raises(ValueError, match='got 0'):
        DemoPicturesHook('out', num=0)


@pytest.fixture(scope='module')
def imagenet_demo(tmp_path_factory):
    """The classification job (``--task imagenet``), one epoch of 2
    iterations."""
    work_dir = tmp_path_factory.mktemp('imagenet')
    task = dataclasses.replace(SCHEDULES['imagenet'], num_train=2,
                               num_val=1, length=1, val_every=1, batch=4,
                               scale=(32, 32), warmup=1, pictures=2)
    out = run_demo(ROOT, str(work_dir), {'imagenet': task},
                   Console(file=io.StringIO()))
    return work_dir, out


@e2e
def test_classification_job(imagenet_demo):
    _, out = imagenet_demo
    assert list(out) == ['imagenet']
    assert list(out['imagenet']['metrics']) == ['accuracy/top1']
    assert len(out['imagenet']['pictures']) == 2
    assert len(out['imagenet']['curves']) == 2


def _checkpoint(work_dir, name):
    with open(work_dir / name / 'train' / 'last_checkpoint') as f:
        return f.read().strip()


@e2e
def test_upstream_inferencers_on_demo_checkpoints(demo, imagenet_demo,
                                                  tmp_path):
    """The README's example: each toolbox's inferencer, a demo config and
    checkpoint, an image in, the drawn result out."""
    from mmdet.apis import DetInferencer
    from mmengine.registry import init_default_scope
    from mmpretrain.apis import ImageClassificationInferencer
    from mmseg.apis import MMSegInferencer

    work_dir, _, _ = demo
    image = str(work_dir / 'data/coco/val2017/000000000001.jpg')
    height, width = cv2.imread(image).shape[:2]

    det = DetInferencer(model=str(work_dir / 'mask_rcnn/mask_rcnn.py'),
                        weights=_checkpoint(work_dir, 'mask_rcnn'),
                        device='cpu')
    result = det(image, out_dir=str(tmp_path / 'det'))
    assert set(result['predictions'][0]) >= {'labels', 'scores', 'bboxes',
                                              'masks'}
    drawn = cv2.imread(str(tmp_path / 'det/vis/000000000001.jpg'))
    assert drawn.shape == (height, width, 3)

    seg = MMSegInferencer(
        model=str(work_dir / 'semantic_fpn/semantic_fpn.py'),
        weights=_checkpoint(work_dir, 'semantic_fpn'), device='cpu')
    result = seg(image, out_dir=str(tmp_path / 'seg'))
    assert result['predictions'].shape == (height, width)
    drawn = cv2.imread(str(tmp_path / 'seg/vis/000000000001.jpg'))
    assert drawn.shape == (height, width, 3)

    # from the weights alone: the config the checkpoint carries, read as
    # literal values (mmhatnet.engine.config_text), never executed
    det = DetInferencer(weights=_checkpoint(work_dir, 'mask_rcnn'),
                        device='cpu')
    assert det.model.backbone.__class__.__name__ == 'HATNet'
    assert 'masks' in det(image)['predictions'][0]
    seg = MMSegInferencer(None, weights=_checkpoint(work_dir,
                                                    'semantic_fpn'),
                          device='cpu')
    assert seg(image)['predictions'].shape == (height, width)

    work_dir, _ = imagenet_demo
    # mmpretrain's inferencer builds its pipeline in the current scope,
    # which the others left at mmseg
    init_default_scope('mmpretrain')
    cls = ImageClassificationInferencer(
        model=str(work_dir / 'imagenet/imagenet.py'),
        pretrained=_checkpoint(work_dir, 'imagenet'), device='cpu')
    (result, ) = cls(image, show_dir=str(tmp_path / 'cls'))
    assert 0 <= result['pred_label'] < 4
    assert cv2.imread(str(tmp_path / 'cls/000000000001.png')) is not None


def test_refuses_to_empty_a_folder_it_did_not_make(tmp_path):
    mine = tmp_path / 'semantic_fpn' / 'notes.txt'
    mine.parent.mkdir()
    mine.write_text('keep')
    with pytest.raises(FileExistsError, match='semantic_fpn.py'):
        run_demo(ROOT, str(tmp_path),
                 {'semantic_fpn': SCHEDULES['semantic_fpn']},
                 Console(file=io.StringIO()))
    assert mine.read_text() == 'keep'
