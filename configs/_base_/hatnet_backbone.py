# The backbone of the paper's detection and segmentation configs
# (Tables 4, 5): G1 = 8, 8, 8 and G2 = 16, 8, 4, drop path 0.1, started
# from the authors' ImageNet weights. The small configs take hatnet_small;
# the others change its arch and weights.
#
# The weights are the authors' release files as they are: mmhatnet
# converts their layout in memory (mmhatnet.models.pretrained). A URL is
# downloaded once into torch hub's cache, keyed by the URL
# (~/.cache/torch/hub/checkpoints/by_url/https/github.com/..., or under
# $TORCH_HOME), by rank 0 while the other ranks wait.
# Offline, set hatnet_release to a local folder, '/path/to/weights/',
# holding these file names (the release files as they are, or
# tools/convert_official.py's output), or one run's file with
# --cfg-options model.backbone.init_cfg.checkpoint=PATH.
hatnet_release = 'https://github.com/yun-liu/HAT-Net/releases/download/v2.0/'
hatnet_weights = dict(
    tiny=hatnet_release + 'HAT-Net_Tiny.pth',
    small=hatnet_release + 'HAT-Net_Small.pth',
    medium=hatnet_release + 'HAT-Net_Medium.pth',
    large=hatnet_release + 'HAT-Net_Large.pth')

hatnet_small = dict(
    type='HATNet',
    arch='small',
    grid_sizes=(8, 8, 8),
    pool_ratios=(16, 8, 4),
    drop_path_rate=0.1,
    init_cfg=dict(
        type='Pretrained',
        checkpoint=hatnet_weights['small'],
        # the converted file's keys; the release's are converted as read
        prefix='backbone.'))
