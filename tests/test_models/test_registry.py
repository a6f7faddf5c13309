"""``dict(type='HATNet')`` from a config outside the repository, under each
OpenMMLab scope, with nothing but ``custom_imports``."""
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

SCOPES = {'mmdet': 'mmdet.registry', 'mmseg': 'mmseg.registry',
          'mmpretrain': 'mmpretrain.registry'}


@pytest.mark.parametrize('scope', SCOPES)
def test_builds_under_every_scope(tmp_path, scope):
    cfg_file = tmp_path / f'{scope}_cfg.py'
    cfg_file.write_text(
        "custom_imports = dict(imports=['mmhatnet'], "
        "allow_failed_imports=False)\n"
        f"default_scope = '{scope}'\n"
        "backbone = dict(type='HATNet', arch='t', out_indices=(1, 2))\n")
    cfg = Config.fromfile(str(cfg_file))
    registry = __import__(SCOPES[scope], fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        backbone = registry.build(cfg.backbone)
    assert type(backbone).__name__ == 'HATNet'
    assert backbone.out_channels == (96, 240)
