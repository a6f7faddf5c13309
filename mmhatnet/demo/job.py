"""The main job: train the downstream models on generated data, evaluate
them on held-out images, draw pictures and curves, write a summary.

Each task (:mod:`mmhatnet.demo.schedule`) runs through
:func:`mmhatnet.apis.train` and :func:`mmhatnet.apis.test`, the code of
``tools/train.py`` and ``tools/test.py``, on its shipped config with the
schedule's overrides, written to ``<work_dir>/<task>/<task>.py``. The
shipped configs are those of the mmhatnet checkout ``root`` that the caller
names (``tools/demo.py`` passes its own). The terminal gets one line per
phase and progress bars; everything the runners print goes to
``<work_dir>/<task>/console.log`` (and mmengine's own log under the run
folders).
"""
from __future__ import annotations

import glob
import json
import os
import os.path as osp
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mmengine.config import Config
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..apis import test, train, working_dir
from ..config_tools import image_size_options, shipped_config
from ..engine import find_latest_checkpoint
from .chance import chance
from .curves import write_curves
from .data import make_demo_data
from .hooks import progress_to
from .schedule import (DEFAULT_TASKS, SCHEDULES, Schedule, image_sizes,
                       iterations, options)


@dataclass
class Result:
    """What one task produced; paths are absolute."""

    metrics: dict[str, float]
    chance: dict[str, float]
    pictures: list[str]
    curves: list[str]
    minutes: float


@contextmanager
def _output_to(path: str) -> Iterator[None]:
    """Send everything written to stdout/stderr to ``path``.

    File descriptors 1 and 2 are pointed at the file, so C extensions and
    subprocesses go there too, and ``sys.stdout``/``sys.stderr`` are
    pointed at those descriptors, so Python writes do even where they had
    been replaced (pytest, notebooks). Loggers made inside keep these
    streams, which write to descriptors 1 and 2 again once restored.
    """
    streams = sys.stdout, sys.stderr
    for stream in streams:
        stream.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, 'a') as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = open(1, 'w', buffering=1, closefd=False)
        sys.stderr = open(2, 'w', buffering=1, closefd=False)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdout, sys.stderr = streams
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def write_config(root: str, name: str, s: Schedule, task_dir: str) -> str:
    """Write the shipped config of the checkout ``root`` merged with the
    schedule; return its path.

    The demo's two hooks are added: progress bars and the pictures.
    """
    cfg = Config.fromfile(shipped_config(root, s.config))
    cfg.merge_from_dict(options(s))
    # by type, in the pipelines as options(s) left them
    cfg.merge_from_dict(image_size_options(cfg, **image_sizes(s)))
    cfg.custom_imports = dict(
        imports=[*cfg.custom_imports.imports, 'mmhatnet.demo.hooks'],
        allow_failed_imports=False)
    draw_args = dict(pred_score_thr=0.5) if s.data == 'coco' else {}
    cfg.custom_hooks = [
        *cfg.get('custom_hooks', []),
        dict(type='DemoProgressHook', label=name),
        dict(type='DemoPicturesHook', num=s.pictures, draw_args=draw_args,
             out_dir=osp.join(task_dir, 'pictures')),
    ]
    path = osp.join(task_dir, f'{name}.py')
    cfg.dump(path)
    return path


def _fresh(task_dir: str, config: str) -> None:
    """Empty a previous run's folder (it holds the demo's ``config``) or
    create it; refuse to empty anything else."""
    if osp.isfile(osp.join(task_dir, config)):
        shutil.rmtree(task_dir)
    elif osp.isdir(task_dir) and os.listdir(task_dir):
        raise FileExistsError(
            f'{task_dir} is not empty and holds no {config} from an earlier '
            'demo run; choose another --work-dir')
    os.makedirs(task_dir, exist_ok=True)


def _scalars(run_dir: str) -> str:
    (path, ) = glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json'))
    return path


