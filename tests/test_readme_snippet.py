"""The README's "Use HATNet in your own config" snippet, merged into
mmdet's own ``retinanet_r50_fpn_1x_coco.py`` as a user would, trains with
the paper's optimizer: AdamW at lr 1e-4 and weight decay 1e-4, as the
shipped RetinaNet config, not the base's SGD."""
import os
import re

from mmengine.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _snippet() -> str:
    text = open(os.path.join(ROOT, 'README.md')).read()
    section = text.split('## Use HATNet in your own config', 1)[1]
    return re.search(r'```python\n(.*?)```', section, re.S).group(1)


def test_the_snippet_trains_with_the_papers_optimizer(tmp_path):
    path = tmp_path / 'my_retinanet.py'
    path.write_text("_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'"
                    '\n' + _snippet())
    mine = Config.fromfile(str(path))
    shipped = Config.fromfile(
        os.path.join(ROOT, 'configs', 'retinanet_hatnet_small.py'))
    paper = dict(type='AdamW', lr=1e-4, weight_decay=1e-4)
    assert mine.optim_wrapper.optimizer.to_dict() == paper
    assert shipped.optim_wrapper.optimizer.to_dict() == paper
    assert mine.optim_wrapper.get('paramwise_cfg') == \
        shipped.optim_wrapper.get('paramwise_cfg')
    assert mine.param_scheduler == shipped.param_scheduler
    assert mine.model.backbone.type == 'HATNet'
    assert mine.model.backbone.arch == 'small'
    assert list(mine.model.neck.in_channels) == [64, 128, 320, 512]
