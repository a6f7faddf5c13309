"""``tools/train.py`` and ``tools/test.py``: one pair for mmdet, mmseg and
mmpretrain configs (the config's ``default_scope`` picks the toolbox)."""
from __future__ import annotations

import argparse
import contextlib
import os
import os.path as osp
from collections.abc import Iterator
from datetime import timedelta

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..engine import CheckpointError, load_untrusted
from .config_check import check_config


@contextlib.contextmanager
def working_dir(path: str) -> Iterator[None]:
    """Run the block in ``path`` (configs read ``data/`` relative to the
    working directory), then go back."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='folder for logs and checkpoints '
                        '(default: work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='override config entries, key=value (e.g. '
        'train_dataloader.batch_size=4)')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher (dist_*.sh and slurm_*.sh set '
                        'it)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def _load_config(args) -> Config:
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('work_dirs', name)
    return cfg


def _cpu_distributed(cfg: Config) -> None:
    """Let ``--launcher pytorch`` run on CPU processes (gloo).

    mmengine 0.10.7 calls ``torch.cuda.set_device`` and gives DDP a device
    id whatever the device: without a GPU, start the process group here
    (mmengine then skips its own) and wrap the model with no device ids.
    """
    if cfg.launcher != 'pytorch' or torch.cuda.is_available() or \
            torch.distributed.is_initialized():
        return
    timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
    # torch 2.0 refuses timeout=None: pass it only when the config sets it
    torch.distributed.init_process_group(
        'gloo', **({'timeout': timedelta(seconds=timeout)} if timeout else {}))
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                                 device_ids=None, broadcast_buffers=False)


def _build_runner(cfg: Config) -> Runner:
    _cpu_distributed(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def _amp_device() -> bool:
    """Whether mmengine's AmpOptimWrapper can run here (its own test: a
    CUDA, NPU, MLU or, from mmengine 0.10, MUSA device)."""
    import mmengine.device as device
    tests = ('is_cuda_available', 'is_npu_available', 'is_mlu_available',
             'is_musa_available')
    return any(getattr(device, name, lambda: False)() for name in tests)


def train_config(argv: list[str] | None = None) -> Config:
    """Parse ``tools/train.py`` arguments into a checked config."""
    parser = argparse.ArgumentParser(description='Train a model')
    _common_args(parser)
    parser.add_argument('--resume', nargs='?', const='auto',
                        help='resume from this checkpoint, or without a '
                        'path from the newest complete one in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual total batch size '
                        'over auto_scale_lr.base_batch_size')
    args = parser.parse_args(argv)
    cfg = _load_config(args)
    if args.amp:
        if not _amp_device():
            # mmengine's AmpOptimWrapper would assert this only once the
            # runner, model and data are built
            parser.error('--amp needs a GPU (or an NPU, MLU or MUSA device):'
                         ' mmengine\'s AmpOptimWrapper runs only there, and'
                         ' this machine has none; train without --amp')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            parser.error(f'{args.config} sets no auto_scale_lr.'
                         f'base_batch_size')
        cfg.auto_scale_lr.enable = True
    if args.resume is not None:
        # without a path, as the toolboxes' train scripts do: mmengine asks
        # engine.resume.find_latest_checkpoint
        cfg.resume = True
        cfg.load_from = None if args.resume == 'auto' else args.resume
    try:
        if args.resume not in (None, 'auto'):
            load_untrusted(args.resume, 'meta')
        check_config(cfg)
    except ValueError as e:
        parser.error(str(e))
    return cfg


TOOLBOXES = ('mmdet', 'mmseg', 'mmpretrain')


def _toolbox(cfg: Config, flag: str) -> str:
    scope = cfg.get('default_scope')
    if scope not in TOOLBOXES:
        raise ValueError(f'{flag} follows the tools/test.py of mmdet, mmseg '
                         f'and mmpretrain; this config\'s default_scope is '
                         f'{scope!r}')
    return scope


def show_predictions(cfg: Config, out_dir: str) -> None:
    """``--show-dir``: draw each test prediction into ``out_dir`` with the
    toolbox's visualization hook, as its own ``tools/test.py`` does."""
    scope = _toolbox(cfg, '--show-dir')
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError('--show-dir draws through default_hooks.'
                         'visualization, which this config does not set')
    if scope == 'mmdet':  # relative: under work_dir/<timestamp>/
        hook.update(draw=True, test_out_dir=out_dir)
    elif scope == 'mmseg':
        # into the visualizer's vis_data/vis_image/; every image (mmseg's
        # tool keeps the hook's interval, 50)
        hook.update(draw=True, interval=1)
        cfg.visualizer.save_dir = out_dir
    else:
        hook.update(enable=True, out_dir=out_dir, interval=1)


#: what mmdet's and mmpretrain's tools/test.py merge flip TTA with
FLIP_TTA_MODELS = {
    'mmdet': dict(type='DetTTAModel',
                  tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5),
                               max_per_img=100)),
    'mmpretrain': dict(type='AverageClsScoreTTA'),
}