def run_task(root: str, name: str, s: Schedule, work_dir: str,
             console: Console) -> Result:
    """Generate the data, train, test, draw; one line per phase."""
    start = time.perf_counter()
    task_dir = osp.join(work_dir, name)
    _fresh(task_dir, f'{name}.py')
    log = osp.join(task_dir, 'console.log')
    rel = osp.relpath(task_dir)
    console.print(f'[bold]{s.title}[/bold]  (config configs/{s.config}; '
                  f'logs in {rel}/)')

    t = time.perf_counter()
    roots = make_demo_data(work_dir, [s.data], num_train=s.num_train,
                           num_val=s.num_val)
    per_class = ' per class' if s.data == 'imagenet' else ''
    console.print(f'  data    {s.num_train} training and {s.num_val} '
                  f'held-out images{per_class} in '
                  f'{osp.relpath(roots[s.data])} '
                  f'({time.perf_counter() - t:.0f} s)')

    config = write_config(root, name, s, task_dir)
    run_dir = osp.join(task_dir, 'train')
    bar = Progress(TextColumn('  {task.description}'), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True,
                   redirect_stdout=False, redirect_stderr=False)
    t = time.perf_counter()
    with working_dir(work_dir), _output_to(log), bar, progress_to(bar):
        train([config, '--work-dir', run_dir])
    console.print(f'  train   {iterations(s)} iterations, batch {s.batch} '
                  f'({(time.perf_counter() - t) / 60:.1f} min)')

    t = time.perf_counter()
    with working_dir(work_dir), _output_to(log), bar, progress_to(bar):
        metrics = test([config, find_latest_checkpoint(run_dir),
                        '--work-dir', osp.join(task_dir, 'test')])
    metrics = {k: float(metrics[k]) for k in s.metrics}
    shown = ', '.join(f'{k} {v:.3g}' for k, v in metrics.items())
    console.print(f'  test    {shown} on the held-out images '
                  f'({(time.perf_counter() - t) / 60:.1f} min)')

    pictures = sorted(glob.glob(osp.join(task_dir, 'pictures', '*.png')))
    iters_per_epoch = iterations(s) // s.length if s.unit == 'epoch' else 1
    curves = write_curves(_scalars(run_dir), task_dir, s.title, s.metrics,
                          iters_per_step=iters_per_epoch)
    with working_dir(work_dir), _output_to(log):
        base = chance(s.data, roots[s.data], s.metrics)
    console.print(f'  draw    {len(pictures)} pictures, {len(curves)} '
                  f'curves')
    return Result(metrics, base, pictures, curves,
                  (time.perf_counter() - start) / 60)


def summary(results: dict[str, Result], root: str) -> dict:
    """The ``summary.json`` content: paths relative to ``root``."""
    return {name: {'metrics': r.metrics,
                   'pictures': [osp.relpath(p, root) for p in r.pictures],
                   'curves': [osp.relpath(p, root) for p in r.curves],
                   'minutes': round(r.minutes, 2)}
            for name, r in results.items()}


def results_table(results: dict[str, Result]) -> Table:
    table = Table(title='HAT-Net-Tiny from scratch, held-out generated '
                  'images')
    for column in ('task', 'metric', 'value', 'chance', 'minutes'):
        table.add_column(column, justify='left' if column in (
            'task', 'metric') else 'right')
    for name, r in results.items():
        for i, (metric, value) in enumerate(r.metrics.items()):
            table.add_row(name if i == 0 else '', metric, f'{value:.3g}',
                          f'{r.chance[metric]:.3g}',
                          f'{r.minutes:.1f}' if i == 0 else '')
    return table


def run_demo(root: str, work_dir: str,
             tasks: dict[str, Schedule] | None = None,
             console: Console | None = None) -> dict:
    """Run ``tasks`` (default: the detection and segmentation job) on the
    configs of the mmhatnet checkout ``root``, print the table and write
    ``<work_dir>/summary.json`` (paths relative to ``root``); return the
    summary.
    """
    if tasks is None:
        tasks = {name: SCHEDULES[name] for name in DEFAULT_TASKS}
    if console is None:
        # the terminal as it is now: _output_to moves descriptors 1 and 2
        # and sys.stdout to the log files while the runners work
        console = Console(file=open(os.dup(sys.stdout.fileno()), 'w',
                                    buffering=1))
    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    start, cpu = time.perf_counter(), time.process_time()
    results = {name: run_task(root, name, s, work_dir, console)
               for name, s in tasks.items()}
    out = summary(results, root)
    path = osp.join(work_dir, 'summary.json')
    with open(path, 'w') as f:
        json.dump(out, f, indent=2)
    console.print(results_table(results))
    console.print(f'{(time.perf_counter() - start) / 60:.1f} min in all '
                  f'({(time.process_time() - cpu) / 60:.1f} CPU-min)')
    for r in results.values():
        for p in r.pictures + r.curves:
            console.print(f'  {osp.relpath(p)}')
    console.print(f'summary: {osp.relpath(path)}')
    return out
