"""Speed and memory of the HAT-Net backbone, side by side with the
computation of the authors' release and with the backbones a user would
pick instead (mmdet's PVTv2-B2 and Swin-T).

Every model is measured in the same process, on the same input, and the
timed repeats are interleaved model by model, so that load from other jobs
on a shared machine falls on all of them alike; medians are reported.

On CPU a pass's time depends on the state of glibc's malloc, which maps
large buffers afresh (page faults cost about as much as a pass of SiLU over
the buffer) and adapts its threshold for doing so to the buffers freed
before. So each timed call directly follows an untimed call of the same
kind on the same model, as in a loop over batches, and all forward passes
are timed before any training step has run, as in an inference process.
(Training steps free larger buffers, after which forward passes can fault
less and run faster, the baseline's more than mmhatnet's.)

- ``forward_s``: one forward pass under ``torch.no_grad()``.
- ``train_step_s``: forward, then backward of the sum of all outputs, with
  gradients for every parameter (set to None before each step, as
  ``zero_grad()`` does). Models run in training mode (stochastic depth
  included), as they would be trained.
- ``amp``: None for fp32, else the dtype of mixed precision: the forward
  passes (of both kinds) run under ``torch.autocast(device, dtype)``, the
  backward outside it, as mmengine's ``AmpOptimWrapper`` runs them; the
  parameters stay fp32.
- ``forward_cpu_s`` / ``train_step_cpu_s`` (CPU only): the process's CPU
  time (all threads) for the same calls. It counts work rather than
  waiting, so it is the steadier figure while other jobs share the cores
  (run with ``OMP_WAIT_POLICY=PASSIVE`` so that idle OpenMP threads do not
  spin); wall time is what a user waits for.
- ``peak_mem_mb``: the most memory the training step holds at once on top
  of what existed before it (parameters and input): activations saved for
  backward, temporaries, outputs and the new gradients. On CUDA this is
  ``torch.cuda.max_memory_allocated`` minus the allocation before the
  step. On CPU it is read from the allocator itself: the step runs once
  under ``torch.profiler.profile(profile_memory=True)``, which records
  every allocation and free of torch's CPU allocator with its size and
  time; the peak of their running sum is the same quantity as
  ``max_memory_allocated`` (exact to the byte and free of the process's
  RSS noise: allocator caching, freed pages kept by malloc, other
  libraries). ``forward_peak_mem_mb`` is the same for the no-grad forward.
- ``train_flops`` / ``forward_flops``: multiply-adds x 2 counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix
  products, attention included; element-wise work is not counted) as each
  model executes them (HAT-Net's banded ConvFFN recomputes about 1% on
  band edges), and ``*_mm_fraction``: the FLOP/s so achieved as a
  fraction of a large dense matmul's FLOP/s timed in the same run
  (``matmul_flops_per_s``), in fp32, or in the ``amp`` dtype.

:func:`onnx_latency` times HATNet's no-grad forward in eager PyTorch and
as an exported ONNX graph in onnxruntime (CPU), in one process.

:func:`convffn_bands` times one ConvFFN with its CPU row bands (as shipped)
and without, interleaved in one process: the measure behind the bands.

The baseline (:class:`ReleaseBaseline`) computes HAT-Net the way the
release's ``HAT_Net.py`` does -- explicit ``(q * scale) @ k^T``, softmax,
``attn @ v`` with its reshapes, and ``nn.GroupNorm`` / ``nn.Conv2d`` / SiLU
as separate ops -- on the very parameters of a :class:`HATNet`. Where a map
is not a multiple of G1 (the release would crash) it pads and masks the
padded keys like mmhatnet, and pools with ``ceil_mode`` (equal to the
release's floor for divisible sizes), so it computes mmhatnet's outputs
for every input size; nothing else is optimised.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..deployment.export import TensorOutputs, export_module, output_errors
from ..models import ConvFFN, HATNet
from ..models.convffn import row_bands
from .flops import count_flops
from .release import ReleaseBaseline, ReleaseCode

# mmdet's settings: configs/pvt/retinanet_pvtv2-b2_fpn_1x_coco.py and
# configs/swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py (no pretrained init)
PVTV2_B2 = dict(type='PyramidVisionTransformerV2', embed_dims=64,
                num_layers=[3, 4, 6, 3])
SWIN_T = dict(type='SwinTransformer', embed_dims=96, depths=[2, 2, 6, 2],
              num_heads=[3, 6, 12, 24], window_size=7, mlp_ratio=4,
              qkv_bias=True, qk_scale=None, drop_rate=0., attn_drop_rate=0.,
              drop_path_rate=0.2, patch_norm=True, out_indices=(0, 1, 2, 3),
              with_cp=False)


def build_hatnet(arch: str = 'small', config: str | None = None,
                 **kwargs) -> HATNet:
    """HAT-Net-``arch``, or the backbone of an mmdet/mmseg config file
    (its ``init_cfg`` dropped: the benchmark needs no weights)."""
    if config is None:
        return HATNet(arch, **kwargs)
    from mmengine.config import Config
    from mmengine.registry import MODELS  # HATNet is registered there
    cfg = copy.deepcopy(Config.fromfile(config).model.backbone)
    if cfg.get('type') != 'HATNet':
        raise ValueError(f'{config}: model.backbone is a '
                         f'{cfg.get("type")}, not a HATNet')
    cfg.pop('init_cfg', None)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def build_models(net: HATNet, others: bool = True,
                 release_code: str | None = None) -> dict[str, nn.Module]:
    """The models compared: ``net`` as shipped, the release baseline on the
    same parameters, with ``release_code`` the authors' ``HAT_Net.py`` at
    that path with the same weights, and with ``others`` mmdet's PVTv2-B2
    and Swin-T."""
    models = {'hatnet': net, 'release_baseline': ReleaseBaseline(net)}
    if release_code:
        models['release_code'] = ReleaseCode(net, release_code)
    if others:
        from mmdet.registry import MODELS
        import mmdet.models  # noqa: F401 registers the backbones
        models['pvtv2_b2'] = MODELS.build(dict(PVTV2_B2))
        models['swin_t'] = MODELS.build(dict(SWIN_T))
    return models


def _sum_outputs(outs) -> torch.Tensor:
    if isinstance(outs, torch.Tensor):
        return outs.sum()
    return sum(o.float().sum() for o in outs)


def _autocast(device: torch.device, amp: torch.dtype | None):
    """Mixed precision in ``amp`` on ``device``, or fp32 when None."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=amp)


