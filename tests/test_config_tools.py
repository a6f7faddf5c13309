"""mmhatnet.config_tools: the shipped configs found in a checkout, and a
short run's image sizes set on the pipeline steps found by type."""
import os

import pytest
from mmengine.config import Config

from mmhatnet.config_tools import (as_cfg_options, image_size_options,
                                   shipped_config)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_shipped_config_is_found_in_the_checkout_or_named_missing(tmp_path):
    assert shipped_config(ROOT, 'fpn_hatnet_tiny.py') == os.path.join(
        ROOT, 'configs', 'fpn_hatnet_tiny.py')
    with pytest.raises(FileNotFoundError, match='configs/ folder of an '
                       'mmhatnet checkout'):
        shipped_config(str(tmp_path), 'fpn_hatnet_tiny.py')


def test_sizes_follow_the_steps_when_a_pipeline_is_reordered():
    cfg = Config.fromfile(shipped_config(ROOT, 'fpn_hatnet_tiny.py'))
    sizes = dict(scale=(256, 64), crop=(64, 64))
    assert image_size_options(cfg, loaders=('train_dataloader', ),
                              **sizes) == {
        'train_dataloader.dataset.pipeline.3.scale': (256, 64),
        'train_dataloader.dataset.pipeline.4.crop_size': (64, 64),
        'model.data_preprocessor.size': (64, 64)}
    # crop before resize, and a step more in front
    steps = cfg.train_dataloader.dataset.pipeline
    steps[3], steps[4] = steps[4], steps[3]
    steps.insert(0, dict(type='LoadImageFromFile'))
    options = image_size_options(cfg, **sizes)
    assert options['train_dataloader.dataset.pipeline.4.crop_size'] == \
        (64, 64)
    assert options['train_dataloader.dataset.pipeline.5.scale'] == (256, 64)
    cfg.merge_from_dict(options)
    by_type = {s['type']: s for s in cfg.train_dataloader.dataset.pipeline}
    assert by_type['RandomResize']['scale'] == (256, 64)
    assert by_type['RandomCrop']['crop_size'] == (64, 64)
    assert 'train_dataloader.dataset.pipeline.4.crop_size=(64, 64)' in \
        as_cfg_options(options)


def test_a_pipeline_without_the_step_is_named():
    cfg = Config.fromfile(shipped_config(ROOT, 'retinanet_hatnet_tiny.py'))
    with pytest.raises(ValueError, match=r"train_dataloader.dataset.pipeline"
                       r" has none of the steps \['CenterCrop', 'RandomCrop',"
                       r" 'RandomResizedCrop'\], which take the crop"):
        image_size_options(cfg, crop=(64, 64))
