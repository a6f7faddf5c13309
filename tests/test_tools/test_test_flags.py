"""tools/test.py --out, --show-dir and --tta on a RetinaNet, a Mask R-CNN,
a Semantic FPN and an ImageNet checkpoint (random weights, generated data),
with each toolbox's own meaning of the flag."""
import argparse
import glob
import os
import pickle

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, DefaultScope
from mmengine.utils import import_modules_from_strings

from e2e import config, metric, small_options, tool
from mmhatnet.apis import runner
from mmhatnet.demo.data import make_demo_data

DATA = {'retinanet': 'coco', 'mask-rcnn': 'coco', 'fpn': 'ade',
        'imagenet': 'imagenet'}


def _options(family, *extra):
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(small_options(family, *extra)).cfg_options


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    """Generated data (one test image; ImageNet: one per class) and a
    checkpoint of each family's Tiny model, random weights."""
    root = tmp_path_factory.mktemp('flags')
    make_demo_data(root, sorted(set(DATA.values())), num_train=1,
                   num_val=1)
    for family in DATA:
        cfg = Config.fromfile(config(family))
        cfg.merge_from_dict(_options(family))
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            import_modules_from_strings(cfg.custom_imports['imports'])
            model = MODELS.build(cfg.model)
        torch.save({'state_dict': model.state_dict(), 'meta': {}},
                   root / f'{family}.pth')
    return root


def _test_config(work, family, *flags):
    return runner.test_config([config(family), str(work / f'{family}.pth'),
                        *flags, *small_options(family)])


def test_flags_configure_each_toolbox(work):
    det = _test_config(work, 'mask-rcnn', '--out', 'r.pkl', '--show-dir',
                       'show', '--tta')
    assert det.default_hooks.visualization.draw
    assert det.default_hooks.visualization.test_out_dir == 'show'
    assert det.model.type == 'InstanceSegTTAModel'  # the config's
    assert det.model.module.type == 'MaskRCNN'
    # no tta_pipeline in the config: mmdet's flip TTA at the pack step
    aug = [s for s in det.test_dataloader.dataset.pipeline
           if s.type == 'TestTimeAug'][0]
    assert [f['prob'] for f in aug.transforms[0]] == [1., 0.]
    assert {'flip', 'flip_direction'} <= set(aug.transforms[1][0].meta_keys)
    assert det.test_evaluator[-1] == dict(type='DumpDetResults',
                                          out_file_path='r.pkl')

    # apart: mmseg 1.0.0 refuses --out with --tta (see the e2e test below)
    seg = _test_config(work, 'fpn', '--show-dir', 'show', '--tta')
    assert seg.visualizer.save_dir == 'show'
    assert seg.default_hooks.visualization.interval == 1
    assert seg.model.type == 'SegTTAModel'
    assert seg.test_dataloader.dataset.pipeline == seg.tta_pipeline
    seg = _test_config(work, 'fpn', '--out', 'maps')
    assert seg.test_evaluator[0].output_dir == 'maps'
    assert seg.test_evaluator[0].keep_results

    cls = _test_config(work, 'imagenet', '--out', 'c.pkl', '--tta')
    assert cls.model.type == 'AverageClsScoreTTA'
    assert cls.test_evaluator[-1].type == 'DumpResults'


@pytest.mark.parametrize('family, flags, message', [
    ('retinanet', ['--out', 'r.json'],
     '--out r.json: mmdet dumps the predictions to a .pkl file'),
    ('imagenet', ['--show-dir', 'show', '--tta'],
     "mmpretrain's VisualizationHook cannot draw test-time augmented"),
])
def test_flags_without_a_meaning_say_so(work, capsys, family, flags,
                                        message):
    with pytest.raises(SystemExit) as e:
        _test_config(work, family, *flags)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def _small_tta(family):
    """Smaller TTA views than the config's (RetinaNet: mmdet's 1333x800,
    666x400 and 2000x1200; Semantic FPN: mmseg's 0.5-1.75 of the image):
    overrides of its tta_pipeline's resize steps, found by type."""
    pipeline = Config.fromfile(config(family)).get('tta_pipeline')
    if pipeline is None:  # tools/test.py's flip TTA of the test pipeline
        return []
    at = [i for i, s in enumerate(pipeline) if s.type == 'TestTimeAug'][0]
    views = pipeline[at].transforms
    j = [j for j, v in enumerate(views) if v[0].type == 'Resize'][0]
    key = f'tta_pipeline.{at}.transforms.{j}'
    return [f'{key}.{i}.scale_factor=0.25' if 'scale_factor' in v else
            f'{key}.{i}.scale=({64 + 32 * i},{64 + 32 * i})'
            for i, v in enumerate(views[j])]


@pytest.mark.e2e
@pytest.mark.parametrize('family', ['retinanet', 'mask-rcnn', 'fpn'])
def test_dense_prediction_with_every_flag(work, tmp_path, family):
    out = str(tmp_path / ('maps' if family == 'fpn' else 'results.pkl'))
    show = str(tmp_path / 'show')
    args = ('test.py', config(family), str(work / f'{family}.pth'),
            '--work-dir', str(tmp_path / 'work'), '--out', out,
            '--show-dir', show, '--tta',
            *small_options(family, *_small_tta(family)))
    if family == 'fpn':
        from mmhatnet.apis.runner import _seg_tta_keeps_img_path
        if not _seg_tta_keeps_img_path():  # mmseg 1.0.0: refused, clearly
            proc = tool(*args, cwd=work, check=False)
            assert proc.returncode == 2
            assert 'SegTTAModel drops img_path' in proc.stderr
            return
    proc = tool(*args, cwd=work)
    log = proc.stdout + proc.stderr
    if family == 'fpn':
        assert 0 <= metric(log, 'mIoU') <= 100
        assert os.listdir(out) == ['ADE_val_00000001.png']
        drawn = glob.glob(f'{show}/vis_data/vis_image/*.png')
    else:
        assert 0 <= metric(log, 'coco/bbox_mAP') <= 100
        with open(out, 'rb') as f:
            results = pickle.load(f)
        assert len(results) == 1
        predicted = results[0]['pred_instances']
        assert len(predicted['bboxes']) > 0
        assert ('masks' in predicted) == (family == 'mask-rcnn')
        drawn = glob.glob(f'{show}/*.jpg')
    assert len(drawn) == 1


@pytest.mark.e2e
def test_classification_flags(work, tmp_path):
    out = tmp_path / 'results.pkl'
    checkpoint = str(work / 'imagenet.pth')
    tta = tool('test.py', config('imagenet'), checkpoint, '--work-dir',
               str(tmp_path / 'work'), '--out', str(out), '--tta',
               *small_options('imagenet'), cwd=work)
    assert 0 <= metric(tta.stdout + tta.stderr, 'accuracy/top1') <= 100
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == 4  # one image per class
    tool('test.py', config('imagenet'), checkpoint, '--work-dir',
         str(tmp_path / 'work'), '--show-dir', str(tmp_path / 'show'),
         *small_options('imagenet'), cwd=work)
    assert len(os.listdir(tmp_path / 'show')) == 4
