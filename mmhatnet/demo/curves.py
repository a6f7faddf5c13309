"""Training-loss and validation-metric curves from a run's scalars.

mmengine's ``LocalVisBackend`` writes one json object per line to
``<work_dir>/<timestamp>/vis_data/scalars.json``: training lines hold the
losses at ``step`` = iteration, validation lines the metrics at ``step`` =
iteration (iteration-based loops) or epoch (epoch-based loops).

The figures are matplotlib ``Figure`` objects, not pyplot's: they are
drawn straight to PNG files, with no backend chosen for the process and no
display needed.
"""
from __future__ import annotations

import json
import os.path as osp
from collections import defaultdict

from matplotlib.figure import Figure


def read_scalars(path: str) -> list[dict]:
    """Read a ``scalars.json`` file (one json object per line)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _series(records: list[dict], keys) -> dict[str, tuple[list, list]]:
    series: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for rec in records:
        for key in keys:
            if key in rec:
                series[key][0].append(rec['step'])
                series[key][1].append(rec[key])
    return dict(series)


def _figure() -> tuple[Figure, object]:
    """A 600x360-pixel figure and its axes."""
    fig = Figure(figsize=(6, 3.6), dpi=100)
    return fig, fig.subplots()


def _save(fig: Figure, ax, path: str) -> str:
    """Legend, grid, write ``path``."""
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_curves(scalars: str, out_dir: str, title: str,
                 metrics: tuple[str, ...], iters_per_step: int = 1,
                 ) -> list[str]:
    """Write ``loss.png`` and ``metric.png`` under ``out_dir``.

    Args:
        scalars: The training run's ``scalars.json``.
        out_dir: Folder for the PNG files.
        title: Title prefix (the task).
        metrics: Validation metric names to plot.
        iters_per_step: Iterations per validation ``step`` (iterations per
            epoch for epoch-based loops), so both plots share an x axis.

    Returns:
        The paths written.

    Raises:
        ValueError: If the file holds no loss or none of ``metrics``.
    """
    records = read_scalars(scalars)
    losses = sorted({k for rec in records for k in rec
                     if k.split('.')[-1].startswith('loss')})
    loss = _series(records, losses)
    metric = _series(records, metrics)
    if not loss or not metric:
        raise ValueError(f'{scalars} holds no losses or none of the '
                         f'metrics {metrics}; found keys '
                         f'{sorted({k for r in records for k in r})}')
    files = []
    fig, ax = _figure()
    for key in losses:
        steps, values = loss[key]
        ax.plot(steps, values, label=key,
                linewidth=2.0 if key == 'loss' else 1.0)
    ax.set(xlabel='iteration', ylabel='training loss', yscale='log',
           title=f'{title}: training loss')
    files.append(_save(fig, ax, osp.join(out_dir, 'loss.png')))

    fig, ax = _figure()
    for key in metrics:
        steps, values = metric[key]
        ax.plot([s * iters_per_step for s in steps], values, 'o-', label=key)
    ax.set(xlabel='iteration', ylabel='held-out metric',
           title=f'{title}: validation')
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    files.append(_save(fig, ax, osp.join(out_dir, 'metric.png')))
    return files
