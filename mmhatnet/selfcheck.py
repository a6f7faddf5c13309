"""``bash tools/run.sh check`` (``tools/check.py``; not runtime): does this
machine's stack work, on every device it has?

One table: Python, torch and its CUDA, the NVIDIA driver and the GPUs;
mmcv's ``nms`` and ``roi_align`` run on each device against values worked
out by hand; HATNet forward and backward on each device in fp32, and under
autocast (bf16 on the CPU; fp16, and bf16 where the GPU has it, on CUDA)
against fp32; one training iteration of Semantic FPN, RetinaNet and Mask
R-CNN Tiny on generated data through the real runner, on the GPU (also with
``--amp`` there), or on the CPU where there is none. Any failure makes the
exit status 1. On a machine without a GPU the table says so plainly; if
``nvidia-smi`` lists GPUs that torch does not see, that is a failure.

``--report FILE`` then runs the benchmark on each GPU (on the CPU where
there is none, at a CPU-sized workload: :data:`BENCHMARKS`) and a
1-process ``tools/dist_train.sh`` + ``tools/dist_test.sh`` on generated
data, and writes one Markdown report: environment, verdicts, tables
(:func:`write_report`).

Two things come from the caller (``tools/check.py`` passes both): the
mmhatnet checkout whose configs are trained (``root``), and the reader of
``nvidia-smi`` (``list_gpus``: ``tools/gpu_env.py``'s, the set-up's own,
which runs before any venv exists and so lives outside the package).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import os.path as osp
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence

import torch
from mmengine.config import Config

from .apis import train_config, working_dir
from .config_tools import (LOADERS, as_cfg_options, image_size_options,
                           shipped_config)
from .demo.data import make_demo_data
from .models import HATNet

OK, FAIL, INFO = 'ok', 'FAIL', 'info'
#: Autocast is compared with fp32 to this many units of the dtype's
#: rounding (relative norm of the difference). HAT-Net Tiny's outputs and
#: gradients measured about 5 units off under CPU bf16.
AUTOCAST_UNITS = 16

#: The families trained, with what makes one iteration small: the demo
#: data set, the image sizes (:func:`image_size_options`), one image pair
#: and no validation (as tests/test_tools/e2e.py does).
TRAIN = {
    'fpn': dict(data='ade', sizes=dict(scale=(256, 64), crop=(64, 64)),
                options=['train_cfg.max_iters=1',
                         'train_cfg.val_interval=2']),
    'retinanet': dict(data='coco', sizes=dict(scale=(96, 64)),
                      options=['train_cfg.max_epochs=1',
                               'train_cfg.val_interval=2']),
}
TRAIN['mask-rcnn'] = TRAIN['retinanet']
COMMON = ['model.backbone.init_cfg=None', 'train_dataloader.batch_size=2',
          'train_dataloader.num_workers=0',
          'train_dataloader.persistent_workers=False', 'randomness.seed=0']


@dataclasses.dataclass
class Row:
    check: str
    device: str
    status: str
    detail: str = ''


def devices() -> list[torch.device]:
    found = [torch.device('cpu')]
    if torch.cuda.is_available():
        found += [torch.device('cuda', i)
                  for i in range(torch.cuda.device_count())]
    return found


def autocast_dtypes(device: torch.device) -> list[torch.dtype]:
    if device.type == 'cpu':
        return [torch.bfloat16]
    with torch.cuda.device(device):
        bf16 = torch.cuda.is_bf16_supported()
    return [torch.float16] + ([torch.bfloat16] if bf16 else [])


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


# --- the environment -------------------------------------------------------

def environment_rows(list_gpus: Callable[[], Sequence | None]) -> list[Row]:
    """Python, torch, the driver and the GPUs. ``list_gpus()``: the GPUs
    ``nvidia-smi`` lists (each with a ``driver``), None without
    nvidia-smi; it raises where nvidia-smi fails."""
    rows = [Row('python', '', INFO, platform.python_version()),
            Row('torch', '', INFO, f'{torch.__version__}, CUDA '
                f'{torch.version.cuda or "none (CPU build)"}, kernels for '
                f'{" ".join(torch.cuda.get_arch_list()) or "no GPU"}')]
    try:
        found = list_gpus()
    except Exception as e:  # noqa: BLE001  a broken driver is a row
        found = ()
        rows.append(Row('driver', '', FAIL, _short(e)))
    else:
        if found is None:
            rows.append(Row('driver', '', INFO, 'no nvidia-smi'))
        elif not found:
            rows.append(Row('driver', '', FAIL, 'nvidia-smi lists no GPU'))
        else:
            rows.append(Row('driver', '', INFO, f'NVIDIA {found[0].driver}'))
    listed = list(found or ())
    seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for i in range(seen):
        p = torch.cuda.get_device_properties(i)
        rows.append(Row('gpu', f'cuda:{i}', OK,
                        f'{p.name}, sm {p.major}.{p.minor}, '
                        f'{p.total_memory / 2**30:.0f} GiB'))
    if seen < len(listed):
        rows.append(Row('gpu', '', FAIL,
                        f'nvidia-smi lists {len(listed)} GPUs, torch sees '
                        f'{seen}: torch {torch.__version__} cannot use this '
                        f'driver or these GPUs (docs/user_guides/gpu.md)'))
    elif not listed and not seen:
        rows.append(Row('gpu', '', INFO, 'NO GPU FOUND: only the CPU was '
                        'checked'))
    return rows


# --- mmcv's compiled ops ---------------------------------------------------

def check_nms(device: torch.device) -> str:
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.],
                          [20., 20., 30., 30.]], device=device)
    scores = torch.tensor([0.9, 0.8, 0.7], device=device)
    # boxes 0 and 1 overlap with IoU 81 / 119 = 0.68: 1 goes
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert dets.device == device, dets.device
    assert keep.tolist() == [0, 2], keep.tolist()
    return 'keeps boxes 0, 2 of 3 as expected'


def check_roi_align(device: torch.device) -> str:
    from mmcv.ops import roi_align
    # feature value = column index: bilinear sampling of a linear map is
    # exact, so each bin gives the mean column of its sampling points
    feats = torch.arange(8., device=device).expand(1, 2, 8, 8).clone()
    feats.requires_grad_(True)
    rois = torch.tensor([[0., 2., 2., 6., 6.]], device=device)
    out = roi_align(feats, rois, (2, 2), 1.0, 2, 'avg', True)
    expected = torch.tensor([2.5, 4.5], device=device).expand(1, 2, 2, 2)
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    # each of the 8 output values spreads a gradient summing to 1
    torch.testing.assert_close(feats.grad.sum().item(), 8.0)
    return 'forward exact, gradient sums to 1 per bin'


# --- HATNet in fp32 and under autocast -------------------------------------

def _hatnet_pass(model: torch.nn.Module, x: torch.Tensor,
                 dtype: torch.dtype | None):
    model.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=dtype,
                        enabled=dtype is not None):
        outs = model(x)
    # a fixed random projection of every output: non-trivial gradients
    g = torch.Generator().manual_seed(1)
    loss = sum((o.float() * torch.randn(o.shape, generator=g).to(o.device))
               .sum() for o in outs)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    return [o.detach().float() for o in outs], grads, outs[0].dtype


def hatnet_rows(device: torch.device) -> list[Row]:
    """fp32 (and on CUDA, fp32 against the CPU), then each autocast dtype
    against fp32; drop path off, so that passes are comparable."""
    torch.manual_seed(0)
    model = HATNet('tiny', drop_path_rate=0.0).to(device)
    # 64x88: stride-4 map 16x22, so the local attention pads and masks
    x = torch.randn(1, 3, 64, 88, device=device)
    rows = []
    name = 'HATNet fwd+bwd fp32'
    try:
        ref, ref_grads, _ = _hatnet_pass(model, x, None)
        finite = all(o.isfinite().all() for o in ref) and \
            ref_grads.isfinite().all()
        assert finite, 'non-finite outputs or gradients'
        detail = 'finite'
        if device.type != 'cpu':
            cpu = HATNet('tiny', drop_path_rate=0.0)
            cpu.load_state_dict(model.state_dict())
            outs, grads, _ = _hatnet_pass(cpu, x.cpu(), None)
            err = max(relative_error(a.to(device), b)
                      for a, b in zip(outs, ref))
            gerr = relative_error(grads.to(device), ref_grads)
            # TF32 convolutions (cuDNN's default) round to 10 bits
            assert err < 1e-2 and gerr < 1e-2, (err, gerr)
            detail = f'vs CPU: outputs {err:.1e}, gradients {gerr:.1e}'
        rows.append(Row(name, str(device), OK, detail))
    except Exception as e:  # noqa: BLE001  the table reports every failure
        rows.append(Row(name, str(device), FAIL, _short(e)))
        return rows
    for dtype in autocast_dtypes(device):
        name = f'HATNet fwd+bwd autocast {str(dtype)[6:]}'
        try:
            outs, grads, out_dtype = _hatnet_pass(model, x, dtype)
            tol = AUTOCAST_UNITS * torch.finfo(dtype).eps
            err = max(relative_error(a, b) for a, b in zip(outs, ref))
            gerr = relative_error(grads, ref_grads)
            assert out_dtype == dtype, f'outputs are {out_dtype}'
            assert err < tol and gerr < tol, (
                f'vs fp32: outputs {err:.1e}, gradients {gerr:.1e}, '
                f'allowed {tol:.1e}')
            rows.append(Row(name, str(device), OK,
                            f'vs fp32: outputs {err:.1e}, gradients '
                            f'{gerr:.1e} (< {tol:.1e})'))
        except Exception as e:  # noqa: BLE001
            rows.append(Row(name, str(device), FAIL, _short(e)))
    return rows


# --- one training iteration per family -------------------------------------

def train_one_iteration(family: str, work_dir: str, amp: bool,
                        root: str) -> str:
    """One iteration of ``configs/<family>_hatnet_tiny.py`` of the checkout
    ``root`` through ``tools/train.py``'s config handling and mmengine's
    runner, in ``work_dir`` (where the generated data is)."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    config = shipped_config(root, f'{family}_hatnet_tiny.py')
    sizes = image_size_options(Config.fromfile(config),
                               loaders=('train_dataloader', ),
                               **TRAIN[family]['sizes'])
    argv = [config, '--work-dir', osp.join(work_dir, f'{family}-{amp}'),
            '--cfg-options', *COMMON, *TRAIN[family]['options'],
            *as_cfg_options(sizes)]
    cfg = train_config(argv + (['--amp'] if amp else []))
    cfg.log_level = 'ERROR'
    cfg.default_hooks.checkpoint = None  # nothing to keep, nothing to test
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    seen = {}

    class Probe(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            seen['before'] = [p.detach().clone()
                              for p in runner.model.parameters()]

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            seen['loss'] = torch.as_tensor(outputs['loss']).item()
            seen['changed'] = sum(
                not torch.equal(a, p.detach()) for a, p in
                zip(seen['before'], runner.model.parameters()))
            seen['device'] = next(runner.model.parameters()).device

    runner = Runner.from_cfg(cfg)
    runner.register_hook(Probe(), priority='LOWEST')
    runner.train()
    assert 'loss' in seen, 'no training iteration ran'
    assert torch.isfinite(torch.tensor(seen['loss'])), seen['loss']
    total = len(seen['before'])
    detail = (f'loss {seen["loss"]:.3f} on {seen["device"]}, '
              f'{seen["changed"]}/{total} tensors updated')
    # AMP's first steps may be skipped while the loss scale settles
    assert amp or seen['changed'], 'no parameter changed'
    return detail


def training_rows(families: list[str], root: str) -> list[Row]:
    device = 'cuda:0' if torch.cuda.is_available() else 'cpu'
    modes = [False, True] if torch.cuda.is_available() else [False]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, working_dir(tmp):
        make_demo_data(tmp, sorted({TRAIN[f]['data'] for f in families}),
                       num_train=2, num_val=1)
        for family in families:
            for amp in modes:
                name = f'train 1 iter {family} tiny' + (' --amp' if amp
                                                        else '')
                rows.append(_row(
                    name, device,
                    lambda f=family, a=amp: train_one_iteration(
                        f, tmp, a, root)))
    if not torch.cuda.is_available():
        rows.append(Row('train --amp', 'cpu', INFO, 'not run: mmengine\'s '
                        'AmpOptimWrapper needs a GPU'))
    return rows


# --- the table -------------------------------------------------------------

def _short(e: BaseException) -> str:
    text = f'{type(e).__name__}: {e}'.replace('\n', ' ')
    return text if len(text) < 300 else text[:297] + '...'


def _row(name: str, device: str, fn: Callable[[], str]) -> Row:
    start = time.perf_counter()
    try:
        status, detail = OK, fn()
    except Exception as e:  # noqa: BLE001  the table reports every failure
        traceback.print_exc()
        status, detail = FAIL, _short(e)
    return Row(name, device, status,
               f'{detail} [{time.perf_counter() - start:.1f} s]')


def run_checks(root: str, list_gpus: Callable[[], Sequence | None],
               families: list[str] | None = None) -> list[Row]:
    """Every row of the table (see the module docstring); ``families``
    trained, default all of :data:`TRAIN`."""
    rows = environment_rows(list_gpus)
    for device in devices():
        rows.append(_row('mmcv nms', str(device),
                         lambda d=device: check_nms(d)))
        rows.append(_row('mmcv roi_align fwd+bwd', str(device),
                         lambda d=device: check_roi_align(d)))
        rows += hatnet_rows(device)
    rows += training_rows(list(TRAIN) if families is None else families,
                          root)
    return rows


def format_table(rows: list[Row]) -> str:
    widths = [max(len(getattr(r, f)) for r in rows) for f in
              ('check', 'device', 'status')]
    lines = []
    for r in rows:
        lines.append(f'{r.check:<{widths[0]}}  {r.device:<{widths[1]}}  '
                     f'{r.status:<{widths[2]}}  {r.detail}'.rstrip())
    failed = sum(r.status == FAIL for r in rows)
    lines.append(f'{failed} check(s) FAILED' if failed else
                 'all checks passed')
    return '\n'.join(lines)


def main(argv: list[str] | None, root: str,
         list_gpus: Callable[[], Sequence | None]) -> int:
    """``tools/check.py``: print the table; 1 if a check failed, else 0.
    With ``--report FILE``, also the benchmark and a 1-process
    ``dist_train.sh`` + ``dist_test.sh``, into one Markdown report
    (:func:`write_report`). ``root`` and ``list_gpus``: see the module
    docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--train', nargs='*', choices=list(TRAIN),
                        default=list(TRAIN),
                        help='families to train one iteration (none: skip)')
    parser.add_argument('--json', help='also write the rows to this file')
    parser.add_argument('--report', metavar='FILE',
                        help='also run the benchmark and a 1-process '
                        'tools/dist_train.sh + tools/dist_test.sh, and '
                        'write environment, table and verdicts to this '
                        'Markdown file')
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = run_checks(root, list_gpus, args.train)
    print(format_table(rows), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump([dataclasses.asdict(r) for r in rows], f, indent=1)
    failed = any(r.status == FAIL for r in rows)
    if args.report:
        failed = not write_report(args.report, root, list_gpus, rows,
                                  start) or failed
    return 1 if failed else 0


# --- the report (--report FILE) --------------------------------------------
#
# The workload on a GPU is sized to finish in under 8 minutes on one
# H100-class GPU after set-up. That is an estimate, NOT a measurement (no
# GPU has run it yet): the self-check takes seconds per GPU plus six
# one-iteration trainings; each benchmark cell (4 models, batch 2, 3 timed
# rounds of forward and training step, one memory and one FLOP pass) is
# about 20 passes per model, well under a second each for these backbones
# at 800x1344 on such a GPU, so under a minute a cell, 4 cells per GPU
# (the benchmark runs on every GPU in turn: 8 GPUs take 8 times that); the
# 1-GPU train (2 iterations, one validation) and test on generated data
# take about a minute together, most of it start-up.

#: The benchmark cells, per device type: (arch, (H, W), batch, repeats,
#: AMP dtype or None). On CPU the quickest real settings: Tiny, a small
#: input, one timed round, fp32 (a CPU cell takes about a minute on 2
#: cores: the release baseline's training step alone is seconds).
BENCHMARKS = {
    'cuda': [('small', shape, 2, 3, amp)
             for shape in ((512, 512), (800, 1344))
             for amp in (None, torch.float16)],
    'cpu': [('tiny', (64, 64), 1, 1, None)],
}
#: The 1-process train and test: RetinaNet Tiny on the generated COCO
#: layout, 4 images in batches of 2 (2 iterations), one epoch, validated
#: and checkpointed at its end. (Not Semantic FPN: its SyncBN does not run
#: in a CPU process group.) An untrained detector scores below the
#: default 0.05: its boxes are kept so that the evaluator has results.
DIST_FAMILY = 'retinanet'
DIST_OPTIONS = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                'default_hooks.logger.interval=1']
DIST_TEST_OPTIONS = ['model.test_cfg.score_thr=0.0']
DIST_TIMEOUT = 900


@dataclasses.dataclass
class Step:
    name: str
    passed: bool
    reason: str
    seconds: float


def _versions() -> list[tuple[str, str]]:
    found = []
    for name in ('mmcv', 'mmengine', 'mmdet', 'mmsegmentation',
                 'mmpretrain', 'mmhatnet'):
        try:
            found.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            found.append((name, 'not installed'))
    return found


def environment_section(list_gpus: Callable[[], Sequence | None]) -> str:
    """Python, torch, CUDA, the GPUs, the OpenMMLab versions and the
    set-up's record ``<venv>/.mmhatnet-setup``, as Markdown."""
    lines = ['## Environment', '',
             f'- python: {platform.python_version()} ({sys.executable})',
             f'- torch: {torch.__version__}, CUDA '
             f'{torch.version.cuda or "none (CPU build)"}, cuDNN '
             f'{torch.backends.cudnn.version() or "none"}',
             f'- host: {platform.node()}, {platform.machine()}, '
             f'{os.cpu_count()} CPUs, {torch.get_num_threads()} torch '
             f'threads']
    try:
        gpus = list_gpus()
        listed = ('no nvidia-smi' if gpus is None else
                  '; '.join(f'{g.name} (driver {g.driver})' for g in gpus)
                  or 'none listed')
    except Exception as e:  # noqa: BLE001  a broken driver is a line
        listed = f'nvidia-smi failed: {_short(e)}'
    lines.append(f'- nvidia-smi: {listed}')
    seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
    lines.append('- torch sees: ' + ('; '.join(
        f'cuda:{i} {torch.cuda.get_device_name(i)}' for i in range(seen))
        or 'no GPU'))
    lines += [f'- {name}: {version}' for name, version in _versions()]
    setup = osp.join(sys.prefix, '.mmhatnet-setup')
    if osp.isfile(setup):
        with open(setup) as f:
            lines += ['', f'`{setup}`:', '', '```text', f.read().rstrip(),
                      '```']
    else:
        lines.append(f'- set-up record: none ({setup} does not exist)')
    return '\n'.join(lines)


def checks_section(rows: list[Row]) -> str:
    lines = ['## Self-check', '', '| check | device | status | detail |',
             '|---|---|---|---|']
    lines += [f'| {r.check} | {r.device} | {r.status} | '
              f'{r.detail.replace("|", "/")} |' for r in rows]
    return '\n'.join(lines)


def benchmark_steps(devices_: list[str] | None = None
                    ) -> tuple[list[Step], list[str]]:
    """Every cell of :data:`BENCHMARKS` on each GPU (or on the CPU where
    there is none): a verdict per cell, and its table as Markdown."""
    from .analysis.benchmark import (build_hatnet, build_models,
                                     format_table as bench_table,
                                     run_benchmark)
    if devices_ is None:
        devices_ = [f'cuda:{i}' for i in range(torch.cuda.device_count())] \
            if torch.cuda.is_available() else ['cpu']
    steps, tables = [], []
    for device in devices_:
        for arch, shape, batch, repeats, amp in \
                BENCHMARKS[torch.device(device).type]:
            precision = 'fp32' if amp is None else str(amp)[6:]
            name = (f'benchmark {arch} {shape[0]}x{shape[1]} batch {batch} '
                    f'{precision} on {device}')
            start = time.perf_counter()
            try:
                models = build_models(build_hatnet(arch))
                records = run_benchmark(models, shape, batch, device,
                                        repeats, amp=amp)
                del models
                tables += [f'### {name}', '',
                           f'{repeats} timed round(s), medians; '
                           f'`mem MB`: peak memory of a training step.', '',
                           '```text', bench_table(records), '```', '']
                hat = next(r for r in records if r['name'] == 'hatnet')
                steps.append(Step(name, True, f'HATNet train step '
                                  f'{hat["train_step_s"]:.3f} s, '
                                  f'{hat["peak_mem_mb"]:.0f} MB',
                                  time.perf_counter() - start))
            except Exception as e:  # noqa: BLE001  a verdict, not a crash
                traceback.print_exc()
                steps.append(Step(name, False, _short(e),
                                  time.perf_counter() - start))
            finally:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
    return steps, tables


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_steps(root: str, work: str) -> tuple[list[Step], str]:
    """``tools/dist_train.sh`` of Semantic FPN Tiny with 1 process on
    generated data, then ``tools/dist_test.sh`` on its checkpoint (this
    interpreter through ``PYTHON``; gloo on the CPU). Verdicts and the
    tail of both logs."""
    config = shipped_config(root, f'{DIST_FAMILY}_hatnet_tiny.py')
    make_demo_data(work, [TRAIN[DIST_FAMILY]['data']], num_train=4,
                   num_val=2)
    sizes = as_cfg_options(image_size_options(Config.fromfile(config),
                                              **TRAIN[DIST_FAMILY]['sizes']))
    loaders = [f'{loader}.{key}' for loader in LOADERS
               for key in ('num_workers=0', 'persistent_workers=False')]
    common = ['model.backbone.init_cfg=None', 'randomness.seed=0', *loaders,
              *sizes, *DIST_TEST_OPTIONS]
    if not torch.cuda.is_available():
        common.append('env_cfg.dist_cfg.backend=gloo')
    env = dict(os.environ, PYTHON=sys.executable, PYTHONUNBUFFERED='1')
    tools = osp.join(root, 'tools')
    checkpoint = osp.join(work, 'train', 'epoch_1.pth')
    runs = [
        (f'1-process tools/dist_train.sh {DIST_FAMILY} tiny, 2 iterations',
         ['dist_train.sh', config, '1', '--work-dir',
          osp.join(work, 'train'), '--cfg-options',
          'train_dataloader.batch_size=2', *common, *DIST_OPTIONS],
         lambda out: osp.isfile(checkpoint) or f'no {checkpoint}'),
        ('1-process tools/dist_test.sh on its checkpoint',
         ['dist_test.sh', config, checkpoint, '1', '--work-dir',
          osp.join(work, 'test'), '--cfg-options', *common],
         lambda out: bool(re.search(r'bbox_mAP: [0-9.]+', out))
         or 'no bbox_mAP logged'),
    ]
    steps, logs = [], []
    for name, (script, *args), verify in runs:
        start = time.perf_counter()
        env['PORT'] = str(_free_port())
        try:
            proc = subprocess.run(['bash', osp.join(tools, script), *args],
                                  cwd=work, env=env, capture_output=True,
                                  text=True, timeout=DIST_TIMEOUT)
            out = proc.stdout + proc.stderr
            ok = verify(out)
            if proc.returncode != 0:
                errors = [e for e in re.findall(
                    r'^\S*(?:Error|Exception)\b.*$', out, re.M)
                    if 'ChildFailedError' not in e]
                passed, reason = False, f'exit status {proc.returncode}' + (
                    f': {errors[-1][:300]}' if errors else '')
                print(out[-5000:], flush=True)
            elif ok is not True:
                passed, reason = False, ok
            else:
                found = re.findall(r'(coco/bbox_mAP): (-?[0-9.]+)', out)
                passed, reason = True, 'exit status 0' + (
                    f', {found[-1][0]} {found[-1][1]}' if found else '')
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b'').decode(errors='replace') \
                if isinstance(e.stdout, bytes) else (e.stdout or '')
            passed, reason = False, f'timed out after {DIST_TIMEOUT} s'
        steps.append(Step(name, passed, reason,
                          time.perf_counter() - start))
        # the runner's own lines (the warnings of a run are noise here)
        lines = [line for line in out.splitlines() if 'Epoch(' in line]
        logs += [f'### {name}: its last log lines', '', '```text',
                 '\n'.join((lines or out.rstrip().splitlines())[-6:]),
                 '```', '']
        if not passed:
            break  # no checkpoint to test
    return steps, '\n'.join(logs)


