"""Resume from the newest complete checkpoint, under every entry point.

mmengine's ``CheckpointHook`` saves ``epoch_N.pth`` / ``iter_N.pth``, then
writes its path into ``work_dir/last_checkpoint`` with a plain ``open``. A
kill between the two, or during that write, leaves the file empty or naming
the previous checkpoint; a kill during a save without the atomic backend
(``engine.fileio``) leaves a partial zip that the file may name; a work dir
copied without it has none. A run that resumes without a path
(``tools/train.py --resume``, ``mim train ... --resume``, the toolboxes' own
train scripts, ``resume=True`` in a config) asks mmengine's
``find_latest_checkpoint`` what to continue from, and mmengine's returns
the file's text as it is: ``''`` stops the run with "`` can not be found``",
no file starts it from the beginning, a partial zip fails in ``torch.load``.

:func:`find_latest_checkpoint` returns the checkpoint that
``last_checkpoint`` names if it is complete, else the newest complete
``epoch_*.pth`` / ``iter_*.pth`` beside it, else None (start from the
beginning). Complete is checked without unpickling: torch saves a zip, and
one cut short has no readable central directory. Only regular files are
opened (``os.lstat``: no symlink, FIFO or device), so a FIFO named
``iter_9.pth`` cannot block the search, nor a link to ``/dev/zero`` feed
it without end; ``last_checkpoint`` is read up to 4 KiB.
:func:`use_complete_checkpoints_in_mmengine`, called when ``mmhatnet`` is
imported (configs do it through ``custom_imports``), puts it where
mmengine 0.8 to 0.10 look it up.
"""
from __future__ import annotations

import importlib
import logging
import os
import os.path as osp
import re
import stat
import zipfile

from mmengine.logging import print_log

from .unpickler import clean

# CheckpointHook's default file names (its ``filename_tmpl``)
_CHECKPOINT_NAME = re.compile(r'(epoch|iter)_\d+\.pth')


def _regular(path: str) -> bool:
    """Whether ``path`` is a regular file itself (not a symlink, FIFO or
    device)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False


def is_complete(path: str) -> bool:
    """Whether ``path`` is a regular file holding a whole zip, as
    ``torch.save`` writes: its end of central directory and the directory
    itself read. Nothing is unpickled or inflated."""
    if not _regular(path):
        return False
    try:
        with zipfile.ZipFile(path):
            return True
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def _newest_complete(folders: list[str]) -> str | None:
    found = [osp.join(folder, name) for folder in folders
             if osp.isdir(folder) for name in os.listdir(folder)
             if _CHECKPOINT_NAME.fullmatch(name)]
    complete = [path for path in found if is_complete(path)]
    return max(complete, key=osp.getmtime) if complete else None


def find_latest_checkpoint(path: str) -> str | None:
    """What a run that resumes without a path continues from, in the work
    dir ``path``: the checkpoint ``last_checkpoint`` names if it is
    complete (a remote path, ``scheme://...``, is returned unchecked, as
    mmengine does), else the newest complete ``epoch_*.pth`` /
    ``iter_*.pth`` in ``path`` or in the named file's folder, else None.
    Logs a warning when it does not take the named file."""
    marker = osp.join(path, 'last_checkpoint')
    named = ''
    has_marker = _regular(marker)
    if has_marker:
        with open(marker, errors='replace') as f:
            named = f.read(4096).strip()
        if '://' in named or (named and is_complete(named)):
            return named
    folders = [path]
    if named and osp.abspath(osp.dirname(named)) != osp.abspath(path):
        folders.append(osp.dirname(named))  # not the work dir: look there too
    found = _newest_complete(folders)
    if not has_marker:
        why = f'{marker} does not exist'
    elif not named:
        why = f'{marker} is empty'
    elif not _regular(named):
        why = f'{marker} names {clean(named, 300)}, which does not exist'
    else:
        why = (f'{marker} names {clean(named, 300)}, which is incomplete '
               f'(a save cut short)')
    if found is not None or has_marker:
        then = (f'resuming from the newest complete checkpoint, {found}'
                if found else 'no complete checkpoint: starting from the '
                'beginning')
        print_log(f'{why}; {then}', logger='current', level=logging.WARNING)
    return found


def use_complete_checkpoints_in_mmengine() -> None:
    """Make mmengine's resume without a path use
    :func:`find_latest_checkpoint`.

    mmengine 0.8 to 0.10 call it as a global of ``mmengine.runner.runner``
    (``Runner.load_or_resume``) and ``mmengine.runner._flexible_runner``,
    and strategies import it from ``mmengine.runner`` when they resume;
    ``mmengine.runner.checkpoint`` defines it.
    """
    for name in ('mmengine.runner', 'mmengine.runner.checkpoint',
                 'mmengine.runner.runner', 'mmengine.runner._flexible_runner'):
        module = importlib.import_module(name)
        if hasattr(module, 'find_latest_checkpoint'):
            module.find_latest_checkpoint = find_latest_checkpoint