def _forward(model: nn.Module, x: torch.Tensor,
             amp: torch.dtype | None = None) -> None:
    with torch.no_grad(), _autocast(x.device, amp):
        model(x)


def _train_step(model: nn.Module, x: torch.Tensor,
                amp: torch.dtype | None = None) -> None:
    with _autocast(x.device, amp):
        loss = _sum_outputs(model(x))
    loss.backward()


def _clear_grads(model: nn.Module) -> None:
    for p in model.parameters():
        p.grad = None


def _timer(device: torch.device
           ) -> Callable[[Callable[[], object]], tuple[float, float]]:
    """``timed(fn)`` -> (wall seconds, process CPU seconds) of one call;
    CPU seconds are NaN on CUDA."""
    if device.type == 'cuda':
        def timed(fn):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            return start.elapsed_time(end) / 1e3, float('nan')
    else:
        def timed(fn):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            return time.perf_counter() - wall, time.process_time() - cpu
    return timed


def peak_memory_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Most bytes held at once by tensors that ``fn`` allocates, on top of
    those that exist before it (see the module docstring)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                 record_shapes=False) as prof:
        fn()
    # torch < 2.1's events give microseconds (start_us), later ones ns;
    # their order is all that matters here
    events = sorted(
        (e.start_ns() if hasattr(e, 'start_ns') else e.start_us(),
         e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == '[memory]' and e.device_type().name == 'CPU')
    held = peak = 0
    for _, nbytes in events:
        held += nbytes
        peak = max(peak, held)
    return peak


def matmul_flops_per_s(device: torch.device, repeats: int = 5,
                       dtype: torch.dtype = torch.float32) -> float:
    """Dense matmul throughput of ``device`` in ``dtype``, median of
    ``repeats``, on square matrices of the first size from 256 up, doubling,
    whose product takes 0.1 s (at most 8192 on CUDA, 2048 on CPU): large
    enough to reach the kernel's rate, and short where the dtype is slow
    (bfloat16 on a CPU without bf16 instructions runs at ~1 GFLOP/s)."""
    timed = _timer(device)
    largest = 8192 if device.type == 'cuda' else 2048
    size = 256
    while True:
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        timed(lambda: a @ b)  # warm-up
        if size >= largest or timed(lambda: a @ b)[0] >= 0.1:
            break
        size *= 2
    seconds = statistics.median(
        timed(lambda: a @ b)[0] for _ in range(repeats))
    return 2 * size**3 / seconds


def run_benchmark(models: dict[str, nn.Module], shape: Sequence[int],
                  batch: int = 1, device: str | torch.device = 'cpu',
                  repeats: int = 3, log: Callable[[str], None] | None = None,
                  amp: torch.dtype | None = None) -> list[dict]:
    """One record per model (see the module docstring for the fields), in
    fp32 or, with ``amp``, in mixed precision of that dtype.

    Models are moved to ``device`` and put in training mode. All forward
    passes are timed first, before any backward has run in the process
    (as in an inference process), then memory and FLOPs are measured, then
    the training steps are timed; each timing is ``repeats`` rounds over
    the models in turn.
    """
    device = torch.device(device)
    log = log or (lambda _: None)
    torch.manual_seed(0)
    x = torch.randn(batch, 3, *shape, device=device)
    for model in models.values():
        model.to(device).train()
    precision = 'fp32' if amp is None else str(amp).replace('torch.', '')
    mm_flops = matmul_flops_per_s(device, dtype=amp or torch.float32)
    log(f'dense {precision} matmul: {mm_flops / 1e9:.1f} GFLOP/s')

    records = {name: dict(name=name, shape=list(shape), batch=batch,
                          device=str(device), threads=torch.get_num_threads(),
                          amp=None if amp is None else precision,
                          params_m=sum(p.numel() for p in model.parameters())
                          / 1e6)
               for name, model in models.items()}
    timed = _timer(device)
    for key, step in (('forward', _forward), ('train_step', _train_step)):
        step = functools.partial(step, amp=amp)
        if key == 'train_step':
            for name, model in models.items():
                records[name].update(_memory_and_flops(model, x, device,
                                                       amp))
                log(f'{name}: {records[name]["peak_mem_mb"]:.0f} MB per '
                    f'train step')
        times = {name: [] for name in models}
        for r in range(repeats):
            for name, model in models.items():
                # each timed call follows an untimed one of its kind, as in
                # a loop over batches: the allocator holds what this
                # model's previous call left, not another model's
                step(model, x)
                _clear_grads(model)
                times[name].append(timed(lambda: step(model, x)))
                _clear_grads(model)
                log(f'round {r + 1} {name}: {key.replace("_", " ")} '
                    f'{times[name][-1][0]:.3f} s')
        for name, pairs in times.items():
            wall, cpu = zip(*pairs)
            records[name][f'{key}_s'] = statistics.median(wall)
            records[name][f'{key}_cpu_s'] = statistics.median(cpu)
            records[name][f'{key}_times'] = list(wall)

    for rec in records.values():
        rec['matmul_flops_per_s'] = mm_flops
        rec['forward_mm_fraction'] = \
            rec['forward_flops'] / rec['forward_s'] / mm_flops
        rec['train_mm_fraction'] = \
            rec['train_flops'] / rec['train_step_s'] / mm_flops
    return list(records.values())


def _memory_and_flops(model: nn.Module, x: torch.Tensor,
                      device: torch.device,
                      amp: torch.dtype | None = None) -> dict:
    _clear_grads(model)
    fwd_mem = peak_memory_bytes(lambda: _forward(model, x, amp), device)
    train_mem = peak_memory_bytes(lambda: _train_step(model, x, amp), device)
    _clear_grads(model)
    record = dict(forward_flops=count_flops(lambda: _forward(model, x, amp)),
                  train_flops=count_flops(
                      lambda: _train_step(model, x, amp)),
                  forward_peak_mem_mb=fwd_mem / 2**20,
                  peak_mem_mb=train_mem / 2**20)
    _clear_grads(model)
    return record


def convffn_bands(dim: int, expansion: int, size: Sequence[int],
                  kernel_size: int = 3, repeats: int = 15,
                  log: Callable[[str], None] | None = None) -> list[dict]:
    """One ConvFFN on a (1, ``dim``, H, W) channels-last CPU map (the
    layout HATNet runs in), with its row bands as shipped and with them off,
    each timed call after an untimed one, in ``repeats`` interleaved
    rounds: records ``name``, ``forward_s``, ``train_step_s`` (medians) and
    ``peak_mem_mb``, as in :func:`run_benchmark`."""
    log = log or (lambda _: None)
    ffn = ConvFFN(dim, expansion, kernel_size).train()
    x = torch.randn(1, dim, *size).contiguous(
        memory_format=torch.channels_last).requires_grad_()
    # the bands as they are set (8 MB by default), and one band
    variants = {'convffn_banded': contextlib.nullcontext,
                'convffn_unbanded': lambda: row_bands(None)}
    cpu = torch.device('cpu')
    timed = _timer(cpu)

    def clear():
        _clear_grads(ffn)
        x.grad = None

    records = {name: dict(name=name, shape=list(size), dim=dim,
                          expansion=expansion, kernel_size=kernel_size)
               for name in variants}
    for name, bands in variants.items():
        with bands():
            clear()
            records[name]['peak_mem_mb'] = peak_memory_bytes(
                lambda: _train_step(ffn, x), cpu) / 2**20
            clear()
    for key, step in (('forward', _forward), ('train_step', _train_step)):
        times = {name: [] for name in variants}
        for r in range(repeats):
            for name, bands in variants.items():
                with bands():
                    step(ffn, x)
                    clear()
                    times[name].append(timed(lambda: step(ffn, x))[0])
                    clear()
                log(f'round {r + 1} {name}: {key.replace("_", " ")} '
                    f'{times[name][-1]:.4f} s')
        for name, wall in times.items():
            records[name][f'{key}_s'] = statistics.median(wall)
    return list(records.values())


def onnx_latency(net: HATNet, shape: Sequence[int], batch: int = 1,
                 repeats: int = 5, exporter: str = 'torchscript',
                 log: Callable[[str], None] | None = None) -> list[dict]:
    """``net``'s forward (eval mode, no grad) in eager PyTorch and in
    onnxruntime's CPU provider, as graphs with dynamic batch, height and
    width from :func:`mmhatnet.deployment.export.export_module`
    (``exporter``), run with as many threads as torch uses. Same process,
    same input, each timed call after an untimed one, rounds interleaved:
    records ``name``, ``forward_s`` and ``forward_cpu_s`` (medians) and
    ``max_rel``, the graph's error against eager
    (:func:`~mmhatnet.deployment.export.output_errors`)."""
    import tempfile

    import onnxruntime as ort

    log = log or (lambda _: None)
    holder = nn.Module()
    holder.backbone = net.eval()
    module = TensorOutputs(holder, 'mmdet', backbone_only=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        path = f'{tmp}/hatnet.onnx'
        export_module(module, path, shape, net.in_channels, dynamic=True,
                      exporter=exporter)
        session = ort.InferenceSession(path, options,
                                       providers=['CPUExecutionProvider'])
    torch.manual_seed(0)
    x = torch.randn(batch, net.in_channels, *shape)
    feed = {session.get_inputs()[0].name: x.numpy()}
    runs = {'eager': lambda: _forward(module, x),
            f'onnxruntime ({exporter})': lambda: session.run(None, feed)}
    with torch.no_grad():
        expected = [t.numpy() for t in module(x)]
    _, max_rel = output_errors(session.run(None, feed), expected)
    timed = _timer(torch.device('cpu'))
    times = {name: [] for name in runs}
    for r in range(repeats):
        for name, run in runs.items():
            run()
            times[name].append(timed(run))
            log(f'round {r + 1} {name}: forward {times[name][-1][0]:.3f} s')
    records = []
    for name, pairs in times.items():
        wall, cpu = zip(*pairs)
        records.append(dict(
            name=name, shape=list(shape), batch=batch,
            threads=torch.get_num_threads(),
            forward_s=statistics.median(wall),
            forward_cpu_s=statistics.median(cpu),
            max_rel=0. if name == 'eager' else max_rel))
    return records


def format_onnx(records: list[dict]) -> str:
    """:func:`onnx_latency`'s records, with ratios against eager."""
    base = next(r for r in records if r['name'] == 'eager')
    lines = []
    for r in records:
        lines.append(
            f'{r["name"]:<26} forward {1e3 * r["forward_s"]:8.1f} ms '
            f'({base["forward_s"] / r["forward_s"]:.2f}x)  cpu '
            f'{1e3 * r["forward_cpu_s"]:8.1f} ms '
            f'({base["forward_cpu_s"] / r["forward_cpu_s"]:.2f}x)  max rel '
            f'error {r["max_rel"]:.1e}')
    lines.append('x: speed-up over eager (higher is faster)')
    return '\n'.join(lines)


def format_bands(records: list[dict]) -> str:
    """:func:`convffn_bands`' records, with ratios against the unbanded."""
    base = next(r for r in records if r['name'] == 'convffn_unbanded')
    lines = []
    for r in records:
        lines.append(
            f'{r["name"]:<18} forward {1e3 * r["forward_s"]:8.1f} ms '
            f'({base["forward_s"] / r["forward_s"]:.2f}x)  train step '
            f'{1e3 * r["train_step_s"]:8.1f} ms '
            f'({base["train_step_s"] / r["train_step_s"]:.2f}x)  peak '
            f'{r["peak_mem_mb"]:.0f} MB')
    lines.append('x: speed-up over convffn_unbanded (higher is faster)')
    return '\n'.join(lines)


def format_table(records: list[dict],
                 baseline: str = 'release_baseline') -> str:
    """The records as a text table, with ratios against ``baseline``."""
    base = next((r for r in records if r['name'] == baseline), None)
    cpu = all(r.get('forward_cpu_s', float('nan')) ==
              r.get('forward_cpu_s', float('nan')) for r in records)
    columns = [('fwd s', 'forward_s', 'time'),
               ('train s', 'train_step_s', 'time')]
    if cpu:
        columns += [('fwd cpu-s', 'forward_cpu_s', 'time'),
                    ('train cpu-s', 'train_step_cpu_s', 'time')]
    columns += [('mem MB', 'peak_mem_mb', 'mem')]
    head = ['model', 'params M']
    for title, _, kind in columns:
        head += [title, 'x' if kind == 'time' else '/']
    head += ['fwd GFLOP', 'fwd %mm', 'train %mm']
    rows = [head]
    for r in records:
        row = [r['name'], f'{r["params_m"]:.1f}']
        for _, key, kind in columns:
            row.append(f'{r[key]:.0f}' if kind == 'mem' else f'{r[key]:.3f}')
            if base is None:
                row.append('-')
            elif kind == 'time':
                row.append(f'{base[key] / r[key]:.2f}')
            else:
                row.append(f'{r[key] / base[key]:.2f}')
        row += [f'{r["forward_flops"] / 1e9:.1f}',
                f'{100 * r["forward_mm_fraction"]:.0f}',
                f'{100 * r["train_mm_fraction"]:.0f}']
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ['  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, '-' * len(lines[0]))
    precision = records[0].get('amp') or 'fp32'
    lines.append(f'x: speed-up over {baseline} (higher is faster); '
                 f'/: memory relative to it; %mm: achieved FLOP/s as % of '
                 f'dense {precision} matmul')
    return '\n'.join(lines)