def write_report(path: str, root: str,
                 list_gpus: Callable[[], Sequence | None],
                 rows: list[Row], start: float) -> bool:
    """Run the benchmark and the 1-process train + test after the
    self-check's ``rows``, and write the Markdown report to ``path``: the
    environment, a verdict per step, the self-check table, the benchmark
    tables and the tails of the train and test logs. True if every step
    passed."""
    failed_rows = [f'{r.check} {r.device}'.strip() for r in rows
                   if r.status == FAIL]
    steps = [Step('self-check', not failed_rows,
                  f'failed: {", ".join(failed_rows)}' if failed_rows else
                  f'{sum(r.status == OK for r in rows)} checks ok',
                  time.perf_counter() - start)]
    print('[report] benchmark', flush=True)
    bench, tables = benchmark_steps()
    steps += bench
    print('[report] dist_train.sh + dist_test.sh', flush=True)
    with tempfile.TemporaryDirectory() as work:
        try:
            dist, logs = dist_steps(root, work)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            dist, logs = [Step('1-process dist_train.sh + dist_test.sh',
                               False, _short(e), 0.0)], ''
    steps += dist
    total = time.perf_counter() - start
    passed = all(s.passed for s in steps)
    where = (', '.join(torch.cuda.get_device_name(i) for i in
                       range(torch.cuda.device_count()))
             if torch.cuda.is_available() else 'CPU only (no GPU)')
    text = ['# mmhatnet check report', '',
            f'{time.strftime("%Y-%m-%d %H:%M:%S %Z")}, on {where}: '
            f'**{"all steps passed" if passed else "FAILED"}**, total wall '
            f'time {total:.0f} s.', '',
            environment_section(list_gpus), '', '## Verdicts', '']
    text += [f'- {s.name}: **{"passed" if s.passed else "FAILED"}** '
             f'({s.reason}) [{s.seconds:.0f} s]' for s in steps]
    text += [f'- total wall time: {total:.0f} s', '',
             checks_section(rows), '', '## Benchmark', '', *tables,
             '## Train and test', '', logs]
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(text).rstrip() + '\n')
    print(f'[report] {"all steps passed" if passed else "FAILED"}; '
          f'wrote {path}', flush=True)
    return passed
