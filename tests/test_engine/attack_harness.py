"""Load every file of a corpus in a forked child under memory, CPU and
wall-clock caps.

    python attack_harness.py CORPUS_DIR MARKER OUT_JSON [URL_BASE]

Each file goes through four entry points once ``mmhatnet`` is imported:
``load_untrusted`` (checkpoint, weights-only, and the check that the
tools run before building a runner: to ``meta``, no tensor bytes read)
and mmengine's ``_load_checkpoint`` (``load_from``, resume,
``Pretrained``); with
URL_BASE, also by URL. The child reports 'refused' (CheckpointError or
FileNotFoundError), 'loaded' (only plain data came back) or what went
wrong; the parent records a signal (a crash, the CPU cap, its 60 s
wall clock) as such. After
each attempt the child also checks that the classes and functions an
attack could change are as they were.
"""
import collections
import json
import os
import resource
import signal
import sys
import time
import traceback

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import mmhatnet  # noqa: F401  (mmengine loads through safe loading)
from mmhatnet.engine import CheckpointError, load_untrusted
try:
    from mmhatnet.engine.safe_load import Unloaded
except ImportError:  # the corpus run against an older loader
    Unloaded = ()

PLAIN = (type(None), bool, int, float, complex, str, bytes, slice,
         torch.Tensor, np.ndarray, np.generic, *([Unloaded] if Unloaded else []))


def plain(obj, seen=None) -> bool:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return True
    seen.add(id(obj))
    if isinstance(obj, PLAIN):
        return type(obj) in (torch.Tensor, torch.nn.Parameter) or \
            not isinstance(obj, torch.Tensor)
    if isinstance(obj, HistoryBuffer):
        return plain(obj.__dict__, seen)
    if isinstance(obj, dict):
        return all(plain(k, seen) and plain(v, seen)
                   for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return all(plain(x, seen) for x in obj)
    return False


def state() -> tuple:
    return (collections.Counter.__name__,
            torch._utils._rebuild_tensor_v2.__defaults__,
            sorted(HistoryBuffer._statistics_methods))


def attempt(load, source) -> str:
    before = state()
    try:
        obj = load(source)
    except (CheckpointError, FileNotFoundError) as e:
        outcome = f'refused: {str(e)[:300]}'
        if not str(e).isprintable():  # a file's text reaches terminals
            return f'error: control characters in {str(e)[:300]!r}'
    except BaseException:
        return 'error: ' + traceback.format_exc()[-600:]
    else:
        outcome = 'loaded' if plain(obj) else \
            f'error: not plain data: {type(obj).__name__}'
    if state() != before:
        return f'error: process state changed: {before} -> {state()}'
    return outcome


def in_child(run, cpu: int, wall: int) -> str:
    """``run()``'s outcome, computed in a forked child under a memory cap
    (1 GiB over this process), a CPU cap of ``cpu`` seconds and a wall
    clock of ``wall`` seconds; a signal, a hang or no answer is an error."""
    vm = int(open('/proc/self/statm').read().split()[0]) * \
        resource.getpagesize()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: caps, one attempt, its outcome
        os.close(read)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, vm + 2**30))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
            torch.set_num_threads(1)
            outcome = run()
        except BaseException:
            outcome = 'error: ' + traceback.format_exc()[-600:]
        with os.fdopen(write, 'w') as f:
            f.write(outcome)
        os._exit(0)
    os.close(write)
    start = time.monotonic()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - start > wall:  # blocked, not computing
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read)
            return f'error: no answer within {wall} s (a hang)'
        time.sleep(0.02)
    with os.fdopen(read) as f:
        outcome = f.read()
    if os.WIFSIGNALED(status):
        return f'error: killed by signal {os.WTERMSIG(status)}'
    return outcome or f'error: exit status {os.WEXITSTATUS(status)}'


def main() -> None:
    folder, marker, out = sys.argv[1:4]
    url_base = sys.argv[4] if len(sys.argv) > 4 else None
    loaders = {
        'load_untrusted': load_untrusted,
        'weights_only': lambda p: load_untrusted(p, weights_only=True),
        'mmengine': _load_checkpoint,
        'check': lambda p: load_untrusted(p, 'meta'),
    }
    jobs = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith('.pth'):
            continue
        for via, load in loaders.items():
            jobs.append((name, via, load, os.path.join(folder, name)))
        if url_base:
            jobs.append((name, 'url', _load_checkpoint, f'{url_base}/{name}'))
    results = []
    for name, via, load, source in jobs:
        outcome = in_child(lambda load=load, source=source: attempt(
            load, source), cpu=20, wall=60)
        hit = os.path.exists(marker)
        if hit:
            os.remove(marker)
        results.append(dict(file=name, via=via, outcome=outcome,
                            marker=hit))
    with open(out, 'w') as f:
        json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
