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

Two things come from the caller (``tools/check.py`` passes both): the
mmhatnet checkout whose configs are trained (``root``), and the reader of
``nvidia-smi`` (``list_gpus``: ``tools/gpu_env.py``'s, the set-up's own,
which runs before any venv exists and so lives outside the package).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os.path as osp
import platform
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence

import torch
from mmengine.config import Config

from .apis import train_config, working_dir
from .config_tools import as_cfg_options, image_size_options, shipped_config
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
                        f'driver or these GPUs (README, "GPU")'))
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
    ``root`` and ``list_gpus``: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--train', nargs='*', choices=list(TRAIN),
                        default=list(TRAIN),
                        help='families to train one iteration (none: skip)')
    parser.add_argument('--json', help='also write the rows to this file')
    args = parser.parse_args(argv)
    rows = run_checks(root, list_gpus, args.train)
    print(format_table(rows), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump([dataclasses.asdict(r) for r in rows], f, indent=1)
    return 1 if any(r.status == FAIL for r in rows) else 0