def _flip_tta_pipeline(pipeline: list, meta_keys: tuple) -> list:
    """The test pipeline with its packing step (found by type) run on the
    image and on its horizontal flip: mmdet's and mmpretrain's fallback
    when a config sets no ``tta_pipeline``."""
    packs = [i for i, step in enumerate(pipeline)
             if step['type'] in ('PackDetInputs', 'PackInputs')]
    if not packs:
        raise ValueError('--tta: the test pipeline has no PackDetInputs / '
                         'PackInputs step to augment before')
    pack = dict(pipeline[packs[0]])
    if meta_keys and 'meta_keys' in pack:
        pack['meta_keys'] = tuple(dict.fromkeys([*pack['meta_keys'],
                                                 *meta_keys]))
    flips = [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip',
                                                     prob=0.)]
    return [*pipeline[:packs[0]],
            dict(type='TestTimeAug', transforms=[flips, [pack]]),
            *pipeline[packs[0] + 1:]]


def use_tta(cfg: Config) -> None:
    """``--tta``: wrap the model in the config's ``tta_model`` and test on
    its ``tta_pipeline``. Without them mmdet and mmpretrain fall back to
    flip TTA (as their ``tools/test.py`` do); mmseg needs both."""
    scope = _toolbox(cfg, '--tta')
    if scope == 'mmpretrain' and cfg.default_hooks.get(
            'visualization', {}).get('enable'):
        # its hook reads one image tensor per sample; TTA gives one per view
        raise ValueError("--tta with --show-dir: mmpretrain's "
                         'VisualizationHook cannot draw test-time augmented '
                         'batches; draw without --tta')
    if scope == 'mmseg' and not ('tta_model' in cfg and 'tta_pipeline' in
                                 cfg):
        raise ValueError('--tta: this config sets no tta_model and '
                         'tta_pipeline (mmseg\'s dataset and runtime bases '
                         'define them)')
    if 'tta_model' not in cfg:
        cfg.tta_model = FLIP_TTA_MODELS[scope]
    if 'tta_pipeline' not in cfg:
        meta = ('flip', 'flip_direction') if scope == 'mmdet' else ()
        cfg.tta_pipeline = _flip_tta_pipeline(
            cfg.test_dataloader.dataset.pipeline, meta)
    cfg.model = dict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def _seg_tta_keeps_img_path() -> bool:
    """Whether mmseg's ``SegTTAModel`` gives its merged predictions the
    ``img_path`` of their image (mmseg 1.0.0's does not)."""
    import inspect

    from mmseg.models.segmentors import SegTTAModel
    return 'img_path' in inspect.getsource(SegTTAModel.merge_preds)


def dump_predictions(cfg: Config, out: str) -> None:
    """``--out``: keep the raw predictions as the toolbox's
    ``tools/test.py`` does: mmdet's ``DumpDetResults`` or mmengine's
    ``DumpResults`` (mmpretrain) to a .pkl file; mmseg's evaluator writes
    the predicted label maps into the folder ``out``."""
    scope = _toolbox(cfg, '--out')
    evaluator = cfg.test_evaluator
    metrics = evaluator if isinstance(evaluator, list) else [evaluator]
    if scope == 'mmseg' and cfg.model.get('type') == 'SegTTAModel' and \
            not _seg_tta_keeps_img_path():
        import mmseg
        raise ValueError(
            f'--out with --tta: mmsegmentation {mmseg.__version__}\'s '
            f'SegTTAModel drops img_path, by which the evaluator names the '
            f'label maps it writes (1.2.1 keeps it); run --out without '
            f'--tta, or upgrade mmsegmentation')
    if scope == 'mmseg':
        cfg.test_evaluator = [dict(m, output_dir=out, keep_results=True)
                              for m in metrics]
        return
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {out}: {scope} dumps the predictions to a '
                         f'.pkl file')
    dump = 'DumpDetResults' if scope == 'mmdet' else 'DumpResults'
    cfg.test_evaluator = [*metrics, dict(type=dump, out_file_path=out)]


def test_config(argv: list[str] | None = None) -> Config:
    """Parse ``tools/test.py`` arguments into a checked config."""
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    _common_args(parser)
    parser.add_argument('checkpoint', help='checkpoint to evaluate')
    parser.add_argument(
        '--out', help='keep the raw predictions: mmdet and mmpretrain '
        'configs dump them to this .pkl file, mmseg configs write the '
        'predicted label maps into this folder')
    parser.add_argument(
        '--show-dir', help='draw the predictions into this folder (mmdet: '
        'a relative path is under work_dir/<timestamp>/; mmseg: the images '
        'are in its vis_image/)')
    parser.add_argument(
        '--tta', action='store_true', help="test-time augmentation: the "
        "config's tta_model and tta_pipeline (mmdet, mmpretrain without "
        'them: flip)')
    args = parser.parse_args(argv)
    try:
        load_untrusted(args.checkpoint, 'meta')
    except ValueError as e:
        parser.error(str(e))
    cfg = _load_config(args)
    cfg.load_from = args.checkpoint
    # the checkpoint holds every weight: no pretrained file needed
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None
    try:
        check_config(cfg)
        if args.show_dir is not None:
            show_predictions(cfg, args.show_dir)
        if args.tta:
            use_tta(cfg)
        if args.out is not None:
            dump_predictions(cfg, args.out)
    except ValueError as e:
        parser.error(str(e))
    return cfg


def train(argv: list[str] | None = None) -> None:
    runner = _build_runner(train_config(argv))
    try:
        runner.train()
    except CheckpointError as e:  # resume state that does not fit the run
        raise SystemExit(f'train.py: error: {e}') from None


def test(argv: list[str] | None = None) -> dict:
    runner = _build_runner(test_config(argv))
    try:
        return runner.test()
    except CheckpointError as e:
        raise SystemExit(f'test.py: error: {e}') from None
